/**
 * Splits a tar stream into tar-split entries while passing it through unchanged
 * (tar-split `NewInputTarStream`): for each tar entry, one segment with the raw bytes before
 * its data (padding of the previous entry, extended headers, its header block) and one file
 * entry (name, size, CRC-64 of the data); at the end, the end-of-archive blocks and every
 * byte after them, in segments of at most 1 MiB. Entries go to a sink (the JSON packer).
 */
import { PassThrough, type Readable } from 'node:stream'
import { TarReader } from '../tar/reader.js'
import type { ReadTarOptions } from '../tar/types.js'
import type { ByteSource } from '../tar/byte-reader.js'
import { digestFromHex, type DiffId } from '../digest/digest.js'
import { Crc64 } from './crc64.js'
import { fileChunks } from '../internal/file-chunks.js'
import { borrowBuffers, returnBuffers } from '../internal/buffer-pool.js'
import { sha256Through } from '../internal/stream-sha256.js'
import type { EntrySink } from './entry.js'
import { offer, type EntryTarget } from '../tar/entry-target.js'

/** Trailing bytes are recorded in segments of this size, as Go's disassembler reads them. */
export const TRAILING_SEGMENT_SIZE = 1 << 20

export interface DisassembleOptions extends Omit<ReadTarOptions, 'rawAccounting'> {
  /** Also compute the sha256 of the whole stream (the DiffID). */
  readonly digest?: boolean
  /**
   * Also hand every entry to `target` (an applier), in the same pass: the tar is read and
   * parsed once. The target may keep data chunks, so the source must not reuse their memory.
   */
  readonly target?: EntryTarget
}

export interface DisassembleResult {
  /** Bytes in the stream, trailing bytes included. */
  readonly size: number
  /** Tar entries recorded (meta headers folded in). */
  readonly files: number
  /** sha256 of every byte, when asked for. */
  readonly diffId?: DiffId
}

/** Records the entries of `source` into `sink`; the stream itself is only read. */
export async function disassembleTo(
  source: ByteSource,
  sink: EntrySink,
  options: DisassembleOptions = {},
): Promise<DisassembleResult> {
  let hex: string | undefined
  const { target, digest, ...readOptions } = options
  // Chunks a target keeps are fresh memory: the hash may then lag behind the reader.
  const input =
    digest === true
      ? sha256Through(source, (h) => (hex = h), { fresh: target !== undefined })
      : source
  const reader = new TarReader(input, { ...readOptions, rawAccounting: true })
  const crc = new Crc64()
  let files = 0
  const flushRaw = async (): Promise<void> => {
    const raw = reader.takeRaw()
    if (raw.length > 0) await sink.add({ type: 2, payload: raw, position: 0 })
  }
  for (;;) {
    const entry = await reader.next()
    if (entry === undefined) break
    await flushRaw()
    const { header } = entry
    let file = target === undefined ? undefined : offer(target, header)
    if (file instanceof Promise) file = await file
    let sum: Buffer | undefined
    if (header.size > 0) {
      crc.reset()
      for await (const chunk of entry.body) {
        crc.update(chunk)
        file?.write(chunk)
      }
      sum = crc.digest()
    }
    file?.close()
    await sink.add(
      sum === undefined
        ? { type: 1, name: header.nameRaw, size: header.size, position: 0 }
        : { type: 1, name: header.nameRaw, size: header.size, crc: sum, position: 0 },
    )
    files++
    await flushRaw()
  }
  await flushRaw()
  for await (const piece of reader.rest(TRAILING_SEGMENT_SIZE)) {
    await sink.add({ type: 2, payload: piece, position: 0 })
  }
  const result = { size: reader.offset, files }
  return hex === undefined ? result : { ...result, diffId: digestFromHex(hex) as DiffId }
}

/**
 * disassembleTo for a file: read with several reads in flight into recycled buffers, so file
 * data is never read into freshly allocated memory (the reader keeps no chunk but the
 * current one).
 */
export async function disassembleFile(
  path: string,
  sink: EntrySink,
  options: DisassembleOptions = {},
): Promise<DisassembleResult> {
  const ring = borrowBuffers(6, 1 << 20)
  const source = fileChunks(path, {
    ahead: 3,
    ring,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  })
  try {
    return await disassembleTo(source, sink, options)
  } finally {
    // A refused tar leaves the reads unfinished: they end, and the file closes, before the
    // ring goes back to the pool.
    await source.return(undefined)
    returnBuffers(ring)
  }
}

/**
 * Records the entries of `source` into `sink` and hands the same bytes on through `stream`
 * (for an extractor). `done` settles when the whole input has been read; the producer waits
 * for the consumer, so `stream` must be read to the end or destroyed.
 */
export function disassemble(
  source: ByteSource,
  sink: EntrySink,
  options: DisassembleOptions = {},
): { stream: Readable; done: Promise<DisassembleResult> } {
  const stream = new PassThrough({ highWaterMark: 1 << 20 })
  const done = disassembleTo(tee(source, stream), sink, options).then(
    (result) => {
      stream.end()
      return result
    },
    (err: unknown) => {
      stream.destroy(err instanceof Error ? err : new Error(String(err)))
      throw err
    },
  )
  return { stream, done }
}

async function* tee(source: ByteSource, out: PassThrough): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (out.destroyed) throw new Error('Cannot pass tar through: the consumer closed the stream')
    if (!out.write(chunk)) await drained(out)
    yield chunk
  }
}

function drained(out: PassThrough): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      out.off('drain', onDrain)
      out.off('close', onClose)
    }
    const onDrain = (): void => {
      cleanup()
      resolve()
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error('Cannot pass tar through: the consumer closed the stream'))
    }
    out.on('drain', onDrain)
    out.on('close', onClose)
  })
}
