/**
 * The overlay2 driver (SPEC.md §5.4–5.6): every layer keeps only its own changes in
 * `<root>/overlay2/<id>/diff`, and the kernel's overlayfs stacks a layer on its lowers when it
 * is mounted. Docker's on-disk layout, so that either program can use a root the other wrote:
 *
 * ```
 * <home>/l/<LINK> -> ../<id>/diff      short names of diff dirs, for mount options
 * <home>/<id>/diff/                    the layer's files; whiteouts as 0/0 character devices,
 *                                      opaque directories with trusted.overlay.opaque=y
 * <home>/<id>/link                     its LINK
 * <home>/<id>/lower                    l/<PARENT LINK>:l/<GRANDPARENT LINK>:... (with a parent)
 * <home>/<id>/work/, merged/           overlayfs' work dir; the mount point while mounted
 * <home>/<id>/committed                a child exists: mounted read-only from then on
 * <home>/<id>/mounts                   ours: how many users the mount has (./overlay2/mounts.ts)
 * ```
 *
 * Image layers never need a mount: a layer's tar is applied straight into its diff/ with the
 * overlay whiteout form, names resolved in the merged view of its lowers in user space
 * (../archive/apply.ts), and its files are read back for tar-split from diff/. A read-write
 * layer's changes are read from its upper directory alone (the native diff) when the kernel
 * keeps renamed directories and copied-up metadata out of it; otherwise, or when the diff is
 * asked against another layer than the direct parent, mounted trees are compared (naive).
 *
 * Differences from Docker: ids are checked, not cut to their base name; create() of an
 * existing id fails; the native diff lists the same changes and writes the same bytes as the
 * naive one (Docker's tars the upper directory as it is, opaque markers included) and
 * changes() is native too (Docker's is always naive); mount counts survive across processes.
 */
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { apply, changesSize, exportChanges, overlayChanges, type Change } from '../archive/index.js'
import { PathFileGetter } from '../tarsplit/file-getter.js'
import { FileMissingError } from '../tarsplit/errors.js'
import { checkId } from './driver-id.js'
import { directorySize } from './directory-size.js'
import {
  DriverError,
  DriverIoError,
  DriverLayerExistsError,
  DriverLayerNotFoundError,
  DriverNotSupportedError,
} from './errors.js'
import {
  endNoEarlierThan,
  NaiveDiffGetterDriver,
  settleTime,
  type NaiveApplyOptions,
  type ProtoDiffGetterDriver,
} from './naive-diff.js'
import { checkFeatures, OVERLAY2, type OverlayFeatures } from './overlay2/features.js'
import { isLinkId, newLinkId } from './overlay2/link-id.js'
import { isMountpoint, OverlayMounts } from './overlay2/mounts.js'
import { removeAll } from './remove-all.js'
import { checkStorageOptions } from './storage-options.js'
import type {
  ApplyDiffOptions,
  CreateOptions,
  DiffGetterDriver,
  DriverStatus,
  FileGetCloser,
} from './types.js'

export const OVERLAY2_DRIVER_NAME = OVERLAY2

/** Lowers a mount may have (Docker's limit; 125 image layers + init + the layer itself fit). */
export const MAX_LOWERS = 128

export interface Overlay2Options {
  /**
   * Never read changes from upper directories, always compare mounted trees (the naive
   * diff), and apply layers on a mount too. Default: native wherever the kernel allows it.
   */
  readonly naive?: boolean
  /** Options of applying a layer's tar (id mappings...). Default: owners kept as root. */
  readonly apply?: NaiveApplyOptions
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err)

function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}

/** A small file replaced whole: a reader sees the old or the new content, never a part. */
function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, data, { mode })
  renameSync(tmp, path)
}

/**
 * A layer's files for tar-split assembly: from diff/, where its tar put them. A name that
 * only resolves in the merged view (its parent is a symlink in a lower layer) is read from a
 * read-only mount of the layer, made on first need and released by close().
 */
class Overlay2FileGetter implements FileGetCloser {
  readonly #diff: PathFileGetter
  readonly #mount: () => Promise<string>
  readonly #unmount: () => Promise<void>
  #merged: Promise<PathFileGetter> | undefined

  constructor(diff: string, mount: () => Promise<string>, unmount: () => Promise<void>) {
    this.#diff = new PathFileGetter(diff)
    this.#mount = mount
    this.#unmount = unmount
  }

  #fallback(): Promise<PathFileGetter> {
    this.#merged ??= this.#mount().then((root) => new PathFileGetter(root))
    return this.#merged
  }

  async #either<T>(fn: (g: PathFileGetter) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#diff)
    } catch (err) {
      if (!(err instanceof FileMissingError)) throw err
      return fn(await this.#fallback())
    }
  }

  async *get(name: Buffer, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    // Only the opening can fail over: once bytes are out, the file is the one being read.
    const first = await this.#either(async (g) => {
      const it = g.get(name, size, signal)[Symbol.asyncIterator]()
      return { it, r: await it.next() }
    })
    for (let r = first.r; r.done !== true; r = await first.it.next()) yield r.value
  }
  readWhole(name: Buffer, size: number): Promise<Buffer> {
    return this.#either((g) => g.readWhole(name, size))
  }
  readInto(name: Buffer, size: number, dest: Uint8Array, offset: number): Promise<number> {
    return this.#either((g) => g.readInto(name, size, dest, offset))
  }
  readAt(
    name: Buffer,
    position: number,
    dest: Uint8Array,
    offset: number,
    length: number,
  ): Promise<number> {
    return this.#either((g) => g.readAt(name, position, dest, offset, length))
  }
  async close(): Promise<void> {
    if (this.#merged === undefined) return
    await this.#merged.catch(() => undefined)
    await this.#unmount()
  }
}

/** The overlay2 directories and mounts; {@link createOverlay2Driver} adds the diff. */
export class Overlay2ProtoDriver implements ProtoDiffGetterDriver {
  readonly name = OVERLAY2
  readonly home: string
  readonly features: OverlayFeatures
  readonly #links: string
  readonly #mounts: OverlayMounts

  private constructor(home: string, features: OverlayFeatures) {
    this.home = home
    this.features = features
    this.#links = join(home, 'l')
    this.#mounts = new OverlayMounts(home, features.optionPrefix)
  }

  /**
   * Creates `<root>/overlay2` (0710) and `l/` (0700) if needed and tests the kernel:
   * DRIVER_NOT_SUPPORTED when overlay mounts or d_type are missing.
   */
  static async open(root: string): Promise<Overlay2ProtoDriver> {
    if (process.getuid?.() !== 0)
      throw new DriverNotSupportedError(OVERLAY2, 'mounting overlayfs needs root')
    const home = join(resolve(root), OVERLAY2)
    let made: string | undefined
    try {
      made = mkdirSync(home, { recursive: true, mode: 0o710 })
      if (made !== undefined) chmodSync(home, 0o710)
      mkdirSync(join(home, 'l'), { mode: 0o700, recursive: true })
    } catch (err) {
      throw new DriverIoError(`Cannot create the overlay2 home (${code(err)})`, home, {
        cause: err,
      })
    }
    let features: OverlayFeatures
    try {
      features = await checkFeatures(home)
    } catch (err) {
      if (made !== undefined) await removeAll(home).catch(() => undefined) // leave no trace
      throw err
    }
    const driver = new Overlay2ProtoDriver(home, features)
    driver.#pruneLinks()
    return driver
  }

  #dir(id: string, what = 'id'): string {
    checkId(id, what)
    return join(this.home, id)
  }

  /** The layer's directory; DRIVER_LAYER_NOT_FOUND unless it has a diff/. */
  #existing(id: string, what = 'id'): string {
    const dir = this.#dir(id, what)
    let ok: boolean
    try {
      ok = lstatSync(join(dir, 'diff'), { throwIfNoEntry: false })?.isDirectory() ?? false
    } catch (err) {
      throw new DriverIoError(`Cannot read layer (${code(err)})`, dir, { cause: err })
    }
    if (!ok) throw new DriverLayerNotFoundError(id, `"${dir}" is not a layer directory`)
    return dir
  }

  /** The `lower` file's entries (`l/<LINK>`, top first); none for a base layer. */
  lowers(id: string): string[] {
    let text: string
    try {
      text = readFileSync(join(this.#existing(id), 'lower'), 'latin1')
    } catch (err) {
      if (code(err) === 'ENOENT') return []
      if (err instanceof DriverLayerNotFoundError) throw err
      throw new DriverIoError(`Cannot read layer (${code(err)})`, this.#dir(id), { cause: err })
    }
    return text.trim() === '' ? [] : text.trim().split(':')
  }

  /** The diff directories of the layer's lowers, absolute, top first. */
  lowerDiffs(id: string): string[] {
    return this.lowers(id).map((l) => this.#resolveLower(l))
  }

  #resolveLower(lower: string): string {
    const link = join(this.home, lower)
    try {
      return resolve(join(link, '..'), readlinkSync(link))
    } catch (err) {
      throw new DriverIoError(`Cannot resolve lower layer link (${code(err)})`, link, {
        cause: err,
      })
    }
  }

  diffDir(id: string): string {
    return join(this.#existing(id), 'diff')
  }

  /** Docker's isParent: `parent`'s diff is the layer's first lower (no lower: no parent). */
  isParent(id: string, parent: string | undefined): boolean {
    const lowers = this.lowers(id)
    if (parent === undefined) return lowers.length === 0
    return lowers.length > 0 && this.#resolveLower(lowers[0]!) === this.diffDir(parent)
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
    let lower: string | undefined
    let parentDir: string | undefined
    if (parent !== undefined) {
      parentDir = this.#existing(parent, 'parent id')
      const link = this.#readLink(parentDir)
      const lowers = [`l/${link}`, ...this.lowers(parent)]
      if (lowers.length > MAX_LOWERS)
        throw new DriverError(
          'DRIVER_INVALID_OPTION',
          `Cannot create layer "${id}": max depth exceeded (${lowers.length} lowers, at most ${MAX_LOWERS})`,
        )
      lower = lowers.join(':')
    }
    try {
      mkdirSync(dir, 0o710)
    } catch (err) {
      if (code(err) === 'EEXIST') throw new DriverLayerExistsError(id, { cause: err })
      throw new DriverIoError(`Cannot create layer (${code(err)})`, dir, { cause: err })
    }
    try {
      chmodSync(dir, 0o710) // mkdir's mode went through the umask
      mkdirSync(join(dir, 'diff'))
      chmodSync(join(dir, 'diff'), 0o755)
      // The name first: a crash before the link leaves nothing remove() cannot find.
      const link = newLinkId()
      writeAtomic(join(dir, 'link'), link, 0o644)
      symlinkSync(`../${id}/diff`, join(this.#links, link))
      if (lower === undefined || parentDir === undefined) return
      mkdirSync(join(dir, 'work'), 0o700)
      writeAtomic(join(dir, 'lower'), lower, 0o644)
      writeFileSync(join(parentDir, 'committed'), '', { mode: 0o600 })
    } catch (err) {
      await this.remove(id).catch(() => undefined)
      throw new DriverIoError(`Cannot create layer (${code(err)})`, dir, { cause: err })
    }
  }

  #readLink(dir: string): string {
    let link: string
    try {
      link = readFileSync(join(dir, 'link'), 'latin1').trim()
    } catch (err) {
      throw new DriverIoError(`Cannot read layer link (${code(err)})`, dir, { cause: err })
    }
    if (!isLinkId(link))
      throw new DriverIoError(`Cannot use layer: its link ${JSON.stringify(link)} is invalid`, dir)
    return link
  }

  /** Unmounts the layer if mounted, deletes its short link and its directory. */
  async remove(id: string): Promise<void> {
    const dir = this.#dir(id)
    if (lstatSync(dir, { throwIfNoEntry: false }) === undefined) return
    if (isMountpoint(join(dir, 'merged'))) await this.#mounts.release(id)
    let link: string | undefined
    try {
      link = readFileSync(join(dir, 'link'), 'latin1').trim()
    } catch {
      link = undefined // never written (a crash while creating): no link to remove
    }
    if (link !== undefined && isLinkId(link)) rmSync(join(this.#links, link), { force: true })
    await removeAll(dir)
  }

  /** The layer's root: its diff/ without lowers, else its mount (counted). */
  async get(id: string, _mountLabel?: string): Promise<string> {
    const dir = this.#existing(id)
    const lowers = this.lowers(id)
    if (lowers.length === 0) return join(dir, 'diff')
    const readonly = lstatSync(join(dir, 'committed'), { throwIfNoEntry: false }) !== undefined
    return this.#mounts.get({ id, lowers, readonly })
  }

  async put(id: string): Promise<void> {
    const dir = this.#dir(id)
    if (lstatSync(join(dir, 'lower'), { throwIfNoEntry: false }) === undefined) return
    await this.#mounts.put(id)
  }

  exists(id: string): Promise<boolean> {
    return settle(
      () =>
        lstatSync(join(this.#dir(id), 'diff'), { throwIfNoEntry: false })?.isDirectory() ?? false,
    )
  }

  status(): DriverStatus {
    const f = this.features
    return [
      ['Backing Filesystem', f.backingFs],
      ['Supports d_type', 'true'],
      ['Using metacopy', String(f.metacopy)],
      ['Native Overlay Diff', String(f.nativeDiff)],
      ['userxattr', 'false'],
    ]
  }

  getMetadata(id: string): Promise<Record<string, string>> {
    return settle(() => {
      const dir = this.#existing(id)
      const meta: Record<string, string> = {
        WorkDir: join(dir, 'work'),
        MergedDir: join(dir, 'merged'),
        UpperDir: join(dir, 'diff'),
      }
      const lowers = this.lowerDiffs(id)
      if (lowers.length > 0) meta['LowerDir'] = lowers.join(':')
      return meta
    })
  }

  /**
   * Unmounts every layer (Docker's Cleanup at daemon shutdown) and drops short links whose
   * layer is gone.
   */
  async cleanup(): Promise<void> {
    for (const id of await this.ids()) {
      if (isMountpoint(join(this.home, id, 'merged'))) await this.#mounts.release(id)
    }
    this.#pruneLinks()
  }

  /** Every layer directory's id (`l/` is not a layer). */
  ids(): Promise<string[]> {
    return settle(() => readdirSync(this.home).filter((n) => n !== 'l'))
  }

  diffGetter(id: string): Promise<FileGetCloser> {
    return settle(
      () =>
        new Overlay2FileGetter(
          this.diffDir(id),
          () => this.get(id),
          () => this.put(id),
        ),
    )
  }

  /** Short links whose layer is gone (a crash inside remove()). */
  #pruneLinks(): void {
    for (const name of readdirSync(this.#links)) {
      const link = join(this.#links, name)
      if (lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() !== true) continue
      try {
        lstatSync(resolve(this.#links, readlinkSync(link)))
      } catch (err) {
        if (code(err) === 'ENOENT') unlinkSync(link)
      }
    }
  }
}

/** overlay2 with Docker's diff rules, native where the kernel allows (see the file comment). */
export class Overlay2Driver extends NaiveDiffGetterDriver implements DiffGetterDriver {
  readonly #proto: Overlay2ProtoDriver
  readonly #native: boolean
  readonly #forcedNaive: boolean
  readonly #apply: NaiveApplyOptions

  constructor(proto: Overlay2ProtoDriver, options: Overlay2Options = {}) {
    const apply = { noLchown: process.geteuid?.() !== 0, ...options.apply }
    super(proto, { apply })
    this.#proto = proto
    this.#forcedNaive = options.naive === true
    this.#native = !this.#forcedNaive && proto.features.nativeDiff
    this.#apply = apply
  }

  /** What the kernel allows here (found when the driver opened). */
  get features(): OverlayFeatures {
    return this.#proto.features
  }

  override status(): DriverStatus {
    return this.#native
      ? this.#proto.status()
      : this.#proto.status().map(([k, v]) => [k, k === 'Native Overlay Diff' ? 'false' : v])
  }

  /** Whether the changes of `id` against `parent` can be read from its diff/ alone. */
  #nativeFor(id: string, parent: string | undefined): boolean {
    return this.#native && this.#proto.isParent(id, parent)
  }

  async #nativeChanges(id: string): Promise<Change[]> {
    return overlayChanges(this.#proto.diffDir(id), this.#proto.lowerDiffs(id))
  }

  override async changes(id: string, parent: string | undefined): Promise<Change[]> {
    if (!this.#nativeFor(id, parent)) return super.changes(id, parent)
    return this.#nativeChanges(id)
  }

  override async diffSize(id: string, parent: string | undefined): Promise<number> {
    if (!this.#nativeFor(id, parent)) return super.diffSize(id, parent)
    return changesSize(this.#proto.diffDir(id), await this.#nativeChanges(id))
  }

  /**
   * The same tar as the naive diff: the changes found in diff/ exported from diff/ (every
   * added or modified node is there), deletions as AUFS whiteouts.
   */
  override async diff(id: string, parent: string | undefined): Promise<Readable> {
    if (!this.#nativeFor(id, parent)) return super.diff(id, parent)
    const dir = this.#proto.diffDir(id)
    const list = await this.#nativeChanges(id)
    const tar = exportChanges(dir, list)
    const until = settleTime(dir, list)
    return until > Date.now() ? endNoEarlierThan(tar, until) : tar
  }

  /**
   * Applies the tar straight into diff/ in the overlay whiteout form, names resolved in the
   * merged view of the lowers; the layer's size is that of diff/ (Docker's rule). A parent
   * that is not the direct one goes through a mount (naive).
   */
  override async applyDiff(
    id: string,
    parent: string | undefined,
    tar: AsyncIterable<Uint8Array>,
    options: ApplyDiffOptions = {},
  ): Promise<number> {
    if (this.#forcedNaive || !this.#proto.isParent(id, parent))
      return super.applyDiff(id, parent, tar, options)
    const dir = this.#proto.diffDir(id)
    await apply(tar, dir, {
      ...this.#apply,
      whiteoutFormat: 'overlay',
      lowers: this.#proto.lowerDiffs(id),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    })
    return directorySize(dir)
  }
}

/** An overlay2 driver on store root `root` (its data in `<root>/overlay2`). */
export async function createOverlay2Driver(
  root: string,
  options: Overlay2Options = {},
): Promise<Overlay2Driver> {
  return new Overlay2Driver(await Overlay2ProtoDriver.open(root), options)
}
