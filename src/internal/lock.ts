/**
 * An exclusive lock shared by every process that opens the same store: flock(2) on a lock
 * file. The kernel drops the lock when its process dies, so a crash never leaves a stale lock
 * (no pid files, no timeouts). Waiting happens on libuv's thread pool; waiters in one process
 * queue in front of the file lock, so they hold no thread while they wait.
 */
import { closeSync, mkdirSync, openSync, constants } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { sys } from './sys.js'

/** Per lock file: the tail of this process's queue of holders. */
const queues = new Map<string, Promise<void>>()

export class FileLock {
  readonly #fd: number
  readonly #releaseQueue: () => void
  #held = true

  private constructor(fd: number, releaseQueue: () => void) {
    this.#fd = fd
    this.#releaseQueue = releaseQueue
  }

  /** Waits for the lock on `path` (created, with its directory, if missing). */
  static acquire(path: string): Promise<FileLock> {
    return FileLock.#acquire(path, (key) => {
      mkdirSync(dirname(key), { recursive: true, mode: 0o700 })
      return openSync(key, constants.O_RDWR | constants.O_CREAT, 0o600)
    })
  }

  /**
   * Waits for the lock on directory `dir` itself (it must exist): a lock per directory
   * without a lock file in it, for state that lives and dies with the directory.
   */
  static acquireDir(dir: string): Promise<FileLock> {
    return FileLock.#acquire(dir, (key) =>
      openSync(key, constants.O_RDONLY | constants.O_DIRECTORY),
    )
  }

  static async #acquire(path: string, open: (key: string) => number): Promise<FileLock> {
    const key = resolve(path)
    const previous = queues.get(key) ?? Promise.resolve()
    let releaseQueue!: () => void
    const mine = new Promise<void>((r) => (releaseQueue = r))
    const tail = previous.then(() => mine)
    queues.set(key, tail)
    const done = (): void => {
      releaseQueue()
      if (queues.get(key) === tail) queues.delete(key)
    }
    await previous
    let fd: number | undefined
    try {
      fd = open(key)
      if (!sys.tryFlock(fd, true)) await sys.flock(fd, true)
      return new FileLock(fd, done)
    } catch (err) {
      if (fd !== undefined) closeSync(fd)
      done()
      throw err
    }
  }

  /** Releases the lock (idempotent). */
  release(): void {
    if (!this.#held) return
    this.#held = false
    sys.funlock(this.#fd)
    closeSync(this.#fd)
    this.#releaseQueue()
  }
}

/** Runs `fn` holding the lock on `path`. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = await FileLock.acquire(path)
  try {
    return await fn()
  } finally {
    lock.release()
  }
}
