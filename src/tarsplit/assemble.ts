/**
 * Rebuilds the original tar from tar-split entries and the layer's files (tar-split
 * `WriteOutputTarStream`). Better than Go's:
 * - a file's bytes are held back until its CRC is checked (a small file entirely, a large
 *   one's last chunk), so a corrupted file never fully reaches the output, and a failed file
 *   stops the stream with TARSPLIT_FILE_INTEGRITY;
 * - output goes out in ~2 MiB batches, and a getter that can `readBatch` (or `readInto`)
 *   reads small files straight into them, 32 to a thread-pool job while the next entries are
 *   laid out: one chunk per batch instead of one per header and per file;
 * - with a getter that only has `readWhole`, small files are read several at a time ahead
 *   of the output;
 * - batches are leased chunks (internal/chunk-lease.ts): a consumer that releases them once
 *   done (internal/chunk-file.ts) gets the same few buffers back, instead of new memory to
 *   fault in for every 2 MiB.
 */
import { Readable } from 'node:stream'
import { Crc64 } from './crc64.js'
import { leaseChunk } from '../internal/chunk-lease.js'
import { writeChunksToFile } from '../internal/chunk-file.js'
import { FileIntegrityError } from './errors.js'
import {
  isFileEntry,
  isSegmentEntry,
  type BatchRead,
  type FileEntry,
  type FileGetter,
  type TarSplitEntry,
  type UnknownEntry,
} from './entry.js'

export interface AssembleOptions {
  readonly signal?: AbortSignal
  /** Small files read ahead at most with `readWhole` getters (default 32; 0: none). */
  readonly readAhead?: number
  /** Bytes of read-ahead at most (default 16 MiB). */
  readonly readAheadBytes?: number
  /**
   * Check every file against its recorded CRC-64 (default true). Only a caller that verifies
   * the whole output otherwise (its sha256 against the DiffID) and can discard it when that
   * fails may turn this off: a damaged file then shows at the end, not at the file.
   */
  readonly checkCrc?: boolean
}

/** Stands in for the checksum when files are not checked. */
const NO_CRC = {
  reset: (): void => undefined,
  update: (_data: Uint8Array): void => undefined,
  digest: (): Buffer => Buffer.alloc(0),
}

/** Files up to this size are read whole. */
export const SMALL_FILE = 1 << 20
const BATCH = 2 * SMALL_FILE + 2
/** Small files a thread-pool job reads (FileGetter.readBatch). */
const READ_JOB = 32

type Entries = AsyncIterable<TarSplitEntry | UnknownEntry> | Iterable<TarSplitEntry | UnknownEntry>

interface Pending {
  readonly entry: TarSplitEntry | UnknownEntry
  readonly data?: Promise<Buffer>
}

/** The original tar, chunk by chunk; pull-based, so backpressure is the consumer's reading. */
export function assemble(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions = {},
): AsyncGenerator<Uint8Array> {
  return assembleBatches(entries, getter, options)
}

/**
 * The core: output is gathered into leased batches of BATCH bytes (a batch is handed out
 * when full and a new one leased at once); a large file that a getter can only stream goes
 * out as its own chunks.
 */
async function* assembleBatches(
  entries: Entries,
  getter: FileGetter,
  options: AssembleOptions,
): AsyncGenerator<Uint8Array> {
  const newBatch = (): Buffer => leaseChunk(BATCH)
  const crc = options.checkCrc === false ? NO_CRC : new Crc64()
  const verify = (e: FileEntry, data?: Uint8Array): void => {
    if (crc === NO_CRC) return
    if (data !== undefined) {
      crc.reset()
      crc.update(data)
    }
    const sum = crc.digest()
    if (e.crc === undefined || !sum.equals(e.crc)) {
      throw new FileIntegrityError(
        e.name.toString('utf8'),
        `CRC-64 ${sum.toString('hex')}, recorded ${e.crc?.toString('hex') ?? 'none'}`,
      )
    }
  }
  let batch = newBatch()
  let len = 0
  /** Hands out the batch so far (the caller yields it) and starts a new one. */
  const flush = (): Uint8Array => {
    const out = batch.subarray(0, len)
    batch = newBatch()
    len = 0
    return out
  }
  const direct = getter.readInto?.bind(getter)
  const batched = direct === undefined ? undefined : getter.readBatch?.bind(getter)
  /**
   * Small files placed in the batch: read on the thread pool READ_JOB at a time as they are
   * placed (while the next entries are laid out), checked before the batch goes out.
   */
  let placed: { entry: FileEntry; read: BatchRead }[] = []
  let jobs: Promise<(number | undefined)[]>[] = []
  let unsent = 0
  const send = (): void => {
    if (unsent === 0) return
    const reads = placed.slice(placed.length - unsent).map((p) => p.read)
    unsent = 0
    jobs.push(batched!(reads, batch))
  }
  /** Waits for every read in flight (none may write into a batch handed back). */
  const drain = async (): Promise<(number | undefined)[]> => {
    const done = await Promise.allSettled(jobs)
    jobs = []
    const failed = done.find((d) => d.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    return done.flatMap((d) => (d.status === 'fulfilled' ? d.value : []))
  }
  const settle = async (): Promise<void> => {
    if (placed.length === 0) return
    send()
    const results = await drain()
    const reads = placed
    placed = []
    // A file shorter than recorded goes out as read (as Go copies to EOF): what follows it in
    // the batch moves back by the difference.
    let shift = 0
    for (const [i, { entry, read }] of reads.entries()) {
      let n = results[i]
      if (n === undefined) {
        // Not where the batch read looked (a symlinked parent, a lower layer): one by one.
        const scratch = Buffer.allocUnsafe(read.size + 1)
        n = await direct!(entry.name, entry.size, scratch, 0)
        batch.set(scratch.subarray(0, Math.min(n, read.size)), read.offset)
      }
      if (n > entry.size) throw grew(entry)
      const at = read.offset - shift
      if (shift > 0) batch.copyWithin(at, read.offset, read.offset + n)
      verify(entry, batch.subarray(at, at + n))
      const rest = read.offset + read.size // what follows, up to the next file or the end
      shift += read.size - n
      if (shift > 0) batch.copyWithin(rest - shift, rest, reads[i + 1]?.read.offset ?? len)
    }
    len -= shift
  }
  /** The batch so far, its small files read and checked, and a new one started. */
  const out = async (): Promise<Uint8Array> => {
    await settle()
    return flush()
  }
  try {
    for await (const { entry: e, data } of readAhead(
      entries,
      getter,
      direct === undefined ? options : { ...options, readAhead: 0 },
    )) {
      options.signal?.throwIfAborted()
      let piece: Uint8Array | undefined
      if (isSegmentEntry(e)) {
        piece = e.payload
      } else if (!isFileEntry(e) || e.size === 0) {
        continue
      } else if (batched !== undefined && e.size <= SMALL_FILE) {
        if (len + e.size > batch.length) yield await out()
        placed.push({ entry: e, read: { name: e.name, size: e.size, offset: len } })
        if (++unsent === READ_JOB) send()
        len += e.size
        continue
      } else if (direct !== undefined && e.size <= SMALL_FILE) {
        if (len + e.size + 1 > batch.length) yield flush()
        const n = await direct(e.name, e.size, batch, len)
        if (n > e.size) throw grew(e)
        verify(e, batch.subarray(len, len + n))
        len += n
        continue
      } else if (data !== undefined) {
        piece = await data
        verify(e, piece)
      } else if (getter.readAt !== undefined) {
        // A large file, read piece by piece into the batches; the batch holding its end goes
        // out only after the CRC is checked. (The small files before it are checked first:
        // their check would reset the CRC of this one.)
        await settle()
        crc.reset()
        for (let position = 0; ;) {
          if (len === batch.length) yield await out()
          const n = await getter.readAt(e.name, position, batch, len, batch.length - len)
          if (n === 0) break
          crc.update(batch.subarray(len, len + n))
          len += n
          position += n
        }
        verify(e)
        continue
      } else {
        // A large file: streamed, its last chunk held back until the CRC is checked.
        if (len > 0) yield await out()
        crc.reset()
        let held: Uint8Array | undefined
        for await (const chunk of getter.get(e.name, e.size, options.signal)) {
          crc.update(chunk)
          if (held !== undefined) yield held
          held = chunk
        }
        verify(e)
        if (held !== undefined) yield held
        continue
      }
      if (piece.length === 0) continue
      if (piece.length > SMALL_FILE) {
        if (len > 0) yield await out()
        yield piece
        continue
      }
      if (len + piece.length > batch.length) yield await out()
      batch.set(piece, len)
      len += piece.length
    }
    if (len > 0) yield await out()
  } finally {
    await Promise.allSettled(jobs) // an abandoned batch: its reads end before it is reused
  }
}

function grew(e: FileEntry): FileIntegrityError {
  return new FileIntegrityError(
    e.name.toString('utf8'),
    `file is larger than the ${e.size} bytes recorded`,
  )
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
        if (isFileEntry(r.value) && r.value.size > SMALL_FILE) break
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

/**
 * Assembles into a file; the batches are written from where the files were read into and
 * come back for the next ones (internal/chunk-file.ts). Returns the number of bytes written.
 */
export async function assembleToFile(
  entries: Entries,
  getter: FileGetter,
  path: string,
  options: AssembleOptions = {},
): Promise<number> {
  return writeChunksToFile(assembleBatches(entries, getter, options), path)
}
