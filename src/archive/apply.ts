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
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
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
import { TarReader } from '../tar/reader.js'
import type { ByteSource } from '../tar/byte-reader.js'
import { cleanLinkTarget, cleanName, splitName, type Name } from './entry-name.js'
import { copyUp, setTimes } from './copy-up.js'
import { sys, S_IFBLK, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { ArchiveError, ArchiveIoError } from './errors.js'
import {
  LayerRoot,
  dirGroup,
  ResolveError,
  lstatOrUndefined,
  OPAQUE_XATTR,
  isWhiteoutDevice,
  join,
  type ResolvedDir,
} from './layer-root.js'
import { mapId } from './id-map.js'
import { SMALL_FILE, SmallFiles } from './small-files.js'
import type { ApplyOptions, ApplyResult } from './types.js'
import { offer, type EntryTarget, type FileSink } from '../tar/entry-target.js'

const WH_PREFIX = '.wh.'
const WH_META_PREFIX = '.wh..wh.'
const WH_OPAQUE = '.wh..wh..opq'
const WH_PLNK = '.wh..wh.plnk'
const O_NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW
const EUID = process.geteuid?.() ?? -1
const PATH_MAX = 4096
/** Thrown inside an entry that must wait for files in flight; the entry is then retried. */
const NEED_DRAIN = new Error('wait for the files in flight')
/** Go's maxTime for utimes: times beyond it (and before the epoch) become the epoch. */
const MAX_TIME_SEC = 9_223_372_036

interface Times {
  readonly atime: number
  readonly atimeNsec: number
  readonly mtime: number
  readonly mtimeNsec: number
}

interface DirTimes extends Times {
  readonly name: string
}

export class Applier implements EntryTarget {
  readonly #target: Buffer
  readonly #options: ApplyOptions
  readonly #overlay: boolean
  readonly #root: LayerRoot
  readonly #umask: number
  /** Resolved relative paths (latin1) created by this layer: an opaque marker keeps them. */
  readonly #unpacked = new Set<string>()
  readonly #dirTimes: DirTimes[] = []
  /** Directories copied up from a lower layer: their times are restored at the end. */
  readonly #copiedUp: { host: Buffer; big: BigIntStats }[] = []
  /** AUFS hard-link store: `.wh..wh.plnk/<name>` files, extracted aside. */
  #plnkDir: Buffer | undefined
  readonly #plnk = new Map<string, TarHeader>()
  #size = 0
  #entries = 0
  /** The open file of the current entry, closed on failure. */
  #openFd: number | undefined
  /** Small files being created on the thread pool. */
  readonly #files = new SmallFiles((err, name) => this.#wrap(err, name))

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
        throw this.#wrap(err, name.full)
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
        throw this.#wrap(err, d.name)
      }
    }
    this.abort()
    return { size: this.#size, entries: this.#entries }
  }

  /** Releases what the applier holds (an open file, the AUFS link store). Idempotent. */
  abort(): void {
    this.#closeOpenFile()
    if (this.#plnkDir !== undefined) rmSync(this.#plnkDir, { recursive: true, force: true })
    this.#plnkDir = undefined
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
      this.#whiteout(header, parent, name)
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
      this.#owner(header, host)
      this.#xattrs(header, host)
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
    if (this.#options.noLchown !== true) {
      const uid = this.#id(header.uid, 'uids', header.name)
      const want = this.#id(header.gid, 'gids', header.name)
      if (uid !== EUID || want !== gid) lchownSync(host, uid, want)
      gid = want
    }
    this.#xattrs(header, host)
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
          throw this.#wrap(err, header.name)
        }
      },
      close: () => {
        try {
          if (sparse) ftruncateSync(fd, header.size)
          // A new file already has the process's uid and its directory's group: as root, most
          // files need no chown.
          const uid = this.#id(header.uid, 'uids', header.name)
          const gid = this.#id(header.gid, 'gids', header.name)
          if (this.#options.noLchown !== true && (uid !== EUID || gid !== parent?.newFileGid))
            fchownSync(fd, uid, gid)
          this.#xattrs(header, host)
          const mode = header.mode & 0o7777
          if (mode !== (perm & ~this.#umask)) fchmodSync(fd, mode)
          const t = times(header)
          sys.futimens(fd, t.atime, t.atimeNsec, t.mtime, t.mtimeNsec)
        } catch (err) {
          this.#closeOpenFile()
          throw this.#wrap(err, header.name)
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
        const uid = this.#id(header.uid, 'uids', header.name)
        const gid = this.#id(header.gid, 'gids', header.name)
        const chown = this.#options.noLchown !== true && (uid !== EUID || gid !== parent.newFileGid)
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
    let source: Buffer
    let sourceHeader = header
    if (target.startsWith(WH_PLNK + '/') && this.#plnkDir !== undefined) {
      // AUFS hard-link store: the file was extracted aside; its header describes the inode.
      const base = target.slice(WH_PLNK.length + 1)
      const plnk = this.#plnk.get(base)
      if (plnk === undefined)
        throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'invalid aufs hardlink', name.full)
      source = join(this.#plnkDir, Buffer.from(base, 'latin1'))
      sourceHeader = plnk
    } else {
      source = this.#linkSource(target, name)
    }
    this.#create(host, () => linkSync(source, host))
    const isSymlink = lstatSync(host).isSymbolicLink()
    this.#finishEntry(sourceHeader, host, isSymlink ? 'link' : 'path')
  }

  /** Host path of a hard link's target: inside the target, copied up from a lower if need be. */
  #linkSource(target: string, name: Name): Buffer {
    const { dir, base } = splitName(target)
    const missing = (): ArchiveError =>
      new ArchiveError(
        'ARCHIVE_INVALID_ENTRY',
        `hard link target "${target}" does not exist`,
        name.full,
      )
    const parent = this.#root.existingDir(dir)
    if (parent === undefined) throw missing()
    const baseRaw = Buffer.from(base, 'latin1')
    const host = join(parent.host, baseRaw)
    const st = lstatOrUndefined(host)
    if (st !== undefined && !(this.#overlay && isWhiteoutDevice(st))) {
      if (st.isDirectory())
        throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'hard link to a directory', name.full)
      return host
    }
    if (st !== undefined) throw missing() // a whiteout of this layer
    // overlay2 keeps each layer in its own directory: a link to a lower layer's file needs
    // that file copied up first, as the kernel would on a write.
    const lower = this.#root.lowerEntry(parent, baseRaw)
    if (lower === undefined) throw missing()
    if (lower.stat.isDirectory())
      throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'hard link to a directory', name.full)
    copyUp(lower.host, lower.stat, host)
    return host
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

  #whiteout(header: TarHeader, parent: ResolvedDir, name: Name): void {
    if (name.base === WH_OPAQUE) {
      if (this.#overlay && parent === this.#root.root) {
        this.#hideLowerRoot(header)
        this.#root.setRootOpaque()
      } else if (this.#overlay) {
        sys.lsetxattr(parent.host, OPAQUE_XATTR, Buffer.from('y'))
        this.#root.invalidate()
      } else if (this.#removeNotUnpacked(parent)) {
        this.#root.invalidate()
      }
      return
    }
    const hidden = name.base.slice(WH_PREFIX.length)
    if (hidden === '' || hidden === '.' || hidden === '..' || hidden.includes('/'))
      throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'invalid whiteout entry', name.full)
    const host = join(parent.host, Buffer.from(hidden, 'latin1'))
    const existing = lstatOrUndefined(host)
    if (existing !== undefined) this.#remove(host, existing)
    if (!this.#overlay) return
    sys.mknod(host, S_IFCHR, 0, 0)
    this.#unpacked.add(parent.key === '' ? hidden : `${parent.key}/${hidden}`)
    const uid = this.#id(header.uid, 'uids', name.full)
    const gid = this.#id(header.gid, 'gids', name.full)
    if ((uid !== 0 || gid !== 0) && this.#options.noLchown !== true) lchownSync(host, uid, gid)
  }

  /** `.wh..wh.plnk/<name>`: extracted into a scratch directory inside the target. */
  #plnkFile(header: TarHeader, name: Name): FileSink {
    this.#plnkDir ??= Buffer.from(
      mkdtempSync(join(this.#target, Buffer.from('.layerstore-plnk-')).toString()),
    )
    this.#plnk.set(name.base, header)
    return this.#regular(header, join(this.#plnkDir, Buffer.from(name.base, 'latin1')), undefined)
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
    this.#owner(header, host)
    this.#xattrs(header, host)
    if (how === 'path') chmodSync(host, header.mode & 0o7777)
    if (how === 'path' || header.typeflag === TYPE.SYMLINK) {
      const t = times(header)
      sys.lutimens(host, t.atime, t.atimeNsec, t.mtime, t.mtimeNsec)
    }
  }

  #owner(header: TarHeader, host: Buffer): void {
    if (this.#options.noLchown === true) return
    const uid = this.#id(header.uid, 'uids', header.name)
    const gid = this.#id(header.gid, 'gids', header.name)
    lchownSync(host, uid, gid)
  }

  #id(id: number, which: 'uids' | 'gids', entry: string): number {
    const maps = this.#options.idMappings?.[which]
    if (maps === undefined || maps.length === 0) return id
    const host = mapId(maps, id)
    if (host === undefined)
      throw new ArchiveError(
        'ARCHIVE_UNMAPPED_ID',
        `${which === 'uids' ? 'uid' : 'gid'} ${id} is not mapped`,
        entry,
      )
    return host
  }

  #xattrs(header: TarHeader, host: Buffer): void {
    if (header.xattrs === undefined) return
    for (const [key, value] of header.xattrs) {
      // An overlayfs layer must not take overlay metadata from a tar: it would redirect or
      // hide other layers' files.
      if (this.#overlay && key.startsWith('trusted.overlay.')) {
        this.#options.onWarning?.(
          'ARCHIVE_XATTR_SKIPPED',
          `overlay xattr ${key} ignored on "${header.name}"`,
        )
        continue
      }
      try {
        sys.lsetxattr(host, key, value)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        const tolerated =
          code === 'EPERM' || (code === 'ENOTSUP' && this.#options.bestEffortXattrs === true)
        if (!tolerated) throw err
        this.#options.onWarning?.(
          'ARCHIVE_XATTR_SKIPPED',
          `xattr ${key} not set on "${header.name}" (${code})`,
        )
      }
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

  /**
   * An opaque marker at the root in overlay form. overlayfs ignores the opaque xattr on a
   * layer's root, so the root is made to hide the lowers name by name: a whiteout for every
   * name the lowers show there that this layer did not create.
   */
  #hideLowerRoot(header: TarHeader): void {
    const root = this.#root.root
    const seen = new Set<string>()
    for (const lower of root.lowers) {
      for (const ent of readdirSync(lower, { encoding: 'buffer' })) {
        const name = ent.toString('latin1')
        if (seen.has(name)) continue
        seen.add(name) // the topmost layer decides, a whiteout included
        const host = join(root.host, ent)
        if (this.#root.lowerEntry(root, ent) === undefined) continue
        if (lstatOrUndefined(host) !== undefined) continue // this layer's own
        sys.mknod(host, S_IFCHR, 0, 0)
        const uid = this.#id(header.uid, 'uids', name)
        const gid = this.#id(header.gid, 'gids', name)
        if (this.#options.noLchown !== true) lchownSync(host, uid, gid)
      }
    }
  }

  /** AUFS opaque marker: removes what this layer did not create, below `dir`. */
  #removeNotUnpacked(dir: ResolvedDir): boolean {
    let removed = false
    const walk = (d: Buffer, key: string): void => {
      let list
      try {
        list = readdirSync(d, { encoding: 'buffer', withFileTypes: true })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw err
      }
      for (const ent of list) {
        const host = join(d, ent.name)
        const name = ent.name.toString('latin1')
        const childKey = key === '' ? name : `${key}/${name}`
        if (!this.#unpacked.has(childKey)) {
          rmSync(host, { recursive: true, force: true })
          removed = true
        } else if (ent.isDirectory()) {
          walk(host, childKey)
        }
      }
    }
    walk(dir.host, dir.key)
    return removed
  }

  #makeImpliedDir(host: Buffer, copyOf: { host: Buffer; stat: Stats } | undefined): void {
    if (copyOf !== undefined) {
      this.#copiedUp.push({ host, big: copyUp(copyOf.host, copyOf.stat, host) })
      return
    }
    mkdirSync(host, { mode: 0o755 })
    chmodSync(host, 0o755) // exactly, whatever the umask
    if (this.#options.noLchown !== true) {
      const uid = this.#id(0, 'uids', host.toString())
      const gid = this.#id(0, 'gids', host.toString())
      lchownSync(host, uid, gid)
    }
  }

  #closeOpenFile(): void {
    if (this.#openFd === undefined) return
    const fd = this.#openFd
    this.#openFd = undefined
    closeSync(fd)
  }

  #wrap(err: unknown, entry: string): Error {
    if (err instanceof ArchiveError || err instanceof ArchiveIoError) return err
    if (err instanceof ResolveError)
      return new ArchiveError('ARCHIVE_INVALID_ENTRY', err.message, entry, { cause: err })
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENAMETOOLONG')
      return new ArchiveError('ARCHIVE_INVALID_ENTRY', 'name too long for the file system', entry, {
        cause: err,
      })
    if (typeof code === 'string')
      return new ArchiveIoError(
        'ARCHIVE_APPLY_FAILED',
        `${(err as NodeJS.ErrnoException).syscall ?? 'apply'} failed (${code})`,
        entry,
        { cause: err },
      )
    return err instanceof Error ? err : new Error(String(err))
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

/** Reads the tar `source` up to its end-of-archive and hands every entry to `target`. */
export async function feed(
  source: ByteSource,
  target: EntryTarget,
  signal?: AbortSignal,
): Promise<void> {
  const reader = new TarReader(source, signal ? { signal } : {})
  for (;;) {
    const entry = await reader.next()
    if (entry === undefined) return
    let sink = offer(target, entry.header)
    if (sink instanceof Promise) sink = await sink
    if (sink === undefined) continue
    for await (const chunk of entry.body) sink.write(chunk)
    sink.close()
  }
}

// ---- pure helpers ---------------------------------------------------------------------------

function isRegular(flag: number): boolean {
  return flag === TYPE.REG || flag === TYPE.REG_A || flag === TYPE.CONT || flag === TYPE.GNU_SPARSE
}

/** Docker's times: atime is the later of atime and mtime; out-of-range times become the epoch. */
function times(header: TarHeader): Times {
  let m = { sec: header.mtime, nsec: header.mtimeNsec }
  let a = header.atime ?? m
  if (a.sec < m.sec || (a.sec === m.sec && a.nsec < m.nsec)) a = m
  const bound = (t: { sec: number; nsec: number }): { sec: number; nsec: number } =>
    t.sec < 0 || t.sec > MAX_TIME_SEC ? { sec: 0, nsec: 0 } : t
  m = bound(m)
  a = bound(a)
  return { atime: a.sec, atimeNsec: a.nsec, mtime: m.sec, mtimeNsec: m.nsec }
}

/**
 * The process umask, read without changing it (process.umask() writes it twice, racing with
 * other threads): from /proc/self/status. When it cannot be read, every file gets a chmod.
 */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'))
    if (m) return parseInt(m[1]!, 8)
  } catch {
    // no procfs
  }
  return 0o777
}

function isZero(chunk: Uint8Array): boolean {
  for (let i = 0; i < chunk.length; i++) if (chunk[i] !== 0) return false
  return true
}
