/**
 * A full copy of a directory tree that keeps everything a layer's files carry: Docker's
 * `copy.DirCopy` in content mode, which vfs uses to start a child layer from its parent.
 *
 * Kept: file types (sockets included, as sockets; Docker turns them into FIFOs, or fails),
 * hard links within the tree, symlink targets as bytes, device numbers, owners, modes with
 * setuid/setgid/sticky, every extended attribute (Docker copies `security.capability` only:
 * `user.*`, `trusted.*` and ACLs would otherwise vanish from a child layer), access and
 * modification times to the nanosecond. Directory modes, owners and times are set after the
 * whole tree is in place, so that creating their entries does not change them and read-only
 * directories can be filled without privileges. The root's metadata is copied too.
 *
 * Regular files go through `copyFileSync` with COPYFILE_FICLONE: libuv tries a reflink
 * (btrfs, xfs: no data is copied), then `copy_file_range`, where the kernel copies within the
 * filesystem without the data crossing into user space. Every call is synchronous: copying a
 * tree is thousands of small kernel operations (creating inodes dominates), and a thread-pool
 * round trip per call costs more than the calls themselves; measured on a 2-CPU machine, going
 * through the pool in parallel was slower. The walk lets the event loop run every few hundred
 * entries.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  type BigIntStats,
} from 'node:fs'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { sys } from '../internal/sys.js'
import { DriverIoError } from './errors.js'

export interface CopyTreeOptions {
  /** Skip extended attributes the filesystem or our privileges refuse (ENOTSUP, EPERM). */
  readonly bestEffortXattrs?: boolean
}

export interface CopyTreeResult {
  /** Nodes copied, the root excepted (hard links count once per name). */
  readonly entries: number
  /** Bytes of regular-file data copied (a hard-linked inode once). */
  readonly bytes: number
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const S_IFSOCK = 0o140000
const S_ISGID = 0o2000
const SLASH = Buffer.from('/')
/** Entries copied between two turns of the event loop. */
const ENTRIES_PER_TURN = 256
const NS = 1_000_000_000n

const EUID = process.geteuid?.() ?? -1
const EGID = process.getegid?.() ?? -1

interface Frame {
  readonly src: Buffer
  readonly dst: Buffer
  readonly names: Buffer[]
  next: number
}

/** Seconds and nanoseconds of a time in ns, the nanoseconds in [0, 1e9) (floor division). */
function split(ns: bigint): [number, number] {
  let s = ns / NS
  let n = ns % NS
  if (n < 0n) {
    s -= 1n
    n += NS
  }
  return [Number(s), Number(n)]
}

/** Linux's dev_t encoding (glibc's gnu_dev_major/minor). */
function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn))
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn))
}

class TreeCopier {
  readonly #bestEffortXattrs: boolean
  /** Group of the files we create: ours, or the root's when it is setgid (inherited below). */
  readonly #newGid: number
  /** First copy of each multiply-linked inode, by `dev:ino` of the source. */
  readonly #links = new Map<string, Buffer>()
  /** Directories whose metadata is set when the tree is complete. */
  readonly #dirs: { src: Buffer; dst: Buffer; st: BigIntStats; root?: true }[] = []
  /** Whether the filesystem clones files (reflinks); undefined until the first file. */
  #clone: boolean | undefined
  entries = 0
  bytes = 0

  constructor(dstRoot: BigIntStats, options: CopyTreeOptions) {
    this.#bestEffortXattrs = options.bestEffortXattrs === true
    this.#newGid = (Number(dstRoot.mode) & S_ISGID) !== 0 ? Number(dstRoot.gid) : EGID
  }

  /** The root: its metadata is set last, its owner always (we did not create it). */
  root(src: Buffer, dst: Buffer, st: BigIntStats): void {
    this.#dirs.push({ src, dst, st, root: true })
  }

  /** Copies one non-root node; returns true when it is a directory to descend into. */
  node(src: Buffer, dst: Buffer): boolean {
    const st = lstatSync(src, { bigint: true })
    const type = Number(st.mode) & S_IFMT
    this.entries++
    if (type === S_IFDIR) {
      mkdirSync(dst, 0o700)
      this.#dirs.push({ src, dst, st })
      return true
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      const first = this.#links.get(key)
      if (first !== undefined) {
        linkSync(first, dst)
        return false
      }
      this.#links.set(key, dst)
    }
    const perm = Number(st.mode) & 0o7777
    switch (type) {
      case S_IFREG:
        // libuv fchmods the new file to the source's mode, but writing the data then clears
        // setuid and setgid without CAP_FSETID: those files get their mode again.
        this.#copyFile(src, dst)
        this.bytes += Number(st.size)
        this.#meta(src, dst, st, (perm & 0o6000) !== 0)
        return false
      case S_IFLNK:
        symlinkSync(readlinkSync(src, { encoding: 'buffer' }), dst)
        this.#meta(src, dst, st, undefined)
        return false
      case S_IFCHR:
      case S_IFBLK:
      case S_IFIFO:
      case S_IFSOCK:
        sys.mknod(dst, type | perm, major(st.rdev), minor(st.rdev))
        this.#meta(src, dst, st, true) // mknod's mode went through the umask
        return false
      default:
        throw Object.assign(new Error(`unknown file type 0o${type.toString(8)}`), {
          code: 'EINVAL',
        })
    }
  }

  /**
   * The first file is cloned with FICLONE_FORCE, a probe: where the filesystem cannot clone
   * (ext4), the others go straight to copy_file_range instead of failing an ioctl each. libuv
   * removes the destination when the forced clone fails.
   */
  #copyFile(src: Buffer, dst: Buffer): void {
    const EXCL = constants.COPYFILE_EXCL
    if (this.#clone === undefined) {
      try {
        copyFileSync(src, dst, EXCL | constants.COPYFILE_FICLONE_FORCE)
        this.#clone = true
        return
      } catch {
        this.#clone = false
      }
    }
    copyFileSync(src, dst, this.#clone ? EXCL | constants.COPYFILE_FICLONE : EXCL)
  }

  /** Sets the directories' metadata, once nothing is created in them anymore. */
  finishDirs(): void {
    for (const d of this.#dirs.reverse()) {
      try {
        this.#meta(d.src, d.dst, d.st, true, d.root === true)
      } catch (err) {
        throw ioError(err, d.src)
      }
    }
  }

  /**
   * Owner, mode, xattrs, times, in that order: chown clears setuid/setgid and
   * security.capability, so the mode and the xattrs come after it. `chmod`: false when the
   * mode is right unless chown cleared bits, undefined for a symlink (it has no mode).
   */
  #meta(
    src: Buffer,
    dst: Buffer,
    st: BigIntStats,
    chmod: boolean | undefined,
    chown = false,
  ): void {
    const uid = Number(st.uid)
    const gid = Number(st.gid)
    let mode = chmod
    if (chown || uid !== EUID || gid !== this.#newGid) {
      lchownSync(dst, uid, gid)
      if (mode === false) mode = true
    }
    if (mode === true) chmodSync(dst, Number(st.mode) & 0o7777)
    this.#xattrs(src, dst)
    const [as, an] = split(st.atimeNs)
    const [ms, mn] = split(st.mtimeNs)
    sys.lutimens(dst, as, an, ms, mn)
  }

  #xattrs(src: Buffer, dst: Buffer): void {
    for (const name of sys.llistxattr(src)) {
      const value = sys.lgetxattr(src, name)
      if (value === undefined) continue
      try {
        sys.lsetxattr(dst, name, value)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (!(this.#bestEffortXattrs && (code === 'ENOTSUP' || code === 'EPERM'))) throw err
      }
    }
  }
}

function ioError(err: unknown, path: Buffer): DriverIoError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error'
  return new DriverIoError(`Cannot copy layer (${code})`, path.toString('utf8'), { cause: err })
}

/**
 * Copies everything in directory `src` into directory `dst`, which must exist and be empty,
 * and gives `dst` the metadata of `src`. Fails with DRIVER_IO_FAILED (the fs error in
 * `cause`) on the first node that cannot be copied, leaving what was copied so far.
 */
export async function copyTree(
  src: string,
  dst: string,
  options: CopyTreeOptions = {},
): Promise<CopyTreeResult> {
  const srcRoot = Buffer.from(src)
  const dstRoot = Buffer.from(dst)
  let copier: TreeCopier
  const stack: Frame[] = []
  try {
    copier = new TreeCopier(lstatSync(dstRoot, { bigint: true }), options)
    copier.root(srcRoot, dstRoot, lstatSync(srcRoot, { bigint: true }))
    stack.push({ src: srcRoot, dst: dstRoot, names: readdirSync(srcRoot, 'buffer'), next: 0 })
  } catch (err) {
    throw ioError(err, srcRoot)
  }
  let turn = 0
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    const name = top.names[top.next++]
    if (name === undefined) {
      stack.pop()
      continue
    }
    const from = Buffer.concat([top.src, SLASH, name])
    try {
      const to = Buffer.concat([top.dst, SLASH, name])
      if (copier.node(from, to))
        stack.push({ src: from, dst: to, names: readdirSync(from, 'buffer'), next: 0 })
    } catch (err) {
      throw ioError(err, from)
    }
    if (++turn === ENTRIES_PER_TURN) {
      turn = 0
      await yieldToLoop()
    }
  }
  copier.finishDirs()
  return { entries: copier.entries, bytes: copier.bytes }
}
