/**
 * Rebuilds the original tar from tar-split entries and the layer's files (tar-split
 * `WriteOutputTarStream`). Better than Go's: a file's last chunk is held back until its
 * CRC is checked, so a corrupted small file never reaches the output; a file that fails
 * stops the stream with TARSPLIT_FILE_INTEGRITY.
 */
import { Readable } from 'node:stream'
import { Crc64 } from './crc64.js'
import { FileIntegrityError } from './errors.js'
import {
  isFileEntry,
  isSegmentEntry,
  type FileGetter,
  type TarSplitEntry,
  type UnknownEntry,
} from './entry.js'

export interface AssembleOptions {
  readonly signal?: AbortSignal
}

/** The original tar, chunk by chunk; pull-based, so backpressure is the consumer's reading. */
export async function* assemble(
  entries: AsyncIterable<TarSplitEntry | UnknownEntry> | Iterable<TarSplitEntry | UnknownEntry>,
  getter: FileGetter,
  options: AssembleOptions = {},
): AsyncGenerator<Uint8Array> {
  const crc = new Crc64()
  for await (const e of entries) {
    options.signal?.throwIfAborted()
    if (isSegmentEntry(e)) {
      if (e.payload.length > 0) yield e.payload
      continue
    }
    if (!isFileEntry(e) || e.size === 0) continue
    crc.reset()
    let held: Uint8Array | undefined
    for await (const chunk of getter.get(e.name, e.size, options.signal)) {
      crc.update(chunk)
      if (held !== undefined) yield held
      held = chunk
    }
    const sum = crc.digest()
    if (e.crc === undefined || !sum.equals(e.crc)) {
      throw new FileIntegrityError(
        e.name.toString('utf8'),
        `CRC-64 ${sum.toString('hex')}, recorded ${e.crc?.toString('hex') ?? 'none'}`,
      )
    }
    if (held !== undefined) yield held
  }
}

/** assemble() as a Node stream. */
export function assembleStream(
  entries: AsyncIterable<TarSplitEntry | UnknownEntry> | Iterable<TarSplitEntry | UnknownEntry>,
  getter: FileGetter,
  options: AssembleOptions = {},
): Readable {
  return Readable.from(assemble(entries, getter, options), {
    objectMode: false,
    highWaterMark: 1 << 20,
  })
}
