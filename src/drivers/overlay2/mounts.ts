/**
 * Mounting overlay2 layers, counted across processes (SPEC.md §5.5 Get/Put).
 *
 * A layer with lowers is mounted on its `merged/` at the first get() and unmounted at the
 * put() that balances the last one. The count lives beside the mount, in `<layer>/mounts`,
 * and every change to it happens under a lock on the layer's directory (flock, released by
 * the kernel when a process dies), so `layerstore rw mount` in one process and `rw unmount`
 * in another balance like two calls in one. The mount itself is the truth: a `merged/` that
 * is not mounted counts 0 whatever the file says (after a reboot), a mounted one without a
 * count (a crash between mount and write) counts 1, as Docker counts mounts it finds.
 *
 * Mount options name lowers by their short links with absolute paths, as Docker does; when
 * that does not fit in a page (mount(2)'s limit for the option string), they are made
 * relative to the driver's home and the mount runs from a thread whose working directory is
 * the home (see internal/sys.ts), so 127 lowers mount at any home path length.
 */
import { lstatSync, mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { debuglog } from 'node:util'
import { FileLock } from '../../internal/lock.js'
import { MNT_DETACH, sys } from '../../internal/sys.js'
import { DriverIoError } from '../errors.js'
import { writeAtomic } from '../write-atomic.js'

const debug = debuglog('layerstore:overlay2')

/** mount(2) copies at most a page of options. */
const MAX_OPTIONS = 4096 - 1
const COUNT_FILE = 'mounts'

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err)

/** Whether `path` is a mount point: a directory on another device than its parent. */
export function isMountpoint(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false })
  if (st === undefined || !st.isDirectory()) return false
  return st.dev !== lstatSync(join(path, '..')).dev
}

/** What to mount for one layer. */
export interface LayerMount {
  readonly id: string
  /** The lowers as the `lower` file names them, relative to home (`l/<LINK>`), top first. */
  readonly lowers: readonly string[]
  /** A layer with children is mounted read-only: its diff/ becomes the top lower. */
  readonly readonly: boolean
}

export class OverlayMounts {
  readonly #home: string
  readonly #optionPrefix: string

  constructor(home: string, optionPrefix: string) {
    this.#home = home
    this.#optionPrefix = optionPrefix
  }

  /** Mounts the layer unless it is mounted, counts one more user; returns `merged/`. */
  async get(m: LayerMount): Promise<string> {
    const dir = join(this.#home, m.id)
    const merged = join(dir, 'merged')
    const lock = await FileLock.acquireDir(dir)
    try {
      const count = this.#count(dir, merged)
      if (count === 0) await this.#mount(m, dir, merged)
      this.#writeCount(dir, count + 1)
      return merged
    } finally {
      lock.release()
    }
  }

  /** Counts one user less; the last one unmounts and removes `merged/`. */
  async put(id: string): Promise<void> {
    const dir = join(this.#home, id)
    const merged = join(dir, 'merged')
    let lock: FileLock
    try {
      lock = await FileLock.acquireDir(dir)
    } catch (err) {
      if (code(err) === 'ENOENT') return // removed meanwhile: nothing is mounted
      throw err
    }
    try {
      const count = this.#count(dir, merged)
      if (count > 1) return this.#writeCount(dir, count - 1)
      await this.#unmount(dir, merged)
    } finally {
      lock.release()
    }
  }

  /** Unmounts the layer whatever its count (remove(), cleanup()). */
  async release(id: string): Promise<void> {
    const dir = join(this.#home, id)
    const lock = await FileLock.acquireDir(dir)
    try {
      await this.#unmount(dir, join(dir, 'merged'))
    } finally {
      lock.release()
    }
  }

  #count(dir: string, merged: string): number {
    if (!isMountpoint(merged)) return 0
    try {
      const n = Number.parseInt(readFileSync(join(dir, COUNT_FILE), 'latin1'), 10)
      return Number.isSafeInteger(n) && n > 0 ? n : 1
    } catch {
      return 1
    }
  }

  #writeCount(dir: string, count: number): void {
    writeAtomic(join(dir, COUNT_FILE), String(count), 0o600)
  }

  async #mount(m: LayerMount, dir: string, merged: string): Promise<void> {
    const home = this.#home
    const diff = `${m.id}/diff`
    const work = `${m.id}/work`
    const options = (at: (rel: string) => string): string => {
      const lowers = m.lowers.map(at)
      return m.readonly
        ? `${this.#optionPrefix}lowerdir=${[at(diff), ...lowers].join(':')}`
        : `${this.#optionPrefix}lowerdir=${lowers.join(':')},upperdir=${at(diff)},workdir=${at(work)}`
    }
    let data = options((rel) => join(home, rel))
    let cwd: string | undefined
    if (data.length > MAX_OPTIONS) {
      data = options((rel) => rel)
      cwd = home
    }
    if (data.length > MAX_OPTIONS)
      throw new DriverIoError(`Cannot mount layer: options too long (${data.length} bytes)`, merged)
    mkdirSync(merged, { mode: 0o700, recursive: true })
    try {
      await sys.mount('overlay', merged, 'overlay', 0, data, cwd)
    } catch (err) {
      rmdirSync(merged, { maxRetries: 0 })
      throw new DriverIoError(`Cannot mount layer (${code(err)})`, merged, { cause: err })
    }
    debug('mounted %s (%d lowers%s)', m.id, m.lowers.length, cwd === undefined ? '' : ', relative')
  }

  async #unmount(dir: string, merged: string): Promise<void> {
    if (isMountpoint(merged)) {
      try {
        await sys.umount2(merged, MNT_DETACH)
      } catch (err) {
        throw new DriverIoError(`Cannot unmount layer (${code(err)})`, merged, { cause: err })
      }
    }
    rmSync(join(dir, COUNT_FILE), { force: true })
    try {
      rmdirSync(merged)
    } catch (err) {
      if (code(err) !== 'ENOENT') debug('cannot remove %s: %s', merged, code(err))
    }
  }
}
