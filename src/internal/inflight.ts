/**
 * Markers of work in progress that has not reached the metadata yet: a driver directory a
 * registration is filling, for example. A marker is a file named after the work, held with a
 * flock(2) for as long as the work runs; the kernel drops the lock when the process dies.
 * A sweep may delete what a marker names only when nobody holds the marker.
 */
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  writeSync,
  constants,
} from 'node:fs'
import { join } from 'node:path'
import { sys } from './sys.js'

export class InflightMarker {
  readonly #path: string
  readonly #fd: number

  private constructor(path: string, fd: number) {
    this.#path = path
    this.#fd = fd
  }

  /** Marks `name` as being worked on, in directory `dir`. */
  static hold(dir: string, name: string): InflightMarker {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const path = join(dir, name)
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600)
    if (!sys.tryFlock(fd, true)) {
      closeSync(fd)
      throw new Error(`in-flight marker ${name} is held by another process`)
    }
    return new InflightMarker(path, fd)
  }

  /**
   * Adds lines to the marker and syncs it: a journal of the work, for whoever finds the
   * marker after this process died.
   */
  append(...lines: string[]): void {
    writeSync(this.#fd, lines.map((l) => `${l}\n`).join(''))
    fdatasyncSync(this.#fd)
  }

  /** The work is done (or abandoned and cleaned up): the marker goes. */
  release(): void {
    rmSync(this.#path, { force: true })
    closeSync(this.#fd)
  }
}

/** True when a live process holds the marker `name` in `dir`. */
export function isInflight(dir: string, name: string): boolean {
  let fd: number
  try {
    fd = openSync(join(dir, name), constants.O_RDWR)
  } catch {
    return false // no marker
  }
  try {
    return !sys.tryFlock(fd, true)
  } finally {
    closeSync(fd) // also drops the lock we may just have taken
  }
}

/** Removes markers nobody holds (their process died). */
export function sweepInflight(dir: string): void {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  for (const name of names) if (!isInflight(dir, name)) rmSync(join(dir, name), { force: true })
}
