/**
 * Small files created on libuv's thread pool, whole, in batches (sys.createFiles): creating a
 * file costs tens of microseconds of kernel time, which then runs on other cores while the
 * applier parses the next entries. Files in flight are known by their resolved key, so that
 * an entry that depends on one (the same name again, a whiteout, a hard link) can wait for
 * it. Bounded in files and bytes, for flat memory.
 */
import { sys } from '../internal/sys.js'

/** Files up to this size (and without xattrs) are created here. */
export const SMALL_FILE = 1 << 20
const MAX_INFLIGHT_FILES = 256
const MAX_INFLIGHT_BYTES = 32 << 20
/**
 * Files go to the thread pool this many at a time. A job and its promise cost ~15 µs of the
 * main thread, and waking a pool thread often costs the main thread its core for a while: on
 * 2 cores, 32 a job rather than 16 took the 46k-entry node_modules register 2.94 -> 2.68 s.
 */
const BATCH_FILES = 32
const BATCH_BYTES = 2 << 20

/** One file for sys.createFiles. */
export interface SmallFile {
  readonly host: Buffer
  /** Its resolved path relative to the target (what later entries look it up by). */
  readonly key: string
  /** The entry's name, for errors. */
  readonly name: string
  readonly chunks: readonly Uint8Array[]
  readonly size: number
  readonly mode: number
  /** -1: the owner a new file gets is right. */
  readonly uid: number
  readonly gid: number
  readonly times: readonly [number, number, number, number]
  /** The mode needs an fchmod (special bits, or bits the umask takes away). */
  readonly chmod: boolean
}

/** Files bound for one thread-pool job; `done` settles when all of them are created. */
interface Batch {
  readonly files: SmallFile[]
  bytes: number
  readonly done: Promise<void>
  readonly resolve: () => void
}

export class SmallFiles {
  readonly #inflight = new Map<string, Promise<void>>()
  #bytes = 0
  #batch: Batch | undefined
  readonly #wrap: (err: unknown, name: string) => Error
  /** The first failure of a file created here; the applier throws it at its next call. */
  failure: Error | undefined

  /** `wrap` turns a creation's error into the applier's. */
  constructor(wrap: (err: unknown, name: string) => Error) {
    this.#wrap = wrap
  }

  /** Files in flight. */
  get count(): number {
    return this.#inflight.size
  }

  /** The creation of `key` if it is in flight (it never rejects). */
  pending(key: string): Promise<void> | undefined {
    return this.#inflight.get(key)
  }

  /** Something to wait for before adding a file, when too much is in flight. */
  room(): Promise<void> | undefined {
    const full = this.#inflight.size >= MAX_INFLIGHT_FILES || this.#bytes >= MAX_INFLIGHT_BYTES
    return full ? this.#inflight.values().next().value : undefined
  }

  add(file: SmallFile): void {
    const batch = (this.#batch ??= newBatch())
    batch.files.push(file)
    batch.bytes += file.size
    this.#bytes += file.size
    this.#inflight.set(file.key, batch.done)
    if (batch.files.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES) this.flush()
  }

  /** Sends the files gathered so far to the thread pool, as one job. */
  flush(): void {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    const meta: number[] = []
    for (const f of batch.files) meta.push(f.mode, f.uid, f.gid, ...f.times, f.chmod ? 1 : 0, 0)
    const paths = batch.files.map((f) => f.host)
    const chunks = batch.files.map((f) => f.chunks as Uint8Array[])
    sys.createFiles(paths, chunks, Float64Array.from(meta)).then(
      (results) => {
        results.forEach((err, i) => {
          if (err !== undefined) this.failure ??= this.#wrap(err, batch.files[i]!.name)
        })
        this.#settle(batch)
      },
      (err: unknown) => {
        this.failure ??= this.#wrap(err, batch.files[0]?.name ?? '')
        this.#settle(batch)
      },
    )
  }

  /** Waits for the files in flight now (their failures show in `failure`). */
  async drain(): Promise<void> {
    this.flush()
    await Promise.all(this.#inflight.values())
  }

  /** Waits until no file is in flight. */
  async settle(): Promise<void> {
    this.flush()
    while (this.#inflight.size > 0) await this.drain()
  }

  #settle(batch: Batch): void {
    for (const f of batch.files) {
      if (this.#inflight.get(f.key) === batch.done) this.#inflight.delete(f.key)
      this.#bytes -= f.size
    }
    batch.resolve()
  }
}

function newBatch(): Batch {
  let resolve!: () => void
  const done = new Promise<void>((r) => (resolve = r))
  return { files: [], bytes: 0, done, resolve }
}
