/**
 * PAX extended headers (POSIX.1-2001): records of the form `"<len> <key>=<value>\n"`, parsed
 * and applied exactly as Go's archive/tar does, including GNU sparse 0.0 records, which repeat
 * keys and are folded into one `GNU.sparse.map` record.
 */
import { copyOut } from './header.js'

export const PAX = {
  PATH: 'path',
  LINKPATH: 'linkpath',
  UNAME: 'uname',
  GNAME: 'gname',
  UID: 'uid',
  GID: 'gid',
  ATIME: 'atime',
  MTIME: 'mtime',
  CTIME: 'ctime',
  SIZE: 'size',
  SCHILY_XATTR: 'SCHILY.xattr.',
  GNU_SPARSE_NUM_BLOCKS: 'GNU.sparse.numblocks',
  GNU_SPARSE_OFFSET: 'GNU.sparse.offset',
  GNU_SPARSE_NUM_BYTES: 'GNU.sparse.numbytes',
  GNU_SPARSE_MAP: 'GNU.sparse.map',
  GNU_SPARSE_NAME: 'GNU.sparse.name',
  GNU_SPARSE_MAJOR: 'GNU.sparse.major',
  GNU_SPARSE_MINOR: 'GNU.sparse.minor',
  GNU_SPARSE_SIZE: 'GNU.sparse.size',
  GNU_SPARSE_REAL_SIZE: 'GNU.sparse.realsize',
} as const

/** A malformed record or value; the reader reports it as TAR_INVALID_PAX with an offset. */
export class PaxError extends Error {}

const DECIMAL_RE = /^[+-]?[0-9]+$/
const INT64_MAX = 2n ** 63n - 1n
const INT64_MIN = -(2n ** 63n)

/** Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, int64 range. */
export function parseDecimal(s: string): number {
  if (!DECIMAL_RE.test(s)) throw new PaxError(`invalid number "${s.slice(0, 40)}"`)
  if (s.length < 16) return Number(s)
  const v = BigInt(s)
  if (v > INT64_MAX || v < INT64_MIN) throw new PaxError(`number out of range "${s.slice(0, 40)}"`)
  return Number(v)
}

/** The keys Go applies to a header, as text: found by their bytes without decoding. */
const KNOWN_KEYS = [
  PAX.PATH,
  PAX.LINKPATH,
  PAX.UNAME,
  PAX.GNAME,
  PAX.UID,
  PAX.GID,
  PAX.ATIME,
  PAX.MTIME,
  PAX.CTIME,
  PAX.SIZE,
]

function keyAt(data: Buffer, start: number, end: number): string {
  const n = end - start
  for (const k of KNOWN_KEYS) {
    if (k.length !== n) continue
    let i = 0
    while (i < n && data[start + i] === k.charCodeAt(i)) i++
    if (i === n) return k
  }
  return data.toString('utf8', start, end)
}

function hasNul(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] === 0) return true
  return false
}

/**
 * Parses a whole PAX header's data (`data` from `start` to `end`) into records (Go's
 * parsePAX). The values are copies: `data` may be a view of the stream.
 */
export function parsePaxRecords(data: Buffer, start = 0, end = data.length): Map<string, Buffer> {
  const records = new Map<string, Buffer>()
  const sparseMap: string[] = []
  let pos = start
  while (pos < end) {
    let space = pos
    while (space < end && data[space] !== 0x20) space++
    if (space === end) throw new PaxError('record without length')
    // strconv.ParseInt: an optional sign, then at least one digit.
    let i = pos
    const negative = data[i] === 0x2d
    if (negative || data[i] === 0x2b) i++
    if (i === space) throw new PaxError('invalid record length')
    let n = 0
    for (; i < space; i++) {
      const c = data[i]!
      if (c < 0x30 || c > 0x39) throw new PaxError('invalid record length')
      n = n * 10 + (c - 0x30)
    }
    if (negative) n = -n
    if (!(n >= 5) || n > end - pos) throw new PaxError('invalid record length')
    const recEnd = pos + n
    if (recEnd - 1 <= space || data[recEnd - 1] !== 0x0a)
      throw new PaxError('record not terminated by newline')
    let eq = space + 1
    while (eq < recEnd - 1 && data[eq] !== 0x3d) eq++
    if (eq >= recEnd - 1) throw new PaxError('record without "="')
    const key = keyAt(data, space + 1, eq)
    if (key === '') throw new PaxError('empty key')
    if (key === PAX.PATH || key === PAX.LINKPATH || key === PAX.UNAME || key === PAX.GNAME) {
      if (hasNul(data, eq + 1, recEnd - 1)) throw new PaxError(`NUL in "${key}" value`)
    } else if (hasNul(data, space + 1, eq)) throw new PaxError('NUL in key')
    pos = recEnd
    if (key === PAX.GNU_SPARSE_OFFSET || key === PAX.GNU_SPARSE_NUM_BYTES) {
      // GNU sparse 0.0: offset/numbytes pairs, strictly alternating.
      const want = sparseMap.length % 2 === 0 ? PAX.GNU_SPARSE_OFFSET : PAX.GNU_SPARSE_NUM_BYTES
      const v = data.toString('latin1', eq + 1, recEnd - 1)
      if (key !== want || v.includes(',')) throw new PaxError('invalid GNU sparse 0.0 record')
      sparseMap.push(v)
    } else {
      records.set(key, copyOut(data, eq + 1, recEnd - 1))
    }
  }
  if (sparseMap.length > 0)
    records.set(PAX.GNU_SPARSE_MAP, Buffer.from(sparseMap.join(','), 'latin1'))
  return records
}

/** Go's parsePAXTime: seconds with an optional fraction, truncated to nanoseconds. */
export function parsePaxTime(s: string): { sec: number; nsec: number } {
  const dot = s.indexOf('.')
  const ss = dot < 0 ? s : s.slice(0, dot)
  const sn = dot < 0 ? '' : s.slice(dot + 1)
  const sec = parseDecimal(ss)
  if (sn.length === 0) return { sec, nsec: 0 }
  if (!/^[0-9]*$/.test(sn)) throw new PaxError(`invalid time "${s.slice(0, 40)}"`)
  const nsec = Number(sn.slice(0, 9).padEnd(9, '0'))
  if (ss.startsWith('-') && nsec > 0) return { sec: sec - 1, nsec: 1e9 - nsec }
  return { sec, nsec }
}

/**
 * parsePaxTime of a record's value. Read from the bytes when they are what writers emit (up
 * to 15 digits, then maybe a fraction); anything else goes through the text.
 */
export function parsePaxTimeBytes(v: Buffer): { sec: number; nsec: number } {
  let i = 0
  let sec = 0
  while (i < v.length && i < 15) {
    const c = v[i]!
    if (c < 0x30 || c > 0x39) break
    sec = sec * 10 + (c - 0x30)
    i++
  }
  if (i > 0 && i === v.length) return { sec, nsec: 0 }
  if (i > 0 && v[i] === 0x2e) {
    let nsec = 0
    let digits = 0
    let j = i + 1
    for (; j < v.length; j++) {
      const c = v[j]!
      if (c < 0x30 || c > 0x39) break
      if (digits < 9) {
        nsec = nsec * 10 + (c - 0x30)
        digits++
      }
    }
    if (j === v.length) {
      for (; digits < 9; digits++) nsec *= 10
      return { sec, nsec }
    }
  }
  return parsePaxTime(v.toString('utf8'))
}

/** A PAX record, encoded with its self-describing length (for the writer). */
export function formatPaxRecord(key: string, value: string | Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.of(0x0a)])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len)), body])
}
