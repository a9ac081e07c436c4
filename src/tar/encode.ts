/**
 * Encoding of one entry's header: the choice of format, the PAX records and the 512-byte
 * blocks, byte for byte as Go's `archive/tar` Writer makes them (Docker's layer diffs come
 * from it, so a diff we export can hash to the DiffID Docker computes).
 *
 * - **USTAR** when every field fits: ASCII text, a name of up to 100 bytes or one that splits
 *   at a `/` into a 155-byte prefix and a name, uid/gid below 2^21, size below 8 GiB, mtime
 *   in 0..2^33-1 (numbers are octal, `%07o\0` style).
 * - **PAX** otherwise: an `x` header `<dir>/PaxHeaders.0/<base>` whose records (sorted by key)
 *   carry what does not fit, then the entry's block with the ASCII bytes of the text, cut to
 *   the field, and 0 in numeric fields a record replaces. Xattrs and extra records mean PAX.
 * - mode, devmajor and devminor have no PAX key: beyond octal they are written in base-256
 *   (a GNU extension all readers accept), where Go would switch to the GNU format.
 *
 * Times: by default mtime is cut to whole seconds and atime/ctime are dropped, which is what
 * Docker does for every layer diff (moby `FileInfoHeader`: `Truncate(time.Second)`, then
 * `Format = FormatPAX`; Go's own default rounds instead). With `subSecondTimes`, a non-zero
 * `mtimeNsec` and any atime/ctime go into PAX records (Go with `Format: FormatPAX`).
 */
import { TarError } from './errors.js'
import { FIELD, MAGIC_USTAR, VERSION_USTAR, isHeaderOnlyType } from './header.js'
import { MAX_SPECIAL_FILE_SIZE } from './limits.js'
import { PAX, formatPaxRecord } from './pax.js'
import { BLOCK_SIZE, TYPE } from './types.js'

/** A point in time: seconds since the epoch (may be negative) and nanoseconds 0..999999999. */
export interface TarTime {
  readonly sec: number
  readonly nsec: number
}

/**
 * What the writer needs to know about an entry. Every field is optional; a missing one is
 * zero or empty, as in Go's `tar.Header`. A {@link TarHeader} read by `readTar` fits as it
 * is: `format`, `offset` and `sparse` are ignored (sparse files are written dense: the body
 * is the logical data, as Go's writer does).
 */
export interface TarHeaderInput {
  /** Type flag (see TYPE); default TYPE.REG. A legacy `\0` becomes DIR or REG, as in Go. */
  readonly typeflag?: number
  /** Entry name, written as UTF-8. Directories conventionally end in `/`. */
  readonly name?: string
  /** Entry name as exact bytes (non-UTF-8 names); wins over `name` when both are given. */
  readonly nameRaw?: Uint8Array
  /** Target of a hard link or symlink. */
  readonly linkname?: string
  /** Link target as exact bytes; wins over `linkname`. */
  readonly linknameRaw?: Uint8Array
  /**
   * Bytes of data that follow; the body must yield exactly this many. Header-only types
   * (links, devices, directories, fifos) carry no data whatever this says: the value is
   * written to the header, as Go does, and the body must be empty.
   */
  readonly size?: number
  /** Permission and mode bits (`0o755`, `0o4755`...). */
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  readonly uname?: string
  readonly gname?: string
  /** Modification time in seconds since the epoch; may be negative. */
  readonly mtime?: number
  /** Nanoseconds of mtime; kept only with `subSecondTimes`. */
  readonly mtimeNsec?: number
  /** Access and change times; written only with `subSecondTimes`. */
  readonly atime?: TarTime
  readonly ctime?: TarTime
  /** Device numbers, meaningful for TYPE.CHAR and TYPE.BLOCK. */
  readonly devmajor?: number
  readonly devminor?: number
  /** Extended attributes, written as `SCHILY.xattr.<name>` records; values may be binary. */
  readonly xattrs?: ReadonlyMap<string, Uint8Array | string>
  /**
   * Further PAX records (Go's `PAXRecords`): any non-empty map makes the entry PAX. Records
   * for the keys the header's fields own (`path`, `size`...) are kept only when equal to the
   * field, so a header read back and written again keeps its records; `GNU.sparse.*` records
   * are dropped. For TYPE.X_GLOBAL_HEADER this map is the global header's content.
   */
  readonly pax?: ReadonlyMap<string, Uint8Array | string>
}

export interface EncodeHeaderOptions {
  /** Keep sub-second mtime, atime and ctime in PAX records (default false; see above). */
  readonly subSecondTimes?: boolean
  /** Stream offset the header will be written at, reported in errors (default 0). */
  readonly offset?: number
}

/** The bytes that precede an entry's data. */
export interface EncodedHeader {
  /** The PAX extended header (block, records, padding), if any, then the entry's block. */
  readonly bytes: Buffer
  /** Data bytes that must follow: 0 for header-only types and global headers. */
  readonly dataSize: number
  readonly format: 'ustar' | 'pax'
}

const NAME_SIZE = FIELD.name[1]
const GLOBAL_NAME = 'GlobalHead.0.0' // Go's name for a global header without one
/** Keys the header's fields own (Go's basicKeys). */
const BASIC_KEYS = new Set('path linkpath size uid gid uname gname mtime atime ctime'.split(' '))
/** Keys whose values readers cut at a NUL. */
const TEXT_KEYS = new Set<string>([PAX.PATH, PAX.LINKPATH, PAX.UNAME, PAX.GNAME])
const GNU_SPARSE_PREFIX = 'GNU.sparse.'

type Field = readonly [number, number]
type Records = Map<string, Uint8Array>

/** Go's fitsInOctal: an n-byte field holds n-1 digits and a NUL. */
export function fitsOctal(fieldLength: number, x: number): boolean {
  return x >= 0 && (fieldLength >= 22 || x < 8 ** (fieldLength - 1))
}

/** Octal digits, zero-padded and NUL-terminated (`%07o\0`); 0 when the value does not fit. */
export function putOctal(b: Uint8Array, [off, len]: Field, x: number): void {
  const digits = (fitsOctal(len, x) ? x : 0).toString(8).padStart(len - 1, '0')
  for (let i = 0; i < digits.length; i++) b[off + i] = digits.charCodeAt(i)
  b[off + len - 1] = 0
}

/** Octal when it fits, otherwise base-256: two's complement, big-endian, top bit set. */
export function putNumeric(b: Uint8Array, f: Field, x: number): void {
  const [off, len] = f
  if (fitsOctal(len, x)) return putOctal(b, f, x)
  let v = BigInt.asUintN(len * 8, BigInt(x))
  for (let i = off + len - 1; i >= off; i--) {
    b[i] = Number(v & 0xffn)
    v >>= 8n
  }
  b[off] = b[off]! | 0x80
}

/**
 * Text cut to the field, NUL-terminated when shorter. A cut never ends in `/`: some readers
 * take a V7 name ending in `/` for a directory, whatever the PAX path says (Go's formatString).
 */
function putString(b: Uint8Array, [off, len]: Field, s: Uint8Array): void {
  b.set(s.subarray(0, len), off)
  if (s.length < len) b[off + s.length] = 0
  if (s.length > len && s[len - 1] === 0x2f) {
    let n = len
    while (n > 0 && s[n - 1] === 0x2f) n--
    b[off + n] = 0
  }
}

/** Fills the checksum field: six octal digits, NUL, space (Go's setFormat). */
export function putChecksum(b: Uint8Array): void {
  let sum = 0
  for (let i = 0; i < BLOCK_SIZE; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!
  putOctal(b, [148, 7], sum)
  b[155] = 0x20
}

/** Every byte printable-or-control ASCII and not NUL (Go's isASCII of a C string). */
function isAscii(s: Uint8Array): boolean {
  for (const c of s) if (c === 0 || c >= 0x80) return false
  return true
}

/** The ASCII bytes only (Go's toASCII: non-ASCII code points and NULs are dropped). */
function toAscii(s: Uint8Array): Buffer {
  return isAscii(s) ? Buffer.from(s) : Buffer.from(s.filter((c) => c !== 0 && c < 0x80))
}

/** Go's splitUSTARPath: [prefix, name] when a long ASCII name splits at a `/`. */
export function splitUstarPath(name: Uint8Array): [Uint8Array, Uint8Array] | undefined {
  let length = name.length
  if (length <= NAME_SIZE || !isAscii(name)) return undefined
  if (length > FIELD.prefix[1] + 1) length = FIELD.prefix[1] + 1
  else if (name[length - 1] === 0x2f) length--
  const i = name.subarray(0, length).lastIndexOf(0x2f)
  const suffix = name.length - i - 1
  if (i <= 0 || suffix > NAME_SIZE || suffix === 0 || i > FIELD.prefix[1]) return undefined
  return [name.subarray(0, i), name.subarray(i + 1)]
}

/** Go's formatPAXTime: `sec[.fraction]`, trailing zeros dropped, negative times signed. */
export function formatPaxTime(sec: number, nsec: number): string {
  if (nsec === 0) return String(sec)
  const [sign, s, n] = sec < 0 ? ['-', -(sec + 1), 1e9 - nsec] : ['', sec, nsec]
  return `${sign}${s}.${String(n).padStart(9, '0')}`.replace(/0+$/, '')
}

/** Go's path.Clean on bytes (latin1 keeps them one to one). */
function cleanPath(p: string): string {
  const rooted = p.startsWith('/')
  const out: string[] = []
  for (const e of p.split('/')) {
    if (e === '' || e === '.') continue
    if (e !== '..') out.push(e)
    else if (out.length > 0 && out.at(-1) !== '..') out.pop()
    else if (!rooted) out.push('..')
  }
  const s = (rooted ? '/' : '') + out.join('/')
  return s === '' ? '.' : s
}

/** Name of the `x` header of an entry: `path.Join(dir, "PaxHeaders.0", base)`, as Go. */
function paxHeaderName(name: Uint8Array): Buffer {
  const s = Buffer.from(name).toString('latin1')
  const i = s.lastIndexOf('/') + 1
  return Buffer.from(cleanPath(`${s.slice(0, i)}PaxHeaders.0/${s.slice(i)}`), 'latin1')
}

/** The header block of a meta entry ('x' or 'g'): Go's writeRawFile. */
function metaBlock(name: Uint8Array, size: number, typeflag: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE)
  let n = toAscii(name).subarray(0, NAME_SIZE)
  while (n.length > 0 && n[n.length - 1] === 0x2f) n = n.subarray(0, -1)
  putString(b, FIELD.name, n)
  for (const f of [FIELD.mode, FIELD.uid, FIELD.gid, FIELD.mtime]) putOctal(b, f, 0)
  putOctal(b, FIELD.size, size)
  b[FIELD.typeflag[0]] = typeflag
  b.write(MAGIC_USTAR + VERSION_USTAR, FIELD.magic[0], 'latin1')
  putChecksum(b)
  return b
}

const bytes = (v: Uint8Array | string): Uint8Array =>
  typeof v === 'string' ? Buffer.from(v, 'utf8') : v

/** Records sorted by key bytes (Go sorts its keys) and joined, with the meta entry around. */
function metaEntry(name: Uint8Array, records: Records, typeflag: number, at: number): Buffer {
  const keys = [...records.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const data = Buffer.concat(keys.map((k) => formatPaxRecord(k, records.get(k)!)))
  const limit = MAX_SPECIAL_FILE_SIZE
  const msg = `Cannot encode PAX header: ${data.length} bytes of records, the limit is ${limit}`
  if (data.length > limit) throw new TarError('TAR_FIELD_TOO_LONG', msg, at)
  const pad = Buffer.alloc(-data.length & (BLOCK_SIZE - 1))
  return Buffer.concat([metaBlock(name, data.length, typeflag), data, pad])
}

function integer(v: number | undefined, what: string): number {
  if (v === undefined) return 0
  if (!Number.isSafeInteger(v))
    throw new RangeError(`Cannot encode tar header: ${what} ${v} is not a safe integer`)
  return v
}

function time(t: TarTime | undefined, what: string): TarTime | undefined {
  if (t === undefined) return undefined
  const nsec = integer(t.nsec, `${what} nanoseconds`)
  if (nsec < 0 || nsec >= 1e9)
    throw new RangeError(`Cannot encode tar header: ${what} nanoseconds ${nsec} out of range`)
  return { sec: integer(t.sec, what), nsec }
}

function text(raw: Uint8Array | undefined, s: string | undefined): Buffer {
  return raw !== undefined ? Buffer.from(raw) : Buffer.from(s ?? '', 'utf8')
}

/** A header's values, checked and with defaults applied. */
type Fields = ReturnType<typeof fields>

function fields(input: TarHeaderInput, typeflag: number, name: Buffer, precise: boolean) {
  const mtime = time({ sec: input.mtime ?? 0, nsec: input.mtimeNsec ?? 0 }, 'mtime')!
  const size = integer(input.size, 'size')
  if (size < 0) throw new RangeError(`Cannot encode tar header: negative size ${size}`)
  return {
    typeflag,
    name,
    link: text(input.linknameRaw, input.linkname),
    uname: text(undefined, input.uname),
    gname: text(undefined, input.gname),
    size,
    mode: integer(input.mode, 'mode'),
    uid: integer(input.uid, 'uid'),
    gid: integer(input.gid, 'gid'),
    devmajor: integer(input.devmajor, 'devmajor'),
    devminor: integer(input.devminor, 'devminor'),
    mtime: precise ? mtime : { sec: mtime.sec, nsec: 0 },
    atime: precise ? time(input.atime, 'atime') : undefined,
    ctime: precise ? time(input.ctime, 'ctime') : undefined,
  }
}

/**
 * Go's Header.allowedFormats, restricted to USTAR and PAX: adds to `records` what the
 * fields cannot hold and says whether USTAR is still possible.
 */
function choose(f: Fields, pax: TarHeaderInput['pax'], records: Records): boolean {
  let ustar = records.size === 0 && (pax?.size ?? 0) === 0
  const own = new Map<string, Buffer>() // the fields' values, per PAX key
  const need = (key: string, value: Buffer, fits: boolean, splits = false): void => {
    own.set(key, value)
    if (fits) return
    records.set(key, value)
    if (!splits) ustar = false
  }
  const fitsText = (v: Buffer, [, len]: Field): boolean => isAscii(v) && v.length <= len
  const dec = (n: number): Buffer => Buffer.from(String(n))
  const paxTime = (t: TarTime): Buffer => Buffer.from(formatPaxTime(t.sec, t.nsec))
  need(PAX.PATH, f.name, fitsText(f.name, FIELD.name), splitUstarPath(f.name) !== undefined)
  need(PAX.LINKPATH, f.link, fitsText(f.link, FIELD.linkname))
  need(PAX.UNAME, f.uname, fitsText(f.uname, FIELD.uname))
  need(PAX.GNAME, f.gname, fitsText(f.gname, FIELD.gname))
  need(PAX.UID, dec(f.uid), fitsOctal(FIELD.uid[1], f.uid))
  need(PAX.GID, dec(f.gid), fitsOctal(FIELD.gid[1], f.gid))
  need(PAX.SIZE, dec(f.size), fitsOctal(FIELD.size[1], f.size))
  need(PAX.MTIME, paxTime(f.mtime), fitsOctal(FIELD.mtime[1], f.mtime.sec) && f.mtime.nsec === 0)
  if (f.atime !== undefined) need(PAX.ATIME, paxTime(f.atime), false)
  if (f.ctime !== undefined) need(PAX.CTIME, paxTime(f.ctime), false)
  for (const [k, v] of pax ?? []) {
    if (records.has(k) || k.startsWith(GNU_SPARSE_PREFIX)) continue
    const b = bytes(v)
    const mine = own.get(k)
    if (!BASIC_KEYS.has(k) || (mine !== undefined && mine.equals(b))) records.set(k, b)
  }
  return ustar
}

/** The entry's own block (Go's templateV7Plus, then the USTAR or PAX specifics). */
function block(f: Fields, ustar: boolean): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE)
  const asText = ustar ? (s: Buffer): Buffer => s : toAscii
  let name: Uint8Array = f.name
  const split = ustar ? splitUstarPath(f.name) : undefined
  if (split !== undefined) {
    putString(b, FIELD.prefix, split[0])
    name = split[1]
  }
  putString(b, FIELD.name, asText(Buffer.from(name)))
  putString(b, FIELD.linkname, asText(f.link))
  putNumeric(b, FIELD.mode, f.mode)
  putOctal(b, FIELD.uid, f.uid)
  putOctal(b, FIELD.gid, f.gid)
  putOctal(b, FIELD.size, f.size)
  putOctal(b, FIELD.mtime, f.mtime.sec)
  b[FIELD.typeflag[0]] = f.typeflag
  b.write(MAGIC_USTAR + VERSION_USTAR, FIELD.magic[0], 'latin1')
  putString(b, FIELD.uname, asText(f.uname))
  putString(b, FIELD.gname, asText(f.gname))
  putNumeric(b, FIELD.devmajor, f.devmajor)
  putNumeric(b, FIELD.devminor, f.devminor)
  putChecksum(b)
  return b
}

/** Type flags the writer makes itself, or cannot make (sparse files are written dense). */
const { X_HEADER, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE } = TYPE
const NOT_WRITABLE = new Set<number>([X_HEADER, GNU_LONGNAME, GNU_LONGLINK, GNU_SPARSE])
/** Types whose name must not end in `/` (links may point at directories). */
const NO_SLASH = new Set<number>([TYPE.REG, TYPE.CHAR, TYPE.BLOCK, TYPE.FIFO])

/**
 * The header bytes of one entry. Throws RangeError/TypeError for values that are not valid
 * at all (a negative size, a fraction), and TarError `TAR_UNREPRESENTABLE` for valid values
 * no tar header can hold (a NUL in a name, an invalid PAX key), `TAR_FIELD_TOO_LONG` when the
 * PAX records pass 1 MiB (readers, Go's included, refuse more).
 */
export function encodeHeader(input: TarHeaderInput, opts: EncodeHeaderOptions = {}): EncodedHeader {
  const offset = opts.offset ?? 0
  const name = text(input.nameRaw, input.name)
  const shown = JSON.stringify(name.toString('utf8').slice(0, 200))
  const fail = (message: string): never => {
    throw new TarError('TAR_UNREPRESENTABLE', `Cannot encode ${shown}: ${message}`, offset)
  }
  let typeflag = input.typeflag ?? TYPE.REG
  if (!Number.isInteger(typeflag) || typeflag < 0 || typeflag > 0xff)
    throw new RangeError(`Cannot encode tar header: type flag ${typeflag} is not a byte`)
  if (typeflag === TYPE.REG_A) typeflag = name.at(-1) === 0x2f ? TYPE.DIR : TYPE.REG
  if (NOT_WRITABLE.has(typeflag))
    fail(`type flag "${String.fromCharCode(typeflag)}" cannot be written`)

  const records: Records = new Map()
  for (const [k, v] of input.xattrs ?? []) records.set(PAX.SCHILY_XATTR + k, bytes(v))
  const checkRecords = (): void => {
    // Go's validPAXRecord
    for (const [k, v] of records) {
      if (k === '' || /[=\0]/.test(k)) fail(`invalid PAX key ${JSON.stringify(k)}`)
      if (TEXT_KEYS.has(k) && v.includes(0)) fail(`NUL byte in the "${k}" PAX record`)
    }
  }

  if (typeflag === TYPE.X_GLOBAL_HEADER) {
    for (const [k, v] of input.pax ?? []) {
      if (!records.has(k) && !k.startsWith(GNU_SPARSE_PREFIX)) records.set(k, bytes(v))
    }
    checkRecords()
    const metaName = name.length > 0 ? name : Buffer.from(GLOBAL_NAME)
    return { bytes: metaEntry(metaName, records, typeflag, offset), dataSize: 0, format: 'pax' }
  }
  if (name.length === 0) throw new TypeError('Cannot encode tar header: the name is empty')
  if (NO_SLASH.has(typeflag) && name.at(-1) === 0x2f)
    fail('the name ends in "/" but the entry is not a directory')
  const f = fields(input, typeflag, name, opts.subSecondTimes === true)
  for (const what of ['name', 'link', 'uname', 'gname'] as const) {
    if (f[what].includes(0)) fail(`NUL byte in the ${what}`)
  }
  const ustar = choose(f, input.pax, records)
  checkRecords()
  const main = block(f, ustar)
  const dataSize = isHeaderOnlyType(typeflag) ? 0 : f.size
  if (ustar) return { bytes: main, dataSize, format: 'ustar' }
  if (records.size === 0) return { bytes: main, dataSize, format: 'pax' }
  const ext = metaEntry(paxHeaderName(name), records, TYPE.X_HEADER, offset)
  return { bytes: Buffer.concat([ext, main]), dataSize, format: 'pax' }
}
