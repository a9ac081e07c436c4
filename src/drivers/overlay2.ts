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
import { closeSync, openSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { sys } from '../internal/sys.js'
import {
  changesSize,
  exportChanges,
  overlayChanges,
  type ApplyOptions,
  type Change,
} from '../archive/index.js'
import { layerApplier } from './layer-applier.js'
import { directorySize } from './directory-size.js'
import {
  endNoEarlierThan,
  NaiveDiffGetterDriver,
  settleTime,
  type NaiveApplyOptions,
} from './naive-diff.js'
import { OVERLAY2, type OverlayFeatures } from './overlay2/features.js'
import { Overlay2ProtoDriver } from './overlay2/proto-driver.js'
import type { DiffGetterDriver, DriverStatus, LayerApplier } from './types.js'

export { MAX_LOWERS, Overlay2ProtoDriver } from './overlay2/proto-driver.js'
export const OVERLAY2_DRIVER_NAME = OVERLAY2

export interface Overlay2Options {
  /**
   * Never read changes from upper directories, always compare mounted trees (the naive
   * diff), and apply layers on a mount too. Default: native wherever the kernel allows it.
   */
  readonly naive?: boolean
  /** Options of applying a layer's tar (id mappings...). Default: owners kept as root. */
  readonly apply?: NaiveApplyOptions
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
  override async applier(id: string, parent: string | undefined): Promise<LayerApplier> {
    if (this.#forcedNaive || !this.#proto.isParent(id, parent)) return super.applier(id, parent)
    const dir = this.#proto.diffDir(id)
    const lowers = this.#proto.lowerDiffs(id)
    const options: ApplyOptions = { ...this.#apply, whiteoutFormat: 'overlay', lowers }
    return layerApplier(dir, options, { size: () => measure(dir) })
  }
}

/**
 * The size of a layer's diff/. Its data starts reaching the disk meanwhile (45k lstat calls
 * for a node_modules layer), so the store's syncfs before the record has little left to wait
 * for; a failure of this one shows again there.
 */
async function measure(dir: string): Promise<number> {
  const fd = openSync(dir, 'r')
  try {
    const synced = sys.syncfsAsync(fd).catch(() => undefined)
    try {
      return await directorySize(dir)
    } finally {
      await synced
    }
  } finally {
    closeSync(fd)
  }
}

/** An overlay2 driver on store root `root` (its data in `<root>/overlay2`). */
export async function createOverlay2Driver(
  root: string,
  options: Overlay2Options = {},
): Promise<Overlay2Driver> {
  return new Overlay2Driver(await Overlay2ProtoDriver.open(root), options)
}
