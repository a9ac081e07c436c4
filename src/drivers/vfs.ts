/**
 * The vfs driver (SPEC.md §5.3): every layer is a complete root filesystem in a directory of
 * its own, `<root>/vfs/dir/<id>`, and a child starts as a full copy of its parent. Needs no
 * kernel feature and no privileges; costs a copy per layer. Wrapped in the naive diff, so
 * layers are compared and diffs applied on whole trees (whiteouts delete what they hide).
 *
 * Docker-compatible layout: home `<root>/vfs` and `dir/` are 0710, layer directories 0755.
 * Differences from Docker: a copy keeps every extended attribute (Docker keeps
 * `security.capability` only) and sockets (Docker fails on them); ids are checked instead of
 * cut to their base name; create() of an existing id fails instead of copying the parent over
 * it.
 */
import { readdirSync, chmodSync, lstatSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { settle } from '../internal/settle.js'
import { PathFileGetter } from '../tarsplit/file-getter.js'
import { copyTree } from './copy-tree.js'
import { checkId } from './driver-id.js'
import { DriverIoError, DriverLayerExistsError, DriverLayerNotFoundError } from './errors.js'
import { naiveDiff, type NaiveApplyOptions, type ProtoDiffGetterDriver } from './naive-diff.js'
import { removeAll } from './remove-all.js'
import { checkStorageOptions } from './storage-options.js'
import type { CreateOptions, DiffGetterDriver, DriverStatus, FileGetCloser } from './types.js'

export const VFS_DRIVER_NAME = 'vfs'

export interface VfsOptions {
  /**
   * Extended attributes the filesystem or our privileges refuse are skipped, in copies and
   * in applied layers, instead of failing (Docker's `vfs.xattrs` best-effort mode).
   */
  readonly bestEffortXattrs?: boolean
  /**
   * Options of applyDiff's unpacking (id mappings...). Default: owners are kept when running
   * as root, and not set otherwise (`noLchown`), since only root may give files away.
   */
  readonly apply?: NaiveApplyOptions
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code

/** A FileGetter over a layer directory; nothing to release (vfs does not mount). */
class VfsFileGetter extends PathFileGetter implements FileGetCloser {
  close(): Promise<void> {
    return Promise.resolve()
  }
}

/** The vfs ProtoDriver (and diffGetter); use {@link createVfsDriver} for a whole Driver. */
export class VfsProtoDriver implements ProtoDiffGetterDriver {
  readonly name = VFS_DRIVER_NAME
  readonly home: string
  readonly #dirs: string
  readonly #bestEffortXattrs: boolean

  /** Creates `<root>/vfs/dir` if needed (home and dir/ 0710). */
  constructor(root: string, options: Pick<VfsOptions, 'bestEffortXattrs'> = {}) {
    this.home = join(resolve(root), VFS_DRIVER_NAME)
    this.#dirs = join(this.home, 'dir')
    this.#bestEffortXattrs = options.bestEffortXattrs === true
    try {
      const made = mkdirSync(this.#dirs, { recursive: true, mode: 0o710 })
      if (made !== undefined) {
        if (made.length <= this.home.length) chmodSync(this.home, 0o710)
        chmodSync(this.#dirs, 0o710)
      }
    } catch (err) {
      throw new DriverIoError(`Cannot create the vfs home (${code(err) ?? 'error'})`, this.#dirs, {
        cause: err,
      })
    }
  }

  #dir(id: string, what = 'id'): string {
    checkId(id, what)
    return join(this.#dirs, id)
  }

  /** The layer's directory; DRIVER_LAYER_NOT_FOUND unless it is one. */
  #existing(id: string, what = 'id'): string {
    const dir = this.#dir(id, what)
    let isDir: boolean
    try {
      isDir = lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false
    } catch (err) {
      throw new DriverIoError(`Cannot read layer (${code(err) ?? 'error'})`, dir, { cause: err })
    }
    if (!isDir) throw new DriverLayerNotFoundError(id, `"${dir}" is not a directory`)
    return dir
  }

  async create(id: string, parent: string | undefined, options: CreateOptions = {}): Promise<void> {
    checkStorageOptions(this.name, id, options, false)
    await this.#create(id, parent)
  }

  async createReadWrite(
    id: string,
    parent: string | undefined,
    options: CreateOptions = {},
  ): Promise<void> {
    checkStorageOptions(this.name, id, options, true)
    await this.#create(id, parent)
  }

  async #create(id: string, parent: string | undefined): Promise<void> {
    const dir = this.#dir(id)
    const from = parent === undefined ? undefined : this.#existing(parent, 'parent id')
    try {
      mkdirSync(dir, 0o755)
    } catch (err) {
      if (code(err) === 'EEXIST') throw new DriverLayerExistsError(id, { cause: err })
      throw new DriverIoError(`Cannot create layer (${code(err) ?? 'error'})`, dir, {
        cause: err,
      })
    }
    try {
      chmodSync(dir, 0o755) // mkdir's mode went through the umask
      if (from !== undefined)
        await copyTree(from, dir, { bestEffortXattrs: this.#bestEffortXattrs })
    } catch (err) {
      await removeAll(dir).catch(() => undefined)
      if (err instanceof DriverIoError) throw err
      throw new DriverIoError(`Cannot create layer (${code(err) ?? 'error'})`, dir, {
        cause: err,
      })
    }
  }

  /** Deletes the layer's directory, whatever its permissions; a missing layer is success. */
  async remove(id: string): Promise<void> {
    await removeAll(this.#dir(id))
  }

  get(id: string, _mountLabel?: string): Promise<string> {
    return settle(() => this.#existing(id))
  }

  /** Nothing to release: vfs does not mount. */
  put(id: string): Promise<void> {
    return settle(() => checkId(id))
  }

  exists(id: string): Promise<boolean> {
    return settle(() => lstatSync(this.#dir(id), { throwIfNoEntry: false })?.isDirectory() ?? false)
  }

  status(): DriverStatus {
    return this.#bestEffortXattrs ? [['Best Effort Xattrs', 'true']] : []
  }

  getMetadata(id: string): Promise<Record<string, string>> {
    return settle(() => ({ SourceDir: this.#existing(id) }))
  }

  cleanup(): Promise<void> {
    return Promise.resolve()
  }

  /** Every layer directory's id. */
  ids(): Promise<string[]> {
    return settle(() => readdirSync(this.#dirs))
  }

  /** The layer's files for tar-split assembly, resolved chroot-style inside its directory. */
  diffGetter(id: string): Promise<FileGetCloser> {
    return settle(() => new VfsFileGetter(this.#existing(id)))
  }
}

/**
 * A vfs driver on store root `root` (its data in `<root>/vfs`), with the naive diff. The
 * home is created if needed.
 */
export function createVfsDriver(root: string, options: VfsOptions = {}): Promise<DiffGetterDriver> {
  const apply: NaiveApplyOptions = {
    noLchown: process.geteuid?.() !== 0,
    ...(options.bestEffortXattrs === true ? { bestEffortXattrs: true } : {}),
    ...options.apply,
  }
  return settle(() => naiveDiff(new VfsProtoDriver(root, options), { apply }))
}
