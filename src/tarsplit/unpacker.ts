/**
 * Reads tar-split metadata: gzip'd (one or several members, as Go's reader accepts) JSON
 * objects separated by any whitespace, as Go's streaming decoder reads them. Fields are
 * checked strictly (base64 with padding, integer sizes), duplicate names are refused.
 */
import { createGunzip } from 'node:zlib'
import { Readable } from 'node:stream'
import { SeenPaths } from './clean-path.js'
import { DuplicatePathError, InvalidMetadataError } from './errors.js'
import { ENTRY_TYPE, type TarSplitEntry, type UnknownEntry } from './entry.js'

/** Largest single JSON object accepted (a 1 MiB segment is 1.4 MB of base64). */
export const MAX_ENTRY_JSON = 8 << 20

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function base64(v: unknown, what: string): Buffer {
  if (typeof v !== 'string')
    throw new InvalidMetadataError(`Cannot read tar-split entry: ${what} is not a string`)
  // Go's decoder ignores CR and LF inside base64 data.
  const s = v.includes('\n') || v.includes('\r') ? v.replace(/[\r\n]/g, '') : v
  if (!BASE64_RE.test(s))
    throw new InvalidMetadataError(`Cannot read tar-split entry: ${what} is not base64`)
  return Buffer.from(s, 'base64')
}

/** Decodes one JSON object into an entry (exported for tests and fuzzing). */
export function decodeEntry(text: string): TarSplitEntry | UnknownEntry {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (err) {
    throw new InvalidMetadataError('Cannot read tar-split entry: not JSON', { cause: err })
  }
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

/** Splits a character stream into top-level JSON objects. */
async function* jsonObjects(text: AsyncIterable<string>): AsyncGenerator<string> {
  let buf = ''
  let depth = 0
  let inString = false
  let escaped = false
  let start = -1
  let scanned = 0
  for await (const part of text) {
    buf += part
    let i = scanned
    for (; i < buf.length; i++) {
      const c = buf.charCodeAt(i)
      if (inString) {
        if (escaped) escaped = false
        else if (c === 0x5c) escaped = true
        else if (c === 0x22) inString = false
        continue
      }
      if (c === 0x22) inString = true
      else if (c === 0x7b || c === 0x5b) {
        if (depth === 0) start = i
        depth++
      } else if (c === 0x7d || c === 0x5d) {
        depth--
        if (depth < 0)
          throw new InvalidMetadataError('Cannot read tar-split metadata: unbalanced JSON')
        if (depth === 0) {
          yield buf.slice(start, i + 1)
          start = -1
        }
      } else if (depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw new InvalidMetadataError(
          'Cannot read tar-split metadata: unexpected text between entries',
        )
      }
    }
    // Keep only the unfinished object.
    if (start >= 0) {
      buf = buf.slice(start)
      scanned = i - start
      start = 0
    } else {
      buf = ''
      scanned = 0
    }
    if (buf.length > MAX_ENTRY_JSON)
      throw new InvalidMetadataError('Cannot read tar-split metadata: entry too large')
  }
  if (depth !== 0 || inString)
    throw new InvalidMetadataError('Cannot read tar-split metadata: truncated JSON')
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
  const stream = options.uncompressed === true ? input : input.pipe(createGunzip())
  if (options.uncompressed !== true) {
    input.once('error', (err) => stream.destroy(err))
  }
  stream.setEncoding('utf8')
  const seen = new SeenPaths()
  try {
    for await (const text of jsonObjects(stream as AsyncIterable<string>)) {
      options.signal?.throwIfAborted()
      const e = decodeEntry(text)
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
