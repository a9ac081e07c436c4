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

/** A header block decoded on its own, before PAX records and long names are applied. */
export interface RawHeader {
  typeflag: number
  nameRaw: Buffer
  linknameRaw: Buffer
  size: number
  mode: number
  uid: number
  gid: number
  mtime: number
  uname: Buffer
  gname: Buffer
  devmajor: number
  devminor: number
  atime?: number
  ctime?: number
  format: number
}

const field = (b: Uint8Array, [off, len]: readonly [number, number]): Uint8Array =>
  b.subarray(off, off + len)

const NO_BYTES = Buffer.alloc(0)

/** A NUL-terminated field as an owned Buffer (most link and user names are empty). */
function ownedString(b: Uint8Array, f: readonly [number, number]): Buffer {
  if (b[f[0]] === 0) return NO_BYTES
  return Buffer.from(cString(field(b, f)))
}

/** Bytes of a NUL-terminated field, up to the first NUL (Go's parser.parseString). */
export function cString(b: Uint8Array): Uint8Array {
  const i = b.indexOf(0)
  return i >= 0 ? b.subarray(0, i) : b
}

export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false
  return true
}

/** Signals a malformed number; the caller turns it into a TarError with its offset. */
class NumberError extends Error {}

/**
 * Octal field: surrounding spaces and NULs are ignored, digits run to the first NUL
 * (Go's parser.parseOctal). An empty field is 0.
 */
export function parseOctal(b: Uint8Array): number {
  let start = 0
  let end = b.length
  while (start < end && (b[start] === 0x20 || b[start] === 0)) start++
  while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--
  if (start === end) return 0
  let value = 0
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === 0) break
    if (c < 0x30 || c > 0x37) throw new NumberError()
    value = value * 8 + (c - 0x30)
  }
  return value
}

/**
 * Numeric field: base-256 (two's complement, big-endian) when the top bit of the first byte
 * is set, octal otherwise. Overflow of int64 is an error, as in Go.
 */
export function parseNumeric(b: Uint8Array): number {
  if (b.length === 0 || (b[0]! & 0x80) === 0) return parseOctal(b)
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

/** Sums of the block with the checksum field read as spaces: [unsigned, signed]. */
export function checksums(b: Uint8Array): [number, number] {
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!
    unsigned += c
    signed += c < 128 ? c : c - 256
  }
  return [unsigned, signed]
}

/** Go's block.getFormat: checksum first, then the magic values. */
export function blockFormat(b: Uint8Array): number {
  let value: number
  try {
    value = parseOctal(field(b, FIELD.chksum))
  } catch {
    return FORMAT.UNKNOWN
  }
  const [u, s] = checksums(b)
  if (value !== u && value !== s) return FORMAT.UNKNOWN
  if (bytesAre(b, FIELD.magic[0], MAGIC_USTAR)) {
    return bytesAre(b, FIELD.starTrailer[0], TRAILER_STAR) ? FORMAT.STAR : FORMAT.USTAR | FORMAT.PAX
  }
  if (bytesAre(b, FIELD.magic[0], MAGIC_GNU) && bytesAre(b, FIELD.version[0], VERSION_GNU)) {
    return FORMAT.GNU
  }
  return FORMAT.V7
}

/** True when the bytes at `off` are the ASCII text `s`. */
function bytesAre(b: Uint8Array, off: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (b[off + i] !== s.charCodeAt(i)) return false
  return true
}

function isAscii(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80) return false
  return true
}

function joinPrefix(prefix: Uint8Array, name: Buffer): Buffer {
  if (prefix.length === 0) return name
  return Buffer.concat([prefix, Buffer.of(0x2f), name])
}

/**
 * Decodes one non-zero header block as Go's Reader.readHeader does. Throws TarError
 * (TAR_BAD_CHECKSUM for an unrecognisable block, TAR_INVALID_NUMBER for a bad number).
 */
export function decodeHeader(b: Uint8Array, offset: number): RawHeader {
  let format = blockFormat(b)
  if (format === FORMAT.UNKNOWN) {
    throw new TarError(
      'TAR_BAD_CHECKSUM',
      'Cannot read tar header: checksum mismatch or unknown format',
      offset,
    )
  }
  const num = (f: readonly [number, number], what: string): number => {
    try {
      return parseNumeric(field(b, f))
    } catch {
      throw new TarError(
        'TAR_INVALID_NUMBER',
        `Cannot read tar header: invalid ${what} field`,
        offset,
      )
    }
  }
  const h: RawHeader = {
    typeflag: b[156]!,
    nameRaw: ownedString(b, FIELD.name),
    linknameRaw: ownedString(b, FIELD.linkname),
    size: num(FIELD.size, 'size'),
    mode: num(FIELD.mode, 'mode'),
    uid: num(FIELD.uid, 'uid'),
    gid: num(FIELD.gid, 'gid'),
    mtime: num(FIELD.mtime, 'mtime'),
    uname: NO_BYTES,
    gname: NO_BYTES,
    devmajor: 0,
    devminor: 0,
    format,
  }
  if (format > FORMAT.V7) {
    h.uname = ownedString(b, FIELD.uname)
    h.gname = ownedString(b, FIELD.gname)
    h.devmajor = num(FIELD.devmajor, 'devmajor')
    h.devminor = num(FIELD.devminor, 'devminor')
    let prefix: Uint8Array = new Uint8Array(0)
    if (format & (FORMAT.USTAR | FORMAT.PAX)) {
      prefix = cString(field(b, FIELD.prefix))
      if (!isAscii(b)) format = FORMAT.UNKNOWN
    } else if (format & FORMAT.STAR) {
      prefix = cString(field(b, FIELD.starPrefix))
      h.atime = num(FIELD.starAtime, 'atime')
      h.ctime = num(FIELD.starCtime, 'ctime')
    } else if (format & FORMAT.GNU) {
      // Go before 1.8 wrote a USTAR prefix into the GNU atime/ctime fields: when those do not
      // parse and the field looks like text, read it as a prefix (golang.org/issue/12594).
      try {
        const a = field(b, FIELD.gnuAtime)
        const c = field(b, FIELD.gnuCtime)
        if (a[0] !== 0) h.atime = parseNumeric(a)
        if (c[0] !== 0) h.ctime = parseNumeric(c)
      } catch {
        delete h.atime
        delete h.ctime
        const p = cString(field(b, FIELD.prefix))
        if (isAscii(p)) prefix = p
        format = FORMAT.UNKNOWN
      }
    }
    h.nameRaw = joinPrefix(prefix, h.nameRaw)
    h.format = format
  }
  return h
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
