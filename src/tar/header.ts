/**
 * Decoding and encoding of one 512-byte header block, field by field as Go's archive/tar
 * lays them out (V7, USTAR, GNU and star variants share the first 345 bytes).
 */
import { FORMAT, TYPE } from './types.js'
import { TarError } from './errors.js'

/** [offset, length] of every header field. */
export const FIELD = {
  name: [0, 100],
  mode: [100, 8],
  uid: [108, 8],
  gid: [116, 8],
  size: [124, 12],
  mtime: [136, 12],
  chksum: [148, 8],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  version: [263, 2],
  uname: [265, 32],
  gname: [297, 32],
  devmajor: [329, 8],
  devminor: [337, 8],
  prefix: [345, 155], // USTAR
  starPrefix: [345, 131],
  starAtime: [476, 12],
  starCtime: [488, 12],
  starTrailer: [508, 4],
  gnuAtime: [345, 12],
  gnuCtime: [357, 12],
  gnuSparse: [386, 96], // 4 entries of offset[12] + length[12]
  gnuIsExtended: [482, 1],
  gnuRealSize: [483, 12],
} as const satisfies Record<string, readonly [number, number]>

export const MAGIC_USTAR = 'ustar\0'
export const VERSION_USTAR = '00'
export const MAGIC_GNU = 'ustar '
export const VERSION_GNU = ' \0'
export const TRAILER_STAR = 'tar\0'

const NO_BYTES = Buffer.alloc(0)

/**
 * A header block decoded on its own, before PAX records and long names are applied. Its text
 * fields stay in the block (`block` at `at`) and are read with headerName/headerText, before
 * the reader reads on: most of them are replaced by PAX records or never needed. A reader
 * decodes every block into the same object.
 */
export class RawHeader {
  typeflag = 0
  size = 0
  mode = 0
  uid = 0
  gid = 0
  mtime = 0
  devmajor = 0
  devminor = 0
  atime: number | undefined = undefined
  ctime: number | undefined = undefined
  format = 0
  block: Buffer = NO_BYTES
  at = 0
  /** The block has USTAR-style fields (uname, gname): its format was more than V7. */
  extended = false
  /** Where the name's prefix lies in `block`, and its length (0: none). */
  prefixAt = 0
  prefixLen = 0
}

/**
 * `src` from `start` to `end` into a new Buffer: a byte loop for short runs (names, record
 * values), which makes no intermediate view as Buffer.copy does.
 */
export function copyOut(src: Uint8Array, start: number, end: number): Buffer {
  const n = end - start
  const out = Buffer.allocUnsafe(n)
  if (n > 256) out.set(src.subarray(start, end))
  else for (let i = 0; i < n; i++) out[i] = src[start + i]!
  return out
}

/** Length of the NUL-terminated field at `off` (Go's parser.parseString). */
function cLength(b: Uint8Array, off: number, len: number): number {
  for (let i = 0; i < len; i++) if (b[off + i] === 0) return i
  return len
}

/** Bytes of a NUL-terminated field, up to the first NUL (Go's parser.parseString). */
export function cString(b: Uint8Array): Uint8Array {
  const i = b.indexOf(0)
  return i >= 0 ? b.subarray(0, i) : b
}

export function isZeroBlock(b: Uint8Array, at = 0): boolean {
  return blockSums(b, at) === 0
}

/**
 * One pass over the block at `at`: the sum of its bytes times 256 plus the OR of its bytes
 * (0 for a zero block; the OR tells whether every byte is ASCII).
 */
export function blockSums(b: Uint8Array, at: number): number {
  let sum = 0
  let or = 0
  for (let i = at, end = at + 512; i < end; i += 8) {
    const c0 = b[i]!
    const c1 = b[i + 1]!
    const c2 = b[i + 2]!
    const c3 = b[i + 3]!
    const c4 = b[i + 4]!
    const c5 = b[i + 5]!
    const c6 = b[i + 6]!
    const c7 = b[i + 7]!
    sum += c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7
    or |= c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7
  }
  return sum * 256 + or
}

/** Signals a malformed number; the caller turns it into a TarError with its offset. */
class NumberError extends Error {}

/** A malformed octal number (octal values are never negative). */
const BAD = -1

/**
 * Octal field at `off`: surrounding spaces and NULs are ignored, digits run to the first NUL
 * (Go's parser.parseOctal). An empty field is 0; BAD when a byte is not an octal digit.
 */
function octalAt(b: Uint8Array, off: number, len: number): number {
  let start = off
  let end = off + len
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--
  let value = 0
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === 0) break
    if (c < 0x30 || c > 0x37) return BAD
    value = value * 8 + (c - 0x30)
  }
  return value
}

/**
 * Octal field: surrounding spaces and NULs are ignored, digits run to the first NUL
 * (Go's parser.parseOctal). An empty field is 0.
 */
export function parseOctal(b: Uint8Array): number {
  const v = octalAt(b, 0, b.length)
  if (v === BAD) throw new NumberError()
  return v
}

/** Base-256 field (two's complement, big-endian, top bit of the first byte set). */
function base256(b: Uint8Array): number {
  const inv = (b[0]! & 0x40) !== 0 ? 0xff : 0
  let x = 0n
  for (let i = 0; i < b.length; i++) {
    let c = b[i]! ^ inv
    if (i === 0) c &= 0x7f
    if (x >> 56n > 0n) throw new NumberError()
    x = (x << 8n) | BigInt(c)
  }
  if (x >> 63n > 0n) throw new NumberError()
  return inv === 0xff ? Number(-x - 1n) : Number(x)
}

/**
 * Numeric field: base-256 (two's complement, big-endian) when the top bit of the first byte
 * is set, octal otherwise. Overflow of int64 is an error, as in Go.
 */
export function parseNumeric(b: Uint8Array): number {
  if (b.length === 0 || (b[0]! & 0x80) === 0) return parseOctal(b)
  return base256(b)
}

/** Sums of the block with the checksum field read as spaces: [unsigned, signed]. */
export function checksums(b: Uint8Array, at = 0): [number, number] {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[at + i]!
    unsigned += c
    signed += c < 128 ? c : c - 256
  }
  return [unsigned, signed]
}

/** Go's block.getFormat: checksum first, then the magic values. */
export function blockFormat(b: Uint8Array, at = 0, sums = blockSums(b, at)): number {
  const value = octalAt(b, at + FIELD.chksum[0], FIELD.chksum[1])
  if (value === BAD) return FORMAT.UNKNOWN
  // The checksum field counts as eight spaces.
  let field = 0
  for (let i = at + 148; i < at + 156; i++) field += b[i]!
  const unsigned = Math.floor(sums / 256) - field + 8 * 0x20
  if (value !== unsigned && ((sums & 0x80) === 0 || value !== checksums(b, at)[1])) {
    return FORMAT.UNKNOWN
  }
  if (bytesAre(b, at + FIELD.magic[0], MAGIC_USTAR)) {
    return bytesAre(b, at + FIELD.starTrailer[0], TRAILER_STAR)
      ? FORMAT.STAR
      : FORMAT.USTAR | FORMAT.PAX
  }
  if (
    bytesAre(b, at + FIELD.magic[0], MAGIC_GNU) &&
    bytesAre(b, at + FIELD.version[0], VERSION_GNU)
  ) {
    return FORMAT.GNU
  }
  return FORMAT.V7
}

/** True when the bytes at `off` are the ASCII text `s`. */
function bytesAre(b: Uint8Array, off: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (b[off + i] !== s.charCodeAt(i)) return false
  return true
}

function isAscii(b: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (b[i]! >= 0x80) return false
  return true
}

/** A numeric field of the block at `at`; throws TAR_INVALID_NUMBER naming the field. */
function num(
  b: Buffer,
  at: number,
  f: readonly [number, number],
  what: string,
  offset: number,
): number {
  const off = at + f[0]
  if ((b[off]! & 0x80) === 0) {
    const v = octalAt(b, off, f[1])
    if (v !== BAD) return v
  } else {
    try {
      return base256(b.subarray(off, off + f[1]))
    } catch {
      // reported below
    }
  }
  throw new TarError('TAR_INVALID_NUMBER', `Cannot read tar header: invalid ${what} field`, offset)
}

/**
 * Decodes one non-zero header block (at `at` in `b`) into `h` as Go's Reader.readHeader
 * does; `sums` is blockSums of the block. Throws TarError (TAR_BAD_CHECKSUM for an
 * unrecognisable block, TAR_INVALID_NUMBER for a bad number).
 */
export function decodeHeader(
  b: Buffer,
  at: number,
  offset: number,
  sums = blockSums(b, at),
  h = new RawHeader(),
): RawHeader {
  let format = blockFormat(b, at, sums)
  if (format === FORMAT.UNKNOWN) {
    throw new TarError(
      'TAR_BAD_CHECKSUM',
      'Cannot read tar header: checksum mismatch or unknown format',
      offset,
    )
  }
  h.typeflag = b[at + 156]!
  h.size = num(b, at, FIELD.size, 'size', offset)
  h.mode = num(b, at, FIELD.mode, 'mode', offset)
  h.uid = num(b, at, FIELD.uid, 'uid', offset)
  h.gid = num(b, at, FIELD.gid, 'gid', offset)
  h.mtime = num(b, at, FIELD.mtime, 'mtime', offset)
  h.block = b
  h.at = at
  h.atime = undefined
  h.ctime = undefined
  h.prefixAt = at + FIELD.prefix[0]
  h.prefixLen = 0
  h.extended = format !== FORMAT.V7
  if (!h.extended) {
    h.devmajor = 0
    h.devminor = 0
    h.format = format
    return h
  }
  h.devmajor = num(b, at, FIELD.devmajor, 'devmajor', offset)
  h.devminor = num(b, at, FIELD.devminor, 'devminor', offset)
  if (format & (FORMAT.USTAR | FORMAT.PAX)) {
    h.prefixLen = cLength(b, h.prefixAt, FIELD.prefix[1])
    if ((sums & 0x80) !== 0) format = FORMAT.UNKNOWN
  } else if (format & FORMAT.STAR) {
    h.prefixAt = at + FIELD.starPrefix[0]
    h.prefixLen = cLength(b, h.prefixAt, FIELD.starPrefix[1])
    h.atime = num(b, at, FIELD.starAtime, 'atime', offset)
    h.ctime = num(b, at, FIELD.starCtime, 'ctime', offset)
  } else if (format & FORMAT.GNU) {
    // Go before 1.8 wrote a USTAR prefix into the GNU atime/ctime fields: when those do not
    // parse and the field looks like text, read it as a prefix (golang.org/issue/12594).
    const a = at + FIELD.gnuAtime[0]
    const c = at + FIELD.gnuCtime[0]
    try {
      if (b[a] !== 0) h.atime = parseNumeric(b.subarray(a, a + FIELD.gnuAtime[1]))
      if (b[c] !== 0) h.ctime = parseNumeric(b.subarray(c, c + FIELD.gnuCtime[1]))
    } catch {
      h.atime = undefined
      h.ctime = undefined
      const n = cLength(b, h.prefixAt, FIELD.prefix[1])
      if (isAscii(b, h.prefixAt, n)) h.prefixLen = n
      format = FORMAT.UNKNOWN
    }
  }
  h.format = format
  return h
}

/** The header's name, prefix joined, as an owned Buffer. */
export function headerName(h: RawHeader): Buffer {
  const b = h.block
  const off = h.at + FIELD.name[0]
  const len = cLength(b, off, FIELD.name[1])
  const p = h.prefixLen
  if (p === 0) return len === 0 ? NO_BYTES : copyOut(b, off, off + len)
  const out = Buffer.allocUnsafe(p + 1 + len)
  for (let i = 0; i < p; i++) out[i] = b[h.prefixAt + i]!
  out[p] = 0x2f
  for (let i = 0; i < len; i++) out[p + 1 + i] = b[off + i]!
  return out
}

/** The linkname as an owned Buffer (most are empty). */
export function headerLinkname(h: RawHeader): Buffer {
  const off = h.at + FIELD.linkname[0]
  const len = cLength(h.block, off, FIELD.linkname[1])
  return len === 0 ? NO_BYTES : copyOut(h.block, off, off + len)
}

/** The uname or gname field as text ('' for a V7 header). */
export function headerText(h: RawHeader, f: typeof FIELD.uname | typeof FIELD.gname): string {
  if (!h.extended) return ''
  const off = h.at + f[0]
  const len = cLength(h.block, off, f[1])
  return len === 0 ? '' : h.block.toString('utf8', off, off + len)
}

/** True for types whose data section is always empty, whatever the size field says. */
export function isHeaderOnlyType(t: number): boolean {
  return (
    t === TYPE.LINK ||
    t === TYPE.SYMLINK ||
    t === TYPE.CHAR ||
    t === TYPE.BLOCK ||
    t === TYPE.DIR ||
    t === TYPE.FIFO
  )
}

/** Bytes of padding after `size` bytes of data, up to the next block boundary. */
export function blockPadding(size: number): number {
  return -size & 511
}
