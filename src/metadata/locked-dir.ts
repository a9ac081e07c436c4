/**
 * A directory under `tmp/` that its creator holds locked (flock(2) on the directory itself)
 * for as long as it works in it: the tmp sweep of another process skips locked directories,
 * so a transaction in flight is never swept, while one its process left behind (the kernel
 * drops the lock when the process dies) always is. The lock follows the directory through
 * renames: a committed write set is still locked until released.
 */
import { constants } from 'node:fs'
import { mkdtemp, open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import { crashPoint } from './crash-points.js'
import { errnoOf, removeTree } from './files.js'

const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

export class LockedDir {
  #path: string
  #fh: FileHandle | undefined

  private constructor(path: string, fh: FileHandle) {
    this.#path = path
    this.#fh = fh
  }

  /**
   * Creates `<parent>/<prefix><random>` (mode 0700) and locks it. A sweep may remove the
   * directory between its creation and the lock; then another one is made.
   */
  static async create(parent: string, prefix: string): Promise<LockedDir> {
    for (let attempt = 0; ; attempt++) {
      const path = await mkdtemp(join(parent, prefix))
      crashPoint('tmp:created')
      let fh: FileHandle
      try {
        fh = await open(path, OPEN_DIR)
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' && attempt < 100) continue // swept already
        throw err
      }
      // A sweep that holds the lock is removing it; one that took and dropped it removed it.
      if (sys.tryFlock(fh.fd, true) && (await fh.stat()).nlink > 0) return new LockedDir(path, fh)
      await fh.close()
      if (attempt >= 100) throw new Error(`Cannot lock a new directory in "${parent}"`)
    }
  }

  /** Where the directory is now. */
  get path(): string {
    return this.#path
  }

  /** Records a rename the owner made. */
  movedTo(path: string): void {
    this.#path = path
  }

  /** fsync of the directory itself. */
  async sync(): Promise<void> {
    if (this.#fh === undefined) throw new TypeError('Cannot sync a released directory')
    await this.#fh.sync()
  }

  /** Drops the lock (idempotent); the directory stays. */
  async release(): Promise<void> {
    const fh = this.#fh
    this.#fh = undefined
    await fh?.close()
  }

  /** Removes the directory and everything in it, then drops the lock (idempotent). */
  async remove(): Promise<void> {
    if (this.#fh === undefined) return
    try {
      await removeTree(this.#path)
    } finally {
      await this.release()
    }
  }
}

/**
 * Opens and locks an existing directory for the sweep: undefined when it is gone or someone
 * holds it (a live transaction of this or another process).
 */
export async function tryLockExisting(path: string): Promise<FileHandle | undefined> {
  let fh: FileHandle
  try {
    fh = await open(path, OPEN_DIR)
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined
    throw err
  }
  if (sys.tryFlock(fh.fd, true)) return fh
  await fh.close()
  return undefined
}
