/**
 * Tar entries for the nodes of a directory, one node at a time: Docker's
 * `tarAppender.addTarFile` (SPEC.md §6.10). One appender serves one archive, because it
 * remembers the first name of each hard-linked inode.
 *
 * The header comes from lstat: numeric ids without user or group names, mtime cut to whole
 * seconds (the writer drops atime and ctime), device numbers, mode = permission, setuid,
 * setgid and sticky bits. Only the `security.capability` xattr is carried, a v3 one (with a
 * namespace root id) downgraded to v2, as the root id makes no sense outside the namespace.
 * The tar writer picks USTAR or PAX as Go's does.
 *
 * With the overlay whiteout format (the directory is an overlayfs upper layer), a 0/0
 * character device becomes the AUFS whiteout `.wh.<name>`, and a directory marked opaque
 * (`trusted.overlay.opaque=y`) is followed by `<dir>/.wh..wh..opq`.
 */
import { lstatSync, readlinkSync, type BigIntStats } from 'node:fs'
import { debuglog } from 'node:util'
import { sys } from '../internal/sys.js'
import { TYPE, type TarHeaderInput, type TarWriteEntry } from '../tar/index.js'
import { exportError, readSmallFile, SMALL_FILE_SIZE, streamFile } from './file-body.js'
import {
  deviceNumbers,
  fileType,
  floorSeconds,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
} from './file-stat.js'
import type { WhiteoutFormat } from './types.js'

const debug = debuglog('layerstore:archive')

const SLASH = Buffer.from('/')
const WHITEOUT_PREFIX = Buffer.from('.wh.')
const OPAQUE_MARKER = Buffer.from('.wh..wh..opq')
const OVERLAY_OPAQUE = 'trusted.overlay.opaque'
const CAPABILITY = 'security.capability'
// linux/capability.h: the revision is byte 3 of magic_etc; a v2 value is 20 bytes.
const CAP_VERSION_OFFSET = 3
const VFS_CAP_REVISION_2 = 2
const VFS_CAP_REVISION_3 = 3
const XATTR_CAPS_SZ_2 = 20

type Header = { -readonly [K in keyof TarHeaderInput]: TarHeaderInput[K] }

/** `dir/.wh.base` for `dir/base` (paths relative, no leading slash). */
export function whiteoutName(rel: Buffer): Buffer {
  const i = rel.lastIndexOf(0x2f) + 1
  return Buffer.concat([rel.subarray(0, i), WHITEOUT_PREFIX, rel.subarray(i)])
}

/** The capability as an archive carries it: a v3 value is cut down to v2. */
function exportedCapability(value: Buffer): Buffer {
  if (value.length <= CAP_VERSION_OFFSET || value[CAP_VERSION_OFFSET] !== VFS_CAP_REVISION_3)
    return value
  const v2 = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_2))
  v2[CAP_VERSION_OFFSET] = VFS_CAP_REVISION_2
  return v2
}

const TYPEFLAGS = new Map<number, number>([
  [S_IFREG, TYPE.REG],
  [S_IFDIR, TYPE.DIR],
  [S_IFLNK, TYPE.SYMLINK],
  [S_IFCHR, TYPE.CHAR],
  [S_IFBLK, TYPE.BLOCK],
  [S_IFIFO, TYPE.FIFO],
])

export interface AppendedNode {
  /** The node's lstat, for a walk that descends into directories. */
  readonly stat: BigIntStats
  /** Its entries in archive order: none for a socket, two for an opaque directory. */
  readonly entries: readonly TarWriteEntry[]
}

export interface TarAppenderOptions {
  /** `overlay`: convert overlayfs whiteouts and opaque directories (default `aufs`: none). */
  readonly whiteoutFormat?: WhiteoutFormat
  readonly signal?: AbortSignal
}

export class TarAppender {
  readonly #root: Buffer
  readonly #overlay: boolean
  readonly #signal: AbortSignal | undefined
  /** `dev:ino` → first name written, for hard links. */
  readonly #seen = new Map<string, Buffer>()

  constructor(root: string, options: TarAppenderOptions = {}) {
    this.#root = Buffer.from(root)
    this.#overlay = options.whiteoutFormat === 'overlay'
    this.#signal = options.signal
  }

  /**
   * The entries of node `rel` (a path inside the root without leading slash: `etc/hosts`).
   * A regular file's data is read now when it is small, else as the body is pulled. Fails with
   * ARCHIVE_EXPORT_FAILED when the node cannot be read.
   */
  add(rel: Buffer): AppendedNode {
    const path = Buffer.concat([this.#root, SLASH, rel])
    const shown = `/${rel.toString('utf8')}`
    try {
      return this.#add(rel, path, shown)
    } catch (err) {
      throw exportError(err, shown)
    }
  }

  #add(rel: Buffer, path: Buffer, shown: string): AppendedNode {
    const st = lstatSync(path, { bigint: true })
    const type = fileType(st)
    const typeflag = TYPEFLAGS.get(type)
    if (typeflag === undefined) {
      // A socket, the one type left: it has no tar form, and Docker and GNU tar leave it out.
      debug('export: %s skipped (file type 0o%s)', shown, type.toString(8))
      return { stat: st, entries: [] }
    }
    const isDir = type === S_IFDIR
    const name = isDir ? Buffer.concat([rel, SLASH]) : rel
    const h: Header = {
      typeflag,
      nameRaw: name,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(floorSeconds(st.mtimeNs)),
      size: type === S_IFREG ? Number(st.size) : 0,
    }
    if (type === S_IFLNK) h.linknameRaw = readlinkSync(path, { encoding: 'buffer' })
    let rdev = { major: 0, minor: 0 }
    if (type === S_IFCHR || type === S_IFBLK) {
      rdev = deviceNumbers(st.rdev)
      h.devmajor = rdev.major
      h.devminor = rdev.minor
    }
    const capability = sys.lgetxattr(path, CAPABILITY)
    if (capability !== undefined) h.xattrs = new Map([[CAPABILITY, exportedCapability(capability)]])

    if (this.#overlay && type === S_IFCHR && rdev.major === 0 && rdev.minor === 0) {
      // An overlayfs whiteout. Kernels since 5.8 hard-link whiteouts to one shared inode, so
      // they stay out of the hard-link map: each is its own `.wh.` file (Docker would leave
      // the stray link name in the regular file's header).
      h.nameRaw = whiteoutName(rel)
      h.typeflag = TYPE.REG
      h.mode = 0o600
      return { stat: st, entries: [{ header: h }] }
    }

    if (!isDir && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      const first = this.#seen.get(key)
      if (first !== undefined) {
        h.typeflag = TYPE.LINK
        h.linknameRaw = first
        h.size = 0
        return { stat: st, entries: [{ header: h }] }
      }
      this.#seen.set(key, rel)
    }

    const entries: TarWriteEntry[] = [{ header: h, ...this.#body(path, st, shown) }]
    if (this.#overlay && isDir && isOpaque(sys.lgetxattr(path, OVERLAY_OPAQUE))) {
      const marker: TarHeaderInput = {
        typeflag: TYPE.REG,
        nameRaw: Buffer.concat([name, OPAQUE_MARKER]),
        mode: Number(st.mode) & 0o777,
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: 0, // Docker leaves it zero: the epoch
      }
      entries.push({ header: marker })
    }
    return { stat: st, entries }
  }

  #body(path: Buffer, st: BigIntStats, shown: string): Pick<TarWriteEntry, 'body'> {
    if (fileType(st) !== S_IFREG || st.size === 0n) return {}
    if (st.size <= BigInt(SMALL_FILE_SIZE)) return { body: readSmallFile(path, st, shown) }
    return { body: streamFile(path, st, shown, this.#signal) }
  }
}

function isOpaque(value: Buffer | undefined): boolean {
  return value?.length === 1 && value[0] === 0x79 // 'y'
}
