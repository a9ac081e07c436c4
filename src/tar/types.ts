/**
 * The tar contract: what a parsed header looks like and how entries are iterated; what takes
 * entries from a caller that reads them (entry-target.ts).
 *
 * The reader accepts exactly what Go's `archive/tar` accepts (Docker parses every layer with
 * it, so acceptance decides whether an image can be pulled): V7, USTAR, PAX (with global
 * headers), GNU (long names and links, old sparse, base-256 numbers) and star headers; an
 * archive ends at two zero blocks or at a clean end of stream on a block boundary.
 *
 * Lifecycle of one read:
 * ```ts
 * for await (const entry of readTar(source)) {
 *   if (entry.header.typeflag === TYPE.REG) for await (const chunk of entry.body) use(chunk)
 *   // not reading the body is fine: advancing skips the rest of it (Go's Reader.Next)
 * }
 * ```
 * A source that can seek (`SeekableByteSource`, e.g. `SeekableFile`) has skipped bodies
 * passed over without being read: listing a large archive reads its headers only.
 *
 * Vocabulary: a *block* is 512 bytes; an entry's *physical* data is what the stream holds,
 * its *logical* data what a reader gets (they differ only for sparse files, whose holes are
 * expanded to zeros).
 */

export const BLOCK_SIZE = 512

/** Header type flags (one ASCII byte each), named as in Go's archive/tar. */
export const TYPE = {
  REG: 0x30, // '0'
  REG_A: 0x00, // legacy '\0': a regular file, or a directory if the name ends in '/'
  LINK: 0x31, // '1' hard link
  SYMLINK: 0x32, // '2'
  CHAR: 0x33, // '3'
  BLOCK: 0x34, // '4'
  DIR: 0x35, // '5'
  FIFO: 0x36, // '6'
  CONT: 0x37, // '7' contiguous file, treated as regular
  X_HEADER: 0x78, // 'x' PAX header for the next entry
  X_GLOBAL_HEADER: 0x67, // 'g' PAX global header (returned as an entry, as Go does)
  GNU_SPARSE: 0x53, // 'S' old GNU sparse file
  GNU_LONGNAME: 0x4c, // 'L'
  GNU_LONGLINK: 0x4b, // 'K'
  GNU_DUMPDIR: 0x44, // 'D' GNU incremental directory, carries data
} as const

/** Format bits, as Go's tar.Format: which formats a header may be in. */
export const FORMAT = {
  UNKNOWN: 0,
  V7: 1,
  USTAR: 2,
  PAX: 4,
  GNU: 8,
  STAR: 16,
} as const

/** One data fragment of a sparse file: `length` bytes of data at logical `offset`. */
export interface SparseFragment {
  readonly offset: number
  readonly length: number
}

/** A parsed tar header, after PAX records and GNU long names have been applied. */
export interface TarHeader {
  /** Type flag byte (see {@link TYPE}); a legacy `\0` is reported as REG or DIR. */
  typeflag: number
  /** Entry name as UTF-8 text (lossy when the raw bytes are not UTF-8; see nameRaw). */
  name: string
  /** Entry name exactly as the archive has it (PAX `path` / GNU long name applied). */
  nameRaw: Buffer
  linkname: string
  linknameRaw: Buffer
  /**
   * Logical size of the entry's data: what reading the body yields. For header-only types
   * (links, devices, directories, fifos) the stream holds no data whatever this says.
   */
  size: number
  mode: number
  uid: number
  gid: number
  uname: string
  gname: string
  /** Modification time, seconds since the epoch (may be negative) and nanoseconds. */
  mtime: number
  mtimeNsec: number
  atime?: { sec: number; nsec: number }
  ctime?: { sec: number; nsec: number }
  devmajor: number
  devminor: number
  /** PAX records of this entry (values are bytes: xattr values can be binary). */
  pax?: ReadonlyMap<string, Buffer>
  /** Extended attributes from PAX `SCHILY.xattr.*` records. */
  xattrs?: ReadonlyMap<string, Buffer>
  /** Data fragments when the entry is a sparse file (GNU old, PAX 0.0, 0.1 or 1.0). */
  sparse?: readonly SparseFragment[]
  /** Bitset of {@link FORMAT} values the header may be in (Go's guess). */
  format: number
  /** Byte offset of this entry's own header block in the stream. */
  offset: number
}

/**
 * One entry of an archive. `body` yields the logical data (sparse holes expanded); reading it
 * is optional: advancing to the next entry skips whatever was not read. The body can be read
 * only until the next entry is requested. Chunks are views: copy them to keep them.
 */
export interface TarEntry {
  readonly header: TarHeader
  readonly body: AsyncIterable<Uint8Array>
}

/** Warnings: anomalies that the reader accepts, as Go does, but a caller may want to know. */
export type TarWarningCode = 'TAR_MISSING_EOF_MARKER' | 'TAR_HEADER_ONLY_SIZE'

export interface ReadTarOptions {
  /** Cap on PAX headers and GNU long names (default MAX_SPECIAL_FILE_SIZE, 1 MiB). */
  readonly maxSpecialFileSize?: number
  /** Keep every byte that is not file data, for tar-split (see TarReader.takeRaw). */
  readonly rawAccounting?: boolean
  readonly onWarning?: (code: TarWarningCode, message: string, offset: number) => void
  readonly signal?: AbortSignal
}
