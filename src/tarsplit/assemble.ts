/**
 * Rebuilds the original tar from tar-split entries and the layer's files (tar-split
 * `WriteOutputTarStream`). Better than Go's:
 * - a file's bytes are held back until its CRC is checked (a small file entirely, a large
 *   one's last chunk), so a corrupted file never fully reaches the output, and a failed file
 *   stops the stream with TARSPLIT_FILE_INTEGRITY;
 * - small files are read several at a time ahead of the output (when the getter can read a
 *   whole file), so many-small-file layers are not bound by one open/read/close at a time.
 */
import { Readable } from 'node:stream'
import { Crc64 } from './crc64.js'
import { FileIntegrityError } from './errors.js'
import {
  isFileEntry,
  isSegmentEntry,
  type FileEntry,
  type FileGetter,
  type TarSplitEntry,
  type UnknownEntry,
} from './entry.js'

export interface AssembleOptions {
  readonly signal?: AbortSignal
  /** Small files read ahead at most (default 32; 0 reads one file at a time). */
  readonly readAhead?: number
  /** Bytes of read-ahead at most (default 16 MiB). */
  readonly readAheadBytes?: number
}

/** Files up to this size are read whole (and may be read ahead). */
export const SMALL_FILE = 1 << 20

type Entries = AsyncIterable<TarSplitEntry | UnknownEntry> | Iterable<TarSplitEntry | UnknownEntry>

interface Pending {
  readonly entry: TarSplitEntry | UnknownEntry
  readonly data?: Promise<Buffer>
}

/** The original tar, chunk by chunk; pull-based, so backpressure is the consumer's reading. */
export async function* assemble(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions = {},
): AsyncGenerator<Uint8Array> {
  // Headers and small files come in pieces of a few hundred bytes: hand them on in batches,
  // one chunk per ~1 MiB instead of one per piece (each chunk costs a trip through the stream).
  const batch = new Batcher()
  for await (const piece of pieces(entries, getter, options)) {
    const out = batch.add(piece)
    if (out !== undefined) yield out
    const held = batch.takePending()
    if (held !== undefined) yield held
  }
  const last = batch.flush()
  if (last !== undefined) yield last
}

async function* pieces(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions,
): AsyncGenerator<Uint8Array> {
  const crc = new Crc64()
  const verify = (e: FileEntry): void => {
    const sum = crc.digest()
    if (e.crc === undefined || !sum.equals(e.crc)) {
      throw new FileIntegrityError(
        e.name.toString('utf8'),
        `CRC-64 ${sum.toString('hex')}, recorded ${e.crc?.toString('hex') ?? 'none'}`,
      )
    }
  }
  for await (const { entry: e, data } of readAhead(entries, getter, options)) {
    options.signal?.throwIfAborted()
    if (isSegmentEntry(e)) {
      if (e.payload.length > 0) yield e.payload
      continue
    }
    if (!isFileEntry(e) || e.size === 0) continue
    crc.reset()
    if (data !== undefined) {
      const whole = await data
      crc.update(whole)
      verify(e)
      if (whole.length > 0) yield whole
      continue
    }
    let held: Uint8Array | undefined
    for await (const chunk of getter.get(e.name, e.size, options.signal)) {
      crc.update(chunk)
      if (held !== undefined) yield held
      held = chunk
    }
    verify(e)
    if (held !== undefined) yield held
  }
}

const BATCH = 1 << 20

/** Copies small pieces into 1 MiB batches; large pieces pass through (after the batch). */
class Batcher {
  #buf = Buffer.allocUnsafe(BATCH)
  #len = 0
  #pending: Uint8Array | undefined

  /** A chunk to emit, if this piece completes one. Call again with an empty piece to drain. */
  add(piece: Uint8Array): Uint8Array | undefined {
    if (piece.length >= BATCH / 4) {
      // Large: emit the batch so far, then the piece itself.
      const out = this.flush()
      if (out === undefined) return piece
      this.#pending = piece
      return out
    }
    if (this.#len + piece.length > BATCH) {
      const out = this.flush()
      this.#buf.set(piece, 0)
      this.#len = piece.length
      return out
    }
    this.#buf.set(piece, this.#len)
    this.#len += piece.length
    return undefined
  }

  flush(): Uint8Array | undefined {
    if (this.#len === 0) return undefined
    const out = this.#buf.subarray(0, this.#len)
    this.#buf = Buffer.allocUnsafe(BATCH)
    this.#len = 0
    return out
  }

  /** A large piece held back behind the batch it followed. */
  takePending(): Uint8Array | undefined {
    const p = this.#pending
    this.#pending = undefined
    return p
  }
}

/** Entries in order, small files' reads started ahead within the limits. */
async function* readAhead(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions,
): AsyncGenerator<Pending> {
  const maxCount = getter.readWhole === undefined ? 0 : (options.readAhead ?? 32)
  const maxBytes = options.readAheadBytes ?? 16 << 20
  const queue: Pending[] = []
  let bytes = 0
  const it = (
    Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : entries[Symbol.iterator]()
  ) as AsyncIterator<TarSplitEntry | UnknownEntry>
  let done = false
  const start = (e: TarSplitEntry | UnknownEntry): Pending => {
    if (maxCount > 0 && isFileEntry(e) && e.size > 0 && e.size <= SMALL_FILE) {
      bytes += e.size
      const data = getter.readWhole!(e.name, e.size)
      data.catch(() => {}) // observed when its turn comes
      return { entry: e, data }
    }
    return { entry: e }
  }
  try {
    for (;;) {
      // Fill the window: stop at a large file (it is streamed when reached) or at the limits.
      while (!done && queue.length <= maxCount && bytes < maxBytes) {
        const r = await it.next()
        if (r.done === true) {
          done = true
          break
        }
        queue.push(start(r.value))
        const last = r.value
        if (isFileEntry(last) && last.size > SMALL_FILE) break
      }
      const next = queue.shift()
      if (next === undefined) return
      if (next.data !== undefined) bytes -= (next.entry as FileEntry).size
      yield next
    }
  } finally {
    if (!done) await it.return?.()
  }
}

/** assemble() as a Node stream. */
export function assembleStream(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions = {},
): Readable {
  return Readable.from(assemble(entries, getter, options), {
    objectMode: false,
    highWaterMark: 1 << 20,
  })
}
