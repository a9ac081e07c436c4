/**
 * The streaming tar writer. The core is {@link writeTar}, a pull-based async generator: it
 * takes the next entry, and the next chunk of an entry's body, only when its output is read,
 * so a slow consumer slows the producer and no entry is ever held whole in memory.
 * {@link TarWriter} is the push-style face of the same thing, for code that produces entries
 * one by one (a directory walk): `add()` resolves once the entry's bytes have been read.
 *
 * ```ts
 * const tw = new TarWriter()
 * const produce = async (): Promise<void> => {
 *   await tw.add({ name: 'etc/', typeflag: TYPE.DIR, mode: 0o755 })
 *   await tw.add({ name: 'etc/hostname', mode: 0o644, size: 5 }, createReadStream(path))
 *   await tw.finish()
 * }
 * await Promise.all([produce(), pipeline(tw.readable(), createWriteStream('layer.tar'))])
 * ```
 * The output must be read while entries are added, or `add()` never resolves; awaiting both
 * sides together also keeps a failing sink from becoming an unhandled rejection.
 *
 * Every archive ends with two zero blocks and nothing else: no padding to a 10 KiB record,
 * like Go's tar.Writer (Docker's), so the empty archive is 1024 zero bytes, the DiffID
 * `sha256:5f70bf18…c6ef`. Body chunks are passed through, not copied.
 */
import { Readable } from 'node:stream'
import { encodeHeader, type EncodedHeader, type TarHeaderInput } from './encode.js'
import { TarError } from './errors.js'
import { BLOCK_SIZE } from './types.js'

/** An entry's data: all of it, or chunks that are pulled as the output is read. */
export type TarBody = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export interface TarWriteEntry {
  readonly header: TarHeaderInput
  /** Must yield exactly `header.size` bytes (none for header-only types). */
  readonly body?: TarBody
}

export interface WriteTarOptions {
  /**
   * Keep sub-second mtimes, atime and ctime in PAX records (Go's `Format: FormatPAX`).
   * Default false: mtime cut to whole seconds, atime/ctime dropped, as Docker writes diffs.
   */
  readonly subSecondTimes?: boolean
  readonly signal?: AbortSignal
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE_SIZE = 2 * BLOCK_SIZE

/** Promise rejections and stored failures are Errors (a source may throw anything). */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err), { cause: err })
}

/** A header without a size takes the length of a body given in one piece. */
function sized(header: TarHeaderInput, body: TarBody | undefined): TarHeaderInput {
  return header.size === undefined && body instanceof Uint8Array
    ? { ...header, size: body.length }
    : header
}

function label(header: TarHeaderInput): string {
  const name =
    header.nameRaw !== undefined ? Buffer.from(header.nameRaw).toString('utf8') : header.name
  return JSON.stringify((name ?? '').slice(0, 200))
}

/** Bytes an entry takes in the archive. */
function entryLength(h: EncodedHeader): number {
  return h.bytes.length + h.dataSize + (-h.dataSize & (BLOCK_SIZE - 1))
}

/** Header, data and padding of one entry; fails if the body's length is not the size. */
async function* entryBytes(
  encoded: EncodedHeader,
  body: TarBody | undefined,
  offset: number,
  name: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const want = encoded.dataSize
  const mismatch = (got: string): TarError =>
    new TarError(
      'TAR_WRITE_SIZE_MISMATCH',
      `Cannot write tar entry ${name}: the header says ${want} bytes, the body has ${got}`,
      offset,
    )
  yield encoded.bytes
  let got = 0
  if (body instanceof Uint8Array) {
    if (body.length !== want) throw mismatch(String(body.length))
    got = want
    if (want > 0) yield body
  } else if (body !== undefined) {
    for await (const chunk of body) {
      if (!(chunk instanceof Uint8Array))
        throw new TypeError(`Cannot write tar entry ${name}: a body chunk is not a Uint8Array`)
      signal?.throwIfAborted()
      got += chunk.length
      if (got > want) throw mismatch(`more`)
      if (chunk.length > 0) yield chunk
    }
  }
  if (got !== want) throw mismatch(String(got))
  const pad = -want & (BLOCK_SIZE - 1)
  if (pad > 0) yield Buffer.alloc(pad)
}

/**
 * A tar archive of `entries`, chunk by chunk. Headers are encoded as Go's tar.Writer does
 * (see encode.ts); a header that cannot be encoded or a body of the wrong length ends the
 * stream with a TarError (`TAR_UNREPRESENTABLE`, `TAR_WRITE_SIZE_MISMATCH`...).
 */
export async function* writeTar(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  options: WriteTarOptions = {},
): AsyncGenerator<Uint8Array> {
  const { signal } = options
  const subSecondTimes = options.subSecondTimes === true
  let offset = 0
  for await (const e of entries) {
    signal?.throwIfAborted()
    const encoded = encodeHeader(sized(e.header, e.body), { subSecondTimes, offset })
    yield* entryBytes(encoded, e.body, offset, label(e.header), signal)
    offset += entryLength(encoded)
  }
  signal?.throwIfAborted()
  yield Buffer.alloc(END_OF_ARCHIVE_SIZE)
}

/** writeTar() as a Node stream. */
export function writeTarStream(
  entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>,
  options: WriteTarOptions = {},
): Readable {
  return Readable.from(writeTar(entries, options), { objectMode: false })
}

interface Job {
  /** undefined: the end of the archive. */
  readonly encoded: EncodedHeader | undefined
  readonly body: TarBody | undefined
  readonly offset: number
  readonly name: string
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

/**
 * Push-style writer: `add()` entries, then `finish()`; read the archive from the writer
 * itself (an AsyncIterable, once) or from `readable()`. A header that cannot be encoded
 * rejects its `add()` and leaves the writer usable (Go's non-fatal header errors); a failure
 * while the entry is being written (body length, source error, abort) fails the writer: the
 * output stream errors, and that `add()` and every later call reject. When the consumer stops
 * reading early, pending and later calls reject with `TAR_WRITER_CLOSED`.
 */
export class TarWriter implements AsyncIterable<Uint8Array> {
  readonly #subSecondTimes: boolean
  readonly #signal: AbortSignal | undefined
  readonly #queue: Job[] = []
  /** The job whose bytes are being read. */
  #current: Job | undefined
  #wake: (() => void) | undefined
  /** Where the next added entry will start. */
  #nextOffset = 0
  #written = 0
  #finished: Promise<void> | undefined
  #failure: Error | undefined
  #started = false
  /** The end-of-archive marker has been read. */
  #done = false

  readonly #onAbort = (): void => this.#fail(asError(this.#signal?.reason))

  constructor(options: WriteTarOptions = {}) {
    this.#subSecondTimes = options.subSecondTimes === true
    this.#signal = options.signal
    if (this.#signal?.aborted === true) this.#onAbort()
    else this.#signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Bytes handed to the consumer so far. */
  get bytesWritten(): number {
    return this.#written
  }

  /** Queues an entry; resolves when all its bytes have been read. */
  add(header: TarHeaderInput, body?: TarBody): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (this.#finished !== undefined)
      return Promise.reject(new TypeError('Cannot add tar entry: the writer is finished'))
    let encoded: EncodedHeader
    try {
      encoded = encodeHeader(sized(header, body), {
        subSecondTimes: this.#subSecondTimes,
        offset: this.#nextOffset,
      })
    } catch (err) {
      return Promise.reject(asError(err))
    }
    const offset = this.#nextOffset
    this.#nextOffset += entryLength(encoded)
    return this.#enqueue(encoded, body, offset, label(header))
  }

  /** Queues the end-of-archive marker; resolves when it has been read. Idempotent. */
  finish(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    this.#finished ??= this.#enqueue(undefined, undefined, this.#nextOffset, '')
    return this.#finished
  }

  /** The archive as a Node stream (destroying it closes the writer). */
  readable(): Readable {
    const r = Readable.from(this, { objectMode: false })
    r.once('close', () => this.#close())
    return r
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (this.#started) throw new TypeError('Cannot read a tar writer twice')
    this.#started = true
    try {
      for (;;) {
        const job = (this.#current = await this.#take())
        if (job.encoded === undefined) {
          this.#written += END_OF_ARCHIVE_SIZE
          yield Buffer.alloc(END_OF_ARCHIVE_SIZE)
          this.#done = true
          this.#current = undefined
          job.resolve()
          return
        }
        const { encoded, body, offset, name } = job
        for await (const chunk of entryBytes(encoded, body, offset, name, this.#signal)) {
          this.#written += chunk.length
          yield chunk
        }
        this.#current = undefined
        job.resolve()
      }
    } catch (err) {
      const e = asError(err)
      this.#fail(e)
      throw e
    } finally {
      this.#close()
      this.#signal?.removeEventListener('abort', this.#onAbort)
    }
  }

  #enqueue(
    encoded: EncodedHeader | undefined,
    body: TarBody | undefined,
    offset: number,
    name: string,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ encoded, body, offset, name, resolve, reject })
      this.#wake?.()
    })
  }

  async #take(): Promise<Job> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure
      const job = this.#queue.shift()
      if (job !== undefined) return job
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
      this.#wake = undefined
    }
  }

  /** The output ended: unless the archive was finished, what was not read fails. */
  #close(): void {
    if (this.#done || this.#failure !== undefined) return
    const err = new TarError(
      'TAR_WRITER_CLOSED',
      'Cannot write tar entry: the output was closed before the archive was finished',
      this.#written,
    )
    this.#fail(err)
  }

  /** Fails the job being written, every queued one and all later calls. */
  #fail(err: Error): void {
    this.#failure ??= err
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#current?.reject(err)
    this.#current = undefined
    for (const job of this.#queue.splice(0)) job.reject(err)
    this.#wake?.()
  }
}
