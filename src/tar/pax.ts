/**
 * PAX extended headers (POSIX.1-2001): records of the form `"<len> <key>=<value>\n"`, parsed
 * and applied exactly as Go's archive/tar does, including GNU sparse 0.0 records, which repeat
 * keys and are folded into one `GNU.sparse.map` record.
 */

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

/** Parses a whole PAX header's data into records (Go's parsePAX). */
export function parsePaxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>()
  const sparseMap: string[] = []
  let pos = 0
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos)
    if (space < 0) throw new PaxError('record without length')
    const lenStr = data.toString('latin1', pos, space)
    if (!DECIMAL_RE.test(lenStr)) throw new PaxError('invalid record length')
    const n = Number(lenStr)
    if (!(n >= 5) || n > data.length - pos) throw new PaxError('invalid record length')
    const recEnd = pos + n
    if (recEnd - 1 <= space || data[recEnd - 1] !== 0x0a)
      throw new PaxError('record not terminated by newline')
    const eq = data.indexOf(0x3d, space + 1)
    if (eq < 0 || eq >= recEnd - 1) throw new PaxError('record without "="')
    const key = data.toString('utf8', space + 1, eq)
    const value = data.subarray(eq + 1, recEnd - 1)
    if (key === '') throw new PaxError('empty key')
    const nulIn = (b: Uint8Array): boolean => b.indexOf(0) >= 0
    if (key === PAX.PATH || key === PAX.LINKPATH || key === PAX.UNAME || key === PAX.GNAME) {
      if (nulIn(value)) throw new PaxError(`NUL in "${key}" value`)
    } else if (nulIn(data.subarray(space + 1, eq))) throw new PaxError('NUL in key')
    pos = recEnd
    if (key === PAX.GNU_SPARSE_OFFSET || key === PAX.GNU_SPARSE_NUM_BYTES) {
      // GNU sparse 0.0: offset/numbytes pairs, strictly alternating.
      const want = sparseMap.length % 2 === 0 ? PAX.GNU_SPARSE_OFFSET : PAX.GNU_SPARSE_NUM_BYTES
      const v = value.toString('latin1')
      if (key !== want || v.includes(',')) throw new PaxError('invalid GNU sparse 0.0 record')
      sparseMap.push(v)
    } else {
      records.set(key, Buffer.from(value))
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

/** A PAX record, encoded with its self-describing length (for the writer). */
export function formatPaxRecord(key: string, value: string | Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.of(0x0a)])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len)), body])
}
