/**
 * Reading and writing the small files of the layerdb: tolerant reads (Docker's parsing rules,
 * SPEC.md §3.2), exact writes (Docker's bytes: no trailing newline, mode 0644), fsync helpers.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { lstat, mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { isDigest, type Digest } from '../digest/digest.js'
import { sys } from '../internal/sys.js'

/** Mode of every file Docker writes in the layerdb (before the umask, as Docker's). */
export const FILE_MODE = 0o644

/**
 * The largest file read whole. Docker's files are a few dozen bytes; a descriptor is a small
 * JSON object. The cap keeps a damaged or hostile record from exhausting memory.
 */
export const MAX_RECORD_FILE = 1 << 20

/** Go's unicode.IsSpace set (JavaScript's `trim()` differs: it trims U+FEFF, keeps U+0085). */
const GO_SPACE =
  '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]'
const GO_TRIM = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, 'g')

/** Go's strings.TrimSpace, which Docker applies to every file but `size`. */
export function trimSpace(s: string): string {
  return s.replace(GO_TRIM, '')
}

/** What is wrong with a file's contents (the caller adds the record and the path). */
export class ParseError extends Error {
  override name = 'ParseError'
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Reads a whole small file as UTF-8; undefined when it does not exist. A file over `cap` bytes
 * or not UTF-8 is a ParseError; other fs errors (EACCES, EIO) are thrown as they are. The
 * calls are synchronous: a record file is a few bytes from the page cache, and a store with a
 * thousand layers reads thousands of them when it opens, where a thread-pool round trip per
 * call costs several times the call itself.
 */
export function readSmallFile(path: string, cap = MAX_RECORD_FILE): Promise<string | undefined> {
  try {
    return Promise.resolve(readSmallFileSync(path, cap))
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}

function readSmallFileSync(path: string, cap: number): string | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined
    if (errnoOf(err) === 'ELOOP') throw new ParseError('is a symbolic link')
    throw err
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) throw new ParseError('is a directory')
    if (!st.isFile()) throw new ParseError('is not a regular file')
    const chunks: Buffer[] = []
    let n = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(Math.max(st.size + 1, 64), 64 << 10, cap + 1 - n))
      const r = readSync(fd, buf, 0, buf.length, null)
      if (r === 0) break
      chunks.push(buf.subarray(0, r))
      n += r
      if (n > cap) throw new ParseError(`is larger than ${cap} bytes`)
    }
    try {
      return utf8.decode(Buffer.concat(chunks, n))
    } catch {
      throw new ParseError('is not UTF-8')
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Opens a regular file for reading, never through a symlink and never blocking on a FIFO
 * (O_NONBLOCK): anything else in its place is a ParseError (a damaged record).
 */
export async function openRegular(path: string): Promise<FileHandle> {
  let fh: FileHandle
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    if (errnoOf(err) === 'ELOOP') throw new ParseError('is a symbolic link')
    throw err
  }
  try {
    const st = await fh.stat()
    if (st.isDirectory()) throw new ParseError('is a directory')
    if (!st.isFile()) throw new ParseError('is not a regular file')
    return fh
  } catch (err) {
    await fh.close()
    throw err
  }
}

/** A digest file (`diff`, `parent`): trimmed, then `sha256:<64 lowercase hex>`. */
export function parseDigestText(text: string): Digest {
  const s = trimSpace(text)
  if (!isDigest(s)) throw new ParseError(`${quote(s)} is not a sha256 digest`)
  return s
}

/**
 * The `size` file. Docker parses it with strconv.ParseInt and no trimming, so a trailing
 * newline makes the layer unloadable (SPEC.md §8.1 item 5); we accept surrounding whitespace
 * but nothing else: digits only, no sign, at most 2^53 - 1.
 */
export function parseSizeText(text: string): number {
  const s = trimSpace(text)
  if (!/^[0-9]+$/.test(s)) throw new ParseError(`${quote(s)} is not a decimal size`)
  const n = Number(s)
  if (!Number.isSafeInteger(n)) throw new ParseError(`${quote(s)} is too large`)
  return n
}

/**
 * The `cache-id` file: trimmed and non-empty (Docker: "invalid cache id value"). It is also a
 * directory name in the driver's home, so a value that is not one path component is refused
 * too: a damaged `cache-id` of `../..` must never reach the driver's remove.
 */
export function parseCacheIdText(text: string): string {
  const s = trimSpace(text)
  if (s === '') throw new ParseError('invalid cache id value: empty')
  const why = pathComponentProblem(s)
  if (why !== undefined) throw new ParseError(`invalid cache id value ${quote(s)}: ${why}`)
  return s
}

/**
 * Docker's isValidID for `mount-id` and `init-id`: 64 lowercase hex digits, optionally followed
 * by `-init` (SPEC.md §7.5 TestIsValidID).
 */
export function isValidId(id: string): boolean {
  return /^[0-9a-f]{64}(?:-init)?$/.test(id)
}

/** A `mount-id` or `init-id` file: trimmed, then {@link isValidId}. */
export function parseIdText(text: string, what: 'mount' | 'init'): string {
  const s = trimSpace(text)
  if (!isValidId(s)) throw new ParseError(`invalid ${what} id value ${quote(s)}`)
  return s
}

/**
 * `descriptor.json`: a JSON object, kept as it is. `null` is no descriptor (Go decodes it into
 * an empty struct); anything else that is not an object is an error, as in Go.
 */
export function parseDescriptorText(text: string): Record<string, unknown> | undefined {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new ParseError(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw new ParseError('is not a JSON object')
  return v as Record<string, unknown>
}

/**
 * The bytes Go's json.Marshal writes for a JSON value: compact, with `<`, `>`, `&`, U+2028
 * and U+2029 escaped. Key order is the object's own.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

/**
 * Why `name` cannot be one path component, or undefined: empty, `.`, `..`, a `/` or a NUL,
 * a lone surrogate (it would reach the disk as U+FFFD, another name), longer than NAME_MAX
 * (255 bytes).
 */
export function pathComponentProblem(name: string): string | undefined {
  if (name === '') return 'empty'
  if (name === '.' || name === '..') return 'a relative directory name'
  if (name.includes('/')) return 'contains "/"'
  if (name.includes('\0')) return 'contains a NUL byte'
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(name))
    return 'not well-formed Unicode'
  if (Buffer.byteLength(name) > 255) return 'longer than 255 bytes'
  return undefined
}

/**
 * Creates (or truncates) `path` with exactly `data`, mode 0644 before the umask, as Docker's
 * os.WriteFile does. Not synced: the write set syncs everything before its rename.
 */
export async function writeExact(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    FILE_MODE,
  )
  try {
    await fh.writeFile(data)
  } finally {
    await fh.close()
  }
}

/** fsync(2) of a file or a directory. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** fsync of every regular file directly in `dir`, then of `dir` itself. */
export async function fsyncTree(dir: string): Promise<void> {
  // Together: concurrent fsyncs on one filesystem share journal commits.
  const files = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile())
  await Promise.all(files.map((e) => fsyncPath(join(dir, e.name))))
  await fsyncPath(dir)
}

/**
 * Flushes the whole filesystem holding `path` (syncfs(2), on the thread pool: the event loop
 * goes on meanwhile): one call instead of an fsync per file, for a layer's driver directory
 * before its record is committed (DESIGN.md, crash model).
 */
export async function syncFilesystem(path: string): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY)
  try {
    await sys.syncfsAsync(fd)
  } finally {
    closeSync(fd)
  }
}

/** Recursive removal; a path that is already gone is not an error. */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 })
}

/**
 * Creates directory `path` (and missing parents) with `mode` before the umask, as Go's
 * os.MkdirAll. Something already at `path` is left as it is, even a file: the next operation
 * in it then fails with ENOTDIR, as Docker's does.
 */
export async function ensureDir(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path, { mode })
  } catch (err) {
    const code = errnoOf(err)
    if (code === 'EEXIST') return
    if (code !== 'ENOENT') throw err
    await mkdir(path, { mode, recursive: true })
  }
}

/** True when something (of any type, a dangling symlink too) is at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false
    throw err
  }
}

/** The errno name of an fs error (`ENOENT`), or undefined. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** A short, printable rendering of a value read from disk, for messages. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s)
}
