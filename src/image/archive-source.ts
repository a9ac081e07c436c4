/**
 * The files of an image archive, read where they lie: a directory, or a tar file indexed in one
 * pass (headers only: each regular file's data offset and size), so that a blob is later read as
 * a byte range of the tar and never held whole. A compressed tar (`docker save | gzip`) is
 * decompressed once, streaming, into a temporary file that `close()` removes.
 *
 * Paths are relative and `/`-separated. Nothing outside the archive is reachable: a path with
 * `..` or a leading `/` is refused, and so is a symlink (in the directory or in the tar) that
 * leads out. Inside a tar, links are followed as extraction would make them (Docker ≤24 writes
 * a layer that two images share once and links the second `layer.tar` to the first), and a
 * later entry of the same name replaces an earlier one.
 *
 * ```ts
 * await using src = await openArchiveSource('busybox.tar')
 * const manifest = await src.read('manifest.json', MAX_MANIFEST_SIZE)
 * for await (const chunk of src.open('blobs/sha256/…')) hash.update(chunk)
 * ```
 */
import { createReadStream, createWriteStream, realpathSync, statSync } from 'node:fs'
import { mkdtemp, open, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, posix, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { decompress, detectCompression, SNIFF_SIZE } from '../archive/decompress.js'
import { hasCode } from '../errors.js'
import { fileChunks } from '../internal/file-chunks.js'
import { SeekableFile } from '../tar/seekable-file.js'
import { TarReader } from '../tar/reader.js'
import { TYPE } from '../tar/types.js'
import { ImageArchiveError } from './errors.js'
import type { ArchiveSource } from './types.js'

/** Default cap of `read()`: the largest configuration accepted (manifests have 4 MiB). */
export const DEFAULT_READ_LIMIT = 8 << 20
/** Symlinks followed to resolve one path, as Linux's MAXSYMLINKS. */
const MAX_LINK_HOPS = 40
const READ_CHUNK = 1 << 20

/**
 * A path inside the archive, `.` segments and a leading `./` dropped; undefined when it is
 * absolute or goes through `..` (it could leave the archive).
 */
function cleanPath(path: string): string | undefined {
  if (path.startsWith('/')) return undefined
  const parts: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') return undefined
    parts.push(part)
  }
  return parts.join('/')
}

const q = (path: string): string => JSON.stringify(path.slice(0, 200))

function outside(path: string): ImageArchiveError {
  return new ImageArchiveError(
    'IMAGE_ARCHIVE_INVALID',
    `Cannot read ${q(path)} from the image archive: the path leads outside the archive`,
  )
}

function missing(path: string): ImageArchiveError {
  return new ImageArchiveError(
    'IMAGE_BLOB_MISSING',
    `Cannot read ${q(path)} from the image archive: no such file`,
  )
}

function tooLarge(path: string, size: number, limit: number): ImageArchiveError {
  return new ImageArchiveError(
    'IMAGE_FILE_TOO_LARGE',
    `Cannot read ${q(path)} from the image archive: ${size} bytes is over the limit of ${limit}`,
  )
}

/** `size` bytes at `offset` of `file`, in chunks; the file is opened when iteration starts. */
async function* fileRange(
  file: string,
  offset: number,
  size: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  if (size === 0) return
  const stream = createReadStream(file, {
    start: offset,
    end: offset + size - 1,
    highWaterMark: READ_CHUNK,
    ...(signal === undefined ? {} : { signal }),
  })
  let got = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    got += chunk.length
    yield chunk
  }
  // The file was cut since it was indexed.
  if (got !== size)
    throw new ImageArchiveError('IMAGE_ARCHIVE_INVALID', `Cannot read ${q(file)}: file ends early`)
}

/** Reads `size` bytes at `offset` of `file` into one buffer. */
async function readRange(file: string, offset: number, size: number): Promise<Buffer> {
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(size)
    let got = 0
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, offset + got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    if (got !== size)
      throw new ImageArchiveError(
        'IMAGE_ARCHIVE_INVALID',
        `Cannot read ${q(file)}: file ends early`,
      )
    return buf
  } finally {
    await fh.close()
  }
}

/** What both kinds of archive share: finding a file by its path in the archive. */
abstract class LocatingSource implements ArchiveSource {
  /** The file at `path`, or an ImageArchiveError (missing, outside the archive...). */
  abstract resolve(path: string): { size: number }
  abstract read(path: string, limit?: number): Promise<Buffer>
  abstract open(path: string, signal?: AbortSignal): AsyncIterable<Uint8Array>
  abstract close(): Promise<void>

  has(path: string): boolean {
    try {
      this.resolve(path)
      return true
    } catch (err) {
      if (err instanceof ImageArchiveError) return false
      throw err
    }
  }

  size(path: string): number {
    return this.resolve(path).size
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/** An archive unpacked in a directory (`docker save -o dir`... or a copied OCI layout). */
class DirectorySource extends LocatingSource {
  readonly #root: string

  constructor(root: string) {
    super()
    this.#root = root
  }

  /** The real path of a regular file inside the root; throws when there is none. */
  override resolve(path: string): { file: string; size: number } {
    const clean = cleanPath(path)
    if (clean === undefined || clean === '') throw clean === '' ? missing(path) : outside(path)
    let real: string
    try {
      real = realpathSync(join(this.#root, clean))
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) throw missing(path)
      if (hasCode(err, 'ELOOP')) throw outside(path)
      throw err
    }
    if (!real.startsWith(this.#root + sep)) throw outside(path)
    const st = statSync(real)
    if (!st.isFile()) throw missing(path)
    return { file: real, size: st.size }
  }

  async read(path: string, limit = DEFAULT_READ_LIMIT): Promise<Buffer> {
    const { file, size } = this.resolve(path)
    if (size > limit) throw tooLarge(path, size, limit)
    // The file may have grown since: read at most one byte past the limit to know.
    const fh = await open(file, 'r')
    try {
      const buf = Buffer.alloc(Math.min(limit + 1, size + READ_CHUNK))
      let got = 0
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, got)
        if (bytesRead === 0) break
        got += bytesRead
        if (got === buf.length) break
      }
      if (got > limit) throw tooLarge(path, got, limit)
      return buf.subarray(0, got)
    } finally {
      await fh.close()
    }
  }

  open(path: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const { file } = this.resolve(path)
    return fileChunks(file, signal === undefined ? {} : { signal })
  }

  async close(): Promise<void> {
    // Nothing to release: files are opened per read.
  }
}

/** Where a file's data lies in the tar, or what a link entry points at. */
type IndexEntry =
  | { readonly kind: 'file'; readonly offset: number; readonly size: number }
  | { readonly kind: 'symlink'; readonly target: string }

/** A tar file read in place through an index of its entries. */
class TarSource extends LocatingSource {
  readonly #file: string
  readonly #index: ReadonlyMap<string, IndexEntry>
  /** The temporary directory holding a decompressed copy, removed on close. */
  readonly #tmp: string | undefined
  #closed = false

  constructor(file: string, index: ReadonlyMap<string, IndexEntry>, tmp: string | undefined) {
    super()
    this.#file = file
    this.#index = index
    this.#tmp = tmp
  }

  /** Follows symlinks component by component, as the kernel would after extraction. */
  override resolve(path: string): { offset: number; size: number } {
    if (this.#closed) throw new TypeError('Cannot read an image archive: it is closed')
    const clean = cleanPath(path)
    if (clean === undefined) throw outside(path)
    let rest = clean === '' ? [] : clean.split('/')
    let done: string[] = []
    let hops = 0
    while (rest.length > 0) {
      const [name, ...tail] = rest as [string, ...string[]]
      const here = [...done, name].join('/')
      const e = this.#index.get(here)
      if (e?.kind === 'symlink') {
        if (++hops > MAX_LINK_HOPS || e.target.startsWith('/')) throw outside(path)
        const target = cleanPath(posix.normalize(posix.join(done.join('/') || '.', e.target)))
        if (target === undefined) throw outside(path)
        rest = [...(target === '' ? [] : target.split('/')), ...tail]
        done = []
        continue
      }
      done.push(name)
      rest = tail
    }
    const e = this.#index.get(done.join('/'))
    if (e?.kind !== 'file') throw missing(path)
    return e
  }

  async read(path: string, limit = DEFAULT_READ_LIMIT): Promise<Buffer> {
    const { offset, size } = this.resolve(path)
    if (size > limit) throw tooLarge(path, size, limit)
    return readRange(this.#file, offset, size)
  }

  open(path: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const { offset, size } = this.resolve(path)
    return fileRange(this.#file, offset, size, signal)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#tmp !== undefined) await rm(this.#tmp, { recursive: true, force: true })
  }
}

/**
 * Entries of the tar `file` by cleaned name. Entries whose names would leave the archive are
 * left out (nothing can ask for them); a name taken by a directory, device or sparse file has
 * no data to give.
 */
async function indexTar(file: string, label: string): Promise<Map<string, IndexEntry>> {
  const index = new Map<string, IndexEntry>()
  // Bodies are skipped by seeking: only the headers of the archive are read.
  const source = await SeekableFile.open(file)
  const reader = new TarReader(source)
  try {
    for (;;) {
      const entry = await reader.next()
      if (entry === undefined) break
      const h = entry.header
      const name = cleanPath(h.name.replace(/^\/+/, ''))
      if (name === undefined || name === '') continue
      switch (h.typeflag) {
        case TYPE.REG:
        case TYPE.CONT:
          if (h.sparse === undefined) {
            // The data follows the entry's own header block (PAX and long-name blocks come before).
            index.set(name, { kind: 'file', offset: h.offset + 512, size: h.size })
          } else index.delete(name)
          break
        case TYPE.SYMLINK:
          index.set(name, { kind: 'symlink', target: h.linkname })
          break
        case TYPE.LINK: {
          // A hard link shares the data of an entry written before it.
          const target = cleanPath(h.linkname.replace(/^\/+/, ''))
          const t = target === undefined ? undefined : index.get(target)
          if (t === undefined) index.delete(name)
          else index.set(name, t)
          break
        }
        case TYPE.DIR:
        case TYPE.X_GLOBAL_HEADER:
          break
        default:
          index.delete(name)
      }
    }
  } catch (err) {
    throw new ImageArchiveError(
      'IMAGE_ARCHIVE_INVALID',
      `Cannot read image archive ${q(label)}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    )
  } finally {
    await reader.close()
    await source.close()
  }
  return index
}

/** The first bytes of `file`, to tell its compression. */
async function head(file: string): Promise<Buffer> {
  const fh = await open(file, 'r')
  try {
    const buf = Buffer.alloc(SNIFF_SIZE)
    const { bytesRead } = await fh.read(buf, 0, SNIFF_SIZE, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * Opens the archive at `path`: a directory, or a tar file, plain or compressed (gzip, and the
 * other formats Docker accepts for layers). Close it to remove a decompressed copy.
 */
export async function openArchiveSource(path: string): Promise<ArchiveSource & AsyncDisposable> {
  const st = await stat(path)
  if (st.isDirectory()) return new DirectorySource(realpathSync(path))
  if (!st.isFile()) {
    throw new ImageArchiveError(
      'IMAGE_ARCHIVE_INVALID',
      `Cannot read image archive ${q(path)}: not a file or directory`,
    )
  }
  const compression = detectCompression(await head(path))
  if (compression === 'none') return new TarSource(path, await indexTar(path, path), undefined)
  const tmp = await mkdtemp(join(tmpdir(), 'layerstore-archive-'))
  try {
    const file = join(tmp, 'archive.tar')
    try {
      const { stream } = await decompress(fileChunks(path))
      await pipeline(stream, createWriteStream(file, { flags: 'wx' }))
    } catch (err) {
      if (hasCode(err, 'DECOMPRESSOR_MISSING')) throw err
      throw new ImageArchiveError(
        'IMAGE_ARCHIVE_INVALID',
        `Cannot read image archive ${q(path)}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      )
    }
    return new TarSource(file, await indexTar(file, path), tmp)
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
}
