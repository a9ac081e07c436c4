/**
 * Applies a layer diff to a directory with Docker's UnpackLayer semantics (SPEC.md §6.3 to
 * §6.5): whiteouts and opaque directories, replacement of what a name held before, hard links,
 * symlinks, devices, fifos, xattrs, ownership (optionally remapped), full modes, nanosecond
 * times, directory times fixed up at the end.
 *
 * Safety: names are cleaned and must stay local (`../x` is ARCHIVE_BREAKOUT); parents are
 * resolved inside the target as if it were `/` ({@link LayerRoot}); the final component is
 * never followed (files are opened O_NOFOLLOW|O_EXCL after any old entry is removed; links,
 * times, owners and xattrs use the l-variants). Hard-link targets resolve inside the target.
 *
 * Speed: file system calls are synchronous (a page-cache syscall costs microseconds, a
 * thread-pool round trip far more), except that files of up to 1 MiB are created whole on the
 * thread pool, in batches ({@link SmallFiles}); a new file costs open, write, fchown, futimens,
 * close (fchmod only when the umask or special bits ask for it). The applier is driven entry by
 * entry ({@link Applier.entry}), so a caller that also splits the tar (tar-split) or hashes it
 * reads the stream once.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  ftruncateSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  chmodSync,
  statSync,
  symlinkSync,
  writeSync,
  type BigIntStats,
  type Stats,
} from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import type { TarHeader } from '../tar/types.js'
import { TYPE } from '../tar/types.js'
import type { ByteSource } from '../tar/byte-reader.js'
import { feed } from '../tar/feed.js'
import { cleanLinkTarget, cleanName, splitName, type Name } from './entry-name.js'
import { AufsLinkStore, linkSource } from './hard-links.js'
import { copyUp, setTimes } from './copy-up.js'
import { sys, S_IFBLK, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { currentUmask, EntryAttributes, times, type Times } from './entry-attributes.js'
import { applyError, ArchiveError } from './errors.js'
import {
  LayerRoot,
  dirGroup,
  lstatOrUndefined,
  OPAQUE_XATTR,
  isWhiteoutDevice,
  join,
  type ResolvedDir,
} from './layer-root.js'
import { SMALL_FILE, SmallFiles } from './small-files.js'
import type { ApplyOptions, ApplyResult } from './types.js'
import type { EntryTarget, FileSink } from '../tar/entry-target.js'
import {
  applyWhiteout,
  WH_META_PREFIX,
  WH_OPAQUE,
  WH_PLNK,
  WH_PREFIX,
  type WhiteoutContext,
} from './whiteouts.js'

const O_NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const EUID = process.geteuid?.() ?? -1
const PATH_MAX = 4096
/** Thrown inside an entry that must wait for files in flight; the entry is then retried. */
const NEED_DRAIN = new Error('wait for the files in flight')
interface DirTimes extends Times {
  readonly name: string
}

export class Applier implements EntryTarget {
  readonly #target: Buffer
  readonly #options: ApplyOptions
  readonly #attrs: EntryAttributes
  readonly #whiteouts: WhiteoutContext
  readonly #overlay: boolean
  readonly #root: LayerRoot
  readonly #umask: number
  /** Resolved relative paths (latin1) created by this layer: an opaque marker keeps them. */
  readonly #unpacked = new Set<string>()
  readonly #dirTimes: DirTimes[] = []
  /** Directories copied up from a lower layer: their times are restored at the end. */
  readonly #copiedUp: { host: Buffer; big: BigIntStats }[] = []
  readonly #aufsLinks: AufsLinkStore
  #size = 0
  #entries = 0
  /** The open file of the current entry, closed on failure. */
  #openFd: number | undefined
  /** Small files being created on the thread pool. */
  readonly #files = new SmallFiles(applyError)

  constructor(target: string, options: ApplyOptions = {}) {
    this.#target = Buffer.from(resolvePath(target))
    this.#options = options
    this.#overlay = options.whiteoutFormat === 'overlay'
    if (!statSync(this.#target).isDirectory())
      throw new TypeError(`apply target is not a directory: ${target}`)
    const lowers = (options.lowers ?? []).map((l) => Buffer.from(resolvePath(l)))
    this.#root = new LayerRoot(this.#target, this.#overlay, lowers, (host, key, copyOf) => {
      // A file of that name may still be on its way: its creation decides what happens.
      if (this.#files.pending(key) !== undefined) throw NEED_DRAIN
      this.#makeImpliedDir(host, copyOf)
      this.#unpacked.add(key) // it exists now: a later entry of that name must replace it
    })
    this.#umask = currentUmask()
    this.#aufsLinks = new AufsLinkStore(this.#target)
    this.#attrs = new EntryAttributes(options, this.#overlay)
    this.#whiteouts = {
      root: this.#root,
      overlay: this.#overlay,
      attributes: this.#attrs,
      unpacked: this.#unpacked,
      remove: (host, st) => this.#remove(host, st),
    }
  }

  get size(): number {
    return this.#size
  }

  /** Applies one entry ({@link EntryTarget}: a promise means wait for files in flight). */
  entry(header: TarHeader): FileSink | undefined | Promise<void> {
    if (this.#files.failure !== undefined) throw this.#files.failure
    const name = header.typeflag === TYPE.X_GLOBAL_HEADER ? undefined : cleanName(header)
    let result: FileSink | undefined | Promise<void>
    if (name !== undefined) {
      try {
        result = this.#apply(header, name)
      } catch (err) {
        if (err === NEED_DRAIN) return this.#files.drain()
        this.#files.flush()
        this.#closeOpenFile()
        throw applyError(err, name.full)
      }
      if (result instanceof Promise) {
        this.#files.flush() // what it waits for may still be gathering
        return result
      }
    }
    this.#entries++
    this.#size += header.size
    return result
  }

  /** Waits for every file in flight; their failures surface at the next call. */
  settle(): Promise<void> {
    return this.#files.settle()
  }

  /** Sets directory times (creating their children changed them) and removes scratch files. */
  async finish(): Promise<ApplyResult> {
    await this.settle()
    if (this.#files.failure !== undefined) throw this.#files.failure
    for (const { host, big } of this.#copiedUp) {
      if (lstatOrUndefined(host)?.isDirectory() === true) setTimes(host, big)
    }
    for (const d of this.#dirTimes) {
      const { dir, base } = splitName(d.name)
      const parent = this.#root.existingDir(dir)
      if (parent === undefined) continue
      const host = join(parent.host, Buffer.from(base, 'latin1'))
      const st = lstatOrUndefined(host)
      if (st?.isDirectory() !== true) continue // replaced later in the layer
      try {
        sys.lutimens(host, d.atime, d.atimeNsec, d.mtime, d.mtimeNsec)
      } catch (err) {
        throw applyError(err, d.name)
      }
    }
    this.abort()
    return { size: this.#size, entries: this.#entries }
  }

  /** Releases what the applier holds (an open file, the AUFS link store). Idempotent. */
  abort(): void {
    this.#closeOpenFile()
    this.#aufsLinks.remove()
  }

  #apply(header: TarHeader, name: Name): FileSink | undefined | Promise<void> {
    const flag = header.typeflag
    // Whiteouts delete, hard links need their target: both wait for the files in flight.
    const barrier =
      name.base.startsWith(WH_PREFIX) || name.full.startsWith(WH_META_PREFIX) || flag === TYPE.LINK
    if (barrier && this.#files.count > 0) return this.#files.drain()
    // AUFS metadata at the root: only the root opaque marker means anything to a layer.
    if (name.full.startsWith(WH_META_PREFIX) && name.full !== WH_OPAQUE) {
      if (name.dir === WH_PLNK && isRegular(header.typeflag)) return this.#plnkFile(header, name)
      return undefined
    }
    const parent = this.#root.dir(name.dir)
    if (name.base.startsWith(WH_PREFIX)) {
      applyWhiteout(this.#whiteouts, header, parent, name)
      return undefined
    }
    const host = join(parent.host, Buffer.from(name.base, 'latin1'))
    const key = parent.key === '' ? name.base : `${parent.key}/${name.base}`
    const pending = this.#files.pending(key)
    if (pending !== undefined) return pending // the same name again: keep the archive's order
    if (flag === TYPE.DIR || flag === TYPE.GNU_DUMPDIR) {
      this.#directory(header, parent, name, host, key)
    } else if (isRegular(flag)) {
      const small =
        header.size <= SMALL_FILE && header.xattrs === undefined && header.sparse === undefined
      // (the addon takes paths below PATH_MAX; longer ones get the kernel's error below)
      if (small && host.length < PATH_MAX)
        return this.#files.room() ?? this.#smallFile(header, host, parent, key)
      this.#unpacked.add(key)
      return this.#regular(header, host, parent)
    } else if (flag === TYPE.SYMLINK) {
      this.#create(host, () => symlinkSync(header.linknameRaw, host))
      this.#finishEntry(header, host, 'link')
    } else if (flag === TYPE.LINK) {
      this.#hardLink(header, name, host)
    } else if (flag === TYPE.CHAR || flag === TYPE.BLOCK || flag === TYPE.FIFO) {
      if (!this.#node(header, name, host)) return undefined
    } else {
      throw new ArchiveError(
        'ARCHIVE_INVALID_ENTRY',
        `unhandled tar header type ${String.fromCharCode(flag)}`,
        name.full,
      )
    }
    this.#unpacked.add(key)
    return undefined
  }

  // ---- entry kinds ------------------------------------------------------------------------

  #directory(header: TarHeader, parent: ResolvedDir, name: Name, host: Buffer, key: string): void {
    // In a directory this apply made, only names it created exist.
    const mayExist = !parent.fresh || this.#unpacked.has(key)
    const existing = mayExist ? lstatOrUndefined(host) : undefined
    const mode = header.mode & 0o7777
    this.#dirTimes.push({ name: name.full, ...times(header) })
    this.#unpacked.add(key)
    if (existing?.isDirectory() === true) {
      this.#attrs.owner(header, host)
      this.#attrs.xattrs(header, host)
      chmodSync(host, mode)
      this.#root.invalidate() // its lowers may have changed with the metadata (opaque)
      return
    }
    // In overlay form a 0/0 device is this layer's whiteout: the new directory must hide the
    // lower one it deleted.
    const opaque = existing !== undefined && this.#overlay && isWhiteoutDevice(existing)
    if (existing !== undefined) this.#remove(host, existing)
    mkdirSync(host, { mode: mode & 0o777 })
    if (opaque) sys.lsetxattr(host, OPAQUE_XATTR, Buffer.from('y'))
    // A new directory has the process's uid and its parent's new-file group: as root, most
    // need no chown.
    let gid = parent.newFileGid
    if (this.#attrs.chown) {
      const uid = this.#attrs.id(header.uid, 'uids', header.name)
      const want = this.#attrs.id(header.gid, 'gids', header.name)
      if (uid !== EUID || want !== gid) lchownSync(host, uid, want)
      gid = want
    }
    this.#attrs.xattrs(header, host)
    // mkdir applied the umask and inherited setgid from a setgid parent.
    if (mode !== (mode & 0o777 & ~this.#umask) || parent.setgid) chmodSync(host, mode)
    this.#root.remember(parent, Buffer.from(name.base, 'latin1'), host, dirGroup(mode, gid))
  }

  #regular(header: TarHeader, host: Buffer, parent: ResolvedDir | undefined): FileSink {
    const perm = header.mode & 0o777
    let fd: number
    try {
      fd = openSync(host, O_NEW_FILE, perm)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      this.#remove(host, lstatSync(host))
      fd = openSync(host, O_NEW_FILE, perm)
    }
    this.#openFd = fd
    const sparse = header.sparse !== undefined
    let position = 0
    return {
      write: (chunk) => {
        try {
          if (sparse && isZero(chunk)) {
            position += chunk.length // leave a hole; ftruncate sets the length
            return
          }
          let done = 0
          while (done < chunk.length)
            done += writeSync(fd, chunk, done, chunk.length - done, position + done)
          position += chunk.length
        } catch (err) {
          this.#closeOpenFile()
          throw applyError(err, header.name)
        }
      },
      close: () => {
        try {
          if (sparse) ftruncateSync(fd, header.size)
          // A new file already has the process's uid and its directory's group: as root, most
          // files need no chown.
          const uid = this.#attrs.id(header.uid, 'uids', header.name)
          const gid = this.#attrs.id(header.gid, 'gids', header.name)
          if (this.#attrs.chown && (uid !== EUID || gid !== parent?.newFileGid))
            fchownSync(fd, uid, gid)
          this.#attrs.xattrs(header, host)
          const mode = header.mode & 0o7777
          if (mode !== (perm & ~this.#umask)) fchmodSync(fd, mode)
          const t = times(header)
          sys.futimens(fd, t.atime, t.atimeNsec, t.mtime, t.mtimeNsec)
        } catch (err) {
          this.#closeOpenFile()
          throw applyError(err, header.name)
        }
        this.#closeOpenFile()
      },
    }
  }

  /** A small file: its data is gathered, then created on the thread pool in one job. */
  #smallFile(header: TarHeader, host: Buffer, parent: ResolvedDir, key: string): FileSink {
    // In a directory this apply made, only names it created exist.
    const mayExist = !parent.fresh || this.#unpacked.has(key)
    const existing = mayExist ? lstatOrUndefined(host) : undefined
    if (existing !== undefined) this.#remove(host, existing)
    this.#unpacked.add(key)
    const chunks: Uint8Array[] = []
    return {
      write: (chunk) => chunks.push(chunk),
      close: () => {
        const uid = this.#attrs.id(header.uid, 'uids', header.name)
        const gid = this.#attrs.id(header.gid, 'gids', header.name)
        const chown = this.#attrs.chown && (uid !== EUID || gid !== parent.newFileGid)
        const mode = header.mode & 0o7777
        const t = times(header)
        this.#files.add({
          host,
          key,
          name: header.name,
          chunks,
          size: header.size,
          mode,
          uid: chown ? uid : -1,
          gid,
          times: [t.atime, t.atimeNsec, t.mtime, t.mtimeNsec],
          chmod: mode !== (mode & 0o777 & ~this.#umask),
        })
      },
    }
  }

  #hardLink(header: TarHeader, name: Name, host: Buffer): void {
    const target = cleanLinkTarget(header)
    if (target === undefined)
      throw new ArchiveError('ARCHIVE_BREAKOUT', 'invalid hardlink target', header.linkname)
    // From AUFS's store, the store file's header describes the inode.
    const aufs = target.startsWith(WH_PLNK + '/')
      ? this.#aufsLinks.source(target.slice(WH_PLNK.length + 1), name.full)
      : undefined
    const source = aufs?.host ?? linkSource(this.#root, this.#overlay, target, name)
    this.#create(host, () => linkSync(source, host))
    const isSymlink = lstatSync(host).isSymbolicLink()
    this.#finishEntry(aufs?.header ?? header, host, isSymlink ? 'link' : 'path')
  }

  /** Devices and fifos. False when a device is skipped for lack of privilege. */
  #node(header: TarHeader, name: Name, host: Buffer): boolean {
    const type =
      header.typeflag === TYPE.CHAR ? S_IFCHR : header.typeflag === TYPE.BLOCK ? S_IFBLK : S_IFIFO
    if (
      header.devmajor > 0xffffffff ||
      header.devminor > 0xffffffff ||
      header.devmajor < 0 ||
      header.devminor < 0
    )
      throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'device number out of range', name.full)
    try {
      this.#create(host, () =>
        sys.mknod(host, type | (header.mode & 0o7777), header.devmajor, header.devminor),
      )
    } catch (err) {
      if (type !== S_IFIFO && (err as NodeJS.ErrnoException).code === 'EPERM') {
        this.#options.onWarning?.(
          'ARCHIVE_DEVICE_SKIPPED',
          `device node not created (no privilege): "${name.full}"`,
        )
        return false
      }
      throw err
    }
    this.#finishEntry(header, host, 'path')
    return true
  }

  /** `.wh..wh.plnk/<name>`: extracted aside, for the links that name it. */
  #plnkFile(header: TarHeader, name: Name): FileSink {
    return this.#regular(header, this.#aufsLinks.add(name.base, header), undefined)
  }

  // ---- helpers ----------------------------------------------------------------------------

  /** Runs `make`; when the name is taken, removes what is there and runs it again. */
  #create(host: Buffer, make: () => void): void {
    try {
      make()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      this.#remove(host, lstatSync(host))
      make()
    }
  }

  /** Owner, xattrs, mode and times of a non-regular, non-directory entry. */
  #finishEntry(header: TarHeader, host: Buffer, how: 'link' | 'path'): void {
    this.#attrs.owner(header, host)
    this.#attrs.xattrs(header, host)
    if (how === 'path') chmodSync(host, header.mode & 0o7777)
    if (how === 'path' || header.typeflag === TYPE.SYMLINK) {
      const t = times(header)
      sys.lutimens(host, t.atime, t.atimeNsec, t.mtime, t.mtimeNsec)
    }
  }

  /** Removes an entry before its name is reused; directories and links invalidate resolution. */
  #remove(host: Buffer, st: Stats): void {
    // Files in flight may be inside it.
    if (st.isDirectory() && this.#files.count > 0) throw NEED_DRAIN
    if (st.isDirectory()) rmSync(host, { recursive: true, force: true })
    else rmSync(host, { force: true })
    if (st.isDirectory() || st.isSymbolicLink()) this.#root.invalidate()
  }

  #makeImpliedDir(host: Buffer, copyOf: { host: Buffer; stat: Stats } | undefined): void {
    if (copyOf !== undefined) {
      this.#copiedUp.push({ host, big: copyUp(copyOf.host, copyOf.stat, host) })
      return
    }
    mkdirSync(host, { mode: 0o755 })
    chmodSync(host, 0o755) // exactly, whatever the umask
    if (this.#attrs.chown) {
      const uid = this.#attrs.id(0, 'uids', host.toString())
      const gid = this.#attrs.id(0, 'gids', host.toString())
      lchownSync(host, uid, gid)
    }
  }

  #closeOpenFile(): void {
    if (this.#openFd === undefined) return
    const fd = this.#openFd
    this.#openFd = undefined
    closeSync(fd)
  }
}

/** Applies the tar `source` to directory `dir` and returns the layer size (Σ header sizes). */
export async function apply(
  source: ByteSource,
  dir: string,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  const applier = new Applier(dir, options)
  try {
    await feed(source, applier, options.signal)
    return await applier.finish()
  } finally {
    await applier.settle()
    applier.abort()
  }
}

// ---- pure helpers ---------------------------------------------------------------------------

function isRegular(flag: number): boolean {
  return flag === TYPE.REG || flag === TYPE.REG_A || flag === TYPE.CONT || flag === TYPE.GNU_SPARSE
}

function isZero(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false
  return true
}
