/**
 * Linux system calls that Node's fs lacks, from the small native addon in native/sys.c (built
 * by node-gyp at install time): device nodes, extended attributes of the link itself,
 * nanosecond timestamps that never follow a final symlink, syncfs, flock, mount.
 *
 * Calls are synchronous (a single system call each, cheaper than a thread-pool round trip)
 * unless they return a promise (batches, waits, mounts), and fail with errors shaped like Node's fs errors: `code` ('EPERM'...), `errno`,
 * `syscall`, `path`. Paths are Buffers or strings; Buffers carry names that are not UTF-8.
 * A path of PATH_MAX (4096) bytes or more is a TypeError, not ENAMETOOLONG.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

export type SysPath = Buffer | string

export interface Sys {
  /** mknod(2); `mode` includes the type bits (S_IFCHR, S_IFBLK, S_IFIFO) and permissions. */
  mknod(path: SysPath, mode: number, major: number, minor: number): void
  /** lsetxattr(2): on the link itself when `path` is a symlink. */
  lsetxattr(path: SysPath, name: SysPath, value: Buffer): void
  /** lgetxattr(2); undefined when the attribute is absent or the filesystem has none. */
  lgetxattr(path: SysPath, name: SysPath): Buffer | undefined
  /** llistxattr(2): attribute names as bytes. */
  llistxattr(path: SysPath): Buffer[]
  /** lremovexattr(2); an absent attribute is not an error. */
  lremovexattr(path: SysPath, name: SysPath): void
  /** utimensat(2) with AT_SYMLINK_NOFOLLOW: exact nanoseconds, never through a symlink. */
  lutimens(
    path: SysPath,
    atimeSec: number,
    atimeNsec: number,
    mtimeSec: number,
    mtimeNsec: number,
  ): void
  /** futimens(2). */
  futimens(
    fd: number,
    atimeSec: number,
    atimeNsec: number,
    mtimeSec: number,
    mtimeNsec: number,
  ): void
  /** syncfs(2): flushes the filesystem holding `fd`. */
  syncfs(fd: number): void
  /** syncfs(2) on a thread-pool thread; keep `fd` open until it settles. */
  syncfsAsync(fd: number): Promise<void>
  /**
   * On a thread-pool thread: the bytes the non-directory nodes under `dir` take by lstat size
   * (symlinks their target's length), an inode with several links once, entries that vanish
   * meanwhile skipped. Rejects with an fs-style error (syscall scandir or lstat).
   */
  directorySize(dir: Buffer): Promise<number>
  /**
   * On a thread-pool thread: reads each file (opened O_NOFOLLOW) into `dest`, at the offset
   * and for the size `layout` gives it ((offset, size) per path). One result per path: bytes
   * read (fewer: the file is shorter), size + 1 (it is larger), or -errno (it cannot be opened).
   */
  readFiles(paths: readonly Buffer[], dest: Uint8Array, layout: Float64Array): Promise<Float64Array>
  /**
   * Creates new files on a thread of libuv's pool, a batch per job (one N-API job and its
   * promise cost ~15 µs of main-thread time): open(O_CREAT|O_EXCL|O_NOFOLLOW) with
   * `mode & 0o777`, the chunks written in order, fchown (unless uid < 0), fchmod to
   * `mode & 0o7777` (when chmod is 1), futimens, close. The chunks must not change until the
   * promise settles. `meta` holds 9 numbers per file: mode, uid (< 0: no chown),
   * gid, atimeSec, atimeNsec, mtimeSec, mtimeNsec, chmod (0 or 1), unused. Resolves with one
   * result per file: undefined, or its fs-style error.
   */
  createFiles(
    paths: readonly Buffer[],
    chunks: readonly (readonly Uint8Array[])[],
    meta: Float64Array,
  ): Promise<(Error | undefined)[]>
  /** flock(2), waited for on the thread pool; the kernel drops it when the process dies. */
  flock(fd: number, exclusive: boolean): Promise<void>
  /** flock(2) with LOCK_NB: false when another open file holds it. */
  tryFlock(fd: number, exclusive: boolean): boolean
  /** flock(2) LOCK_UN. */
  funlock(fd: number): void
  /**
   * mount(2) on the thread pool. With `cwd`, from a thread that unshared its filesystem
   * context and changed into `cwd`, so relative paths in `data` resolve there; the process's
   * working directory never moves.
   */
  mount(
    source: SysPath,
    target: SysPath,
    fstype: string,
    flags: number,
    data: string,
    cwd?: SysPath,
  ): Promise<void>
  /** umount2(2) on the thread pool. */
  umount2(target: SysPath, flags: number): Promise<void>
  /** Whether readdir(3) of `dir` reports file types (d_type) for every entry. */
  hasDirentTypes(dir: SysPath): boolean
  /**
   * Carries the CRC-64/ISO register (`[low, high]`, kept inverted as Go keeps it) over
   * `data`, in place. See native/crc64.c.
   */
  crc64Update(register: Uint32Array, data: Uint8Array): void
  /**
   * A SHA-256 on a thread of its own (native/sha256-thread.c), or undefined where the process
   * has no OpenSSL to hash with. Push chunks in order (each returns its sequence number), keep
   * each unchanged until `sha256ThreadWait` has passed it, end exactly once.
   */
  sha256ThreadStart(): Sha256Thread | undefined
  sha256ThreadPush(thread: Sha256Thread, chunk: Uint8Array): number
  sha256ThreadWait(thread: Sha256Thread, seq: number): void
  /** The digest when `digest` is true; false drops the chunks not yet hashed. */
  sha256ThreadEnd(thread: Sha256Thread, digest: boolean): Buffer | undefined
  /**
   * gunzip on a thread of its own (native/inflate-thread.c), or undefined where the process
   * has no zlib: output in chunks of `chunkSize`, at most `slots` of them ready ahead.
   */
  inflateThreadStart(chunkSize: number, slots: number): InflateThread | undefined
  /** Input read in place until taken past (see take); 0 when 64 chunks wait already. */
  inflateThreadPush(thread: InflateThread, chunk: Uint8Array): number
  inflateThreadEndInput(thread: InflateThread): void
  /**
   * Waits for an output chunk (a Buffer, the caller's), or for every input chunk to be
   * consumed (1: push more or end the input), the end (2) or a failure (its reason). Without
   * `wait`, 3 instead of waiting for the thread. `consumed[0]` gets how many input chunks
   * are done with.
   */
  inflateThreadTake(
    thread: InflateThread,
    consumed: Float64Array,
    wait: boolean,
  ): Buffer | 1 | 2 | 3 | string
  /** Stops the thread; exactly once. */
  inflateThreadEnd(thread: InflateThread): void
}

/** A hash thread of the addon's (an opaque handle). */
export type Sha256Thread = { readonly __brand: 'Sha256Thread' }
/** A gunzip thread of the addon's (an opaque handle). */
export type InflateThread = { readonly __brand: 'InflateThread' }

/** The addon node-gyp built at install time: <package>/build/Release (this file is dist/internal). */
const ADDON = fileURLToPath(new URL('../../build/Release/layerstore_sys.node', import.meta.url))
export const sys = createRequire(import.meta.url)(ADDON) as Sys

/** File type bits of st_mode, for mknod. */
export const S_IFMT = 0o170000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFIFO = 0o010000

/** mount(2) flags and umount2(2) flags. */
export const MS_RDONLY = 1
export const MNT_DETACH = 2
