/**
 * Reads tar-split metadata: gzip'd (one or several members, as Go's reader accepts) JSON
 * objects separated by any whitespace, as Go's streaming decoder reads them. Fields are
 * checked strictly (base64 with padding, integer sizes), duplicate names are refused.
 */
import { createGunzip } from 'node:zlib'
import { Readable } from 'node:stream'
import { SeenPaths } from './clean-path.js'
import { DuplicatePathError, InvalidMetadataError } from './errors.js'
import { jsonValues } from './json-values.js'
import { ENTRY_TYPE, type TarSplitEntry, type UnknownEntry } from './entry.js'

/**
 * Standard base64 with padding: with the length a multiple of 4, the same language as
 * `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$`, which V8 ran 6x slower
 * (0.55 s of a 45k-entry layer's save went to it). Even so it cost 0.18 s of that save, so the
 * usual case, canonical base64 (what every encoder writes), is recognised by encoding the
 * decoded bytes again, natively; only other strings go through the expression.
 */
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/

function base64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string')
    throw new InvalidMetadataError(`Cannot read tar-split entry: ${what} is not a string`)
  // Go's decoder ignores CR and LF inside base64 data.
  const s = v.includes('\n') || v.includes('\r') ? v.replace(/[\r\n]/g, '') : v
  const bytes = Buffer.from(s, 'base64')
  if (bytes.toString('base64') === s) return bytes
  if (s.length % 4 !== 0 || !BASE64_RE.test(s))
    throw new InvalidMetadataError(`Cannot read tar-split entry: ${what} is not base64`)
  return bytes
}

/** Decodes one JSON object into an entry (exported for tests and fuzzing). */
export function decodeEntry(text: string): TarSplitEntry | UnknownEntry {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (err) {
    throw new InvalidMetadataError('Cannot read tar-split entry: not JSON', { cause: err })
  }
  return entryFromJson(o)
}

/** An entry from a parsed JSON value. */
function entryFromJson(o: unknown): TarSplitEntry | UnknownEntry {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new InvalidMetadataError('Cannot read tar-split entry: not a JSON object')
  }
  const r = o as Record<string, unknown>
  const int = (v: unknown, what: string): number => {
    if (v === undefined || v === null) return 0
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw new InvalidMetadataError(`Cannot read tar-split entry: ${what} is not an integer`)
    }
    return v
  }
  const type = int(r['type'], 'type')
  const position = int(r['position'], 'position')
  const payload =
    r['payload'] === undefined || r['payload'] === null
      ? undefined
      : base64(r['payload'], 'payload')
  if (type === ENTRY_TYPE.SEGMENT) return { type: 2, payload: payload ?? Buffer.alloc(0), position }
  if (type !== ENTRY_TYPE.FILE) return { type, position }
  const size = int(r['size'], 'size')
  if (size < 0) throw new InvalidMetadataError('Cannot read tar-split entry: negative size')
  const raw =
    r['name_raw'] === undefined || r['name_raw'] === null
      ? undefined
      : base64(r['name_raw'], 'name_raw')
  let name: Buffer
  if (raw !== undefined && raw.length > 0) name = raw
  else if (typeof r['name'] === 'string') name = Buffer.from(r['name'], 'utf8')
  else if (r['name'] === undefined || r['name'] === null) name = Buffer.alloc(0)
  else throw new InvalidMetadataError('Cannot read tar-split entry: name is not a string')
  return payload === undefined
    ? { type: 1, name, size, position }
    : { type: 1, name, size, crc: payload, position }
}

export interface UnpackOptions {
  /** The metadata is plain JSON lines, not gzip'd. */
  readonly uncompressed?: boolean
  readonly signal?: AbortSignal
}

/**
 * Entries of tar-split metadata, in order. Duplicate file names fail with
 * TARSPLIT_DUPLICATE_PATH, as Go's unpacker does.
 */
export async function* unpack(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: UnpackOptions = {},
): AsyncGenerator<TarSplitEntry | UnknownEntry> {
  const input = Readable.from(source, { objectMode: false })
  const stream =
    options.uncompressed === true ? input : input.pipe(createGunzip({ chunkSize: 1 << 18 }))
  if (options.uncompressed !== true) {
    input.once('error', (err) => stream.destroy(err))
  }
  const seen = new SeenPaths()
  try {
    for await (const text of jsonValues(stream as AsyncIterable<Buffer>)) {
      options.signal?.throwIfAborted()
      const e = entryFromJson(text)
      if (e.type === ENTRY_TYPE.FILE && !seen.add((e as { name: Buffer }).name)) {
        throw new DuplicatePathError((e as { name: Buffer }).name.toString('utf8'))
      }
      yield e
    }
  } catch (err) {
    if (
      err instanceof Error &&
      'code' in err &&
      typeof err.code === 'string' &&
      err.code.startsWith('Z_')
    ) {
      throw new InvalidMetadataError('Cannot read tar-split metadata: not valid gzip', {
        cause: err,
      })
    }
    throw err
  } finally {
    stream.destroy()
  }
}
