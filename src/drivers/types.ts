/**
 * The graph-driver contract (SPEC.md §5.1): where a layer's files live and how a read-write
 * layer is mounted. The layer store knows layers only by driver id ("cache id" for image
 * layers, "mount id" for read-write layers) and never touches driver directories itself.
 *
 * Lifecycle of an image layer: `create(id, parent)` → `applyDiff(id, parent, tar)`, or
 * `applier(id, parent)` fed entry by entry then finished (layer-applier.ts) → (read:
 * `get`/`put`, `diffGetter`) → `remove(id)`. Of a read-write layer: `createReadWrite(id,
 * parent)` → `get` (mount; counted) … `put` (unmount) → `diff`/`changes` → `remove`.
 *
 * Every driver includes the diff methods: drivers without a native diff get them from the
 * naive-diff wrapper (SPEC.md §5.2), which compares the mounted layer with its mounted parent.
 */
import type { Readable } from 'node:stream'
import type { Change, EntryTarget } from '../archive/types.js'
import type { FileGetter } from '../tarsplit/entry.js'

/** Options of create/createReadWrite (Docker's CreateOpts). */
export interface CreateOptions {
  /** SELinux label of the mount; kept for compatibility, unused by vfs and overlay2. */
  readonly mountLabel?: string
  /** Driver storage options (`size`...); image layers refuse any. */
  readonly storageOpt?: Readonly<Record<string, string>>
}

export interface ApplyDiffOptions {
  readonly signal?: AbortSignal
}

/** Facts about the driver for `driverStatus()`: ordered [name, value] pairs. */
export type DriverStatus = readonly (readonly [string, string])[]

/**
 * The part of a driver that manages directories: Docker's ProtoDriver. A driver id is one
 * path component: not empty, not `.` or `..`, no `/` or NUL, at most 255 bytes; any other id
 * is refused with DRIVER_INVALID_ID.
 */
export interface ProtoDriver {
  /** Docker's driver name (`vfs`, `overlay2`): also a path component of the layerdb. */
  readonly name: string
  /** The driver's directory (`<root>/<name>`). */
  readonly home: string

  /**
   * A new, empty image layer on `parent` (a driver id). An id that exists already is
   * DRIVER_LAYER_EXISTS, a parent that does not DRIVER_LAYER_NOT_FOUND; storage options are
   * refused (DRIVER_INVALID_OPTION).
   */
  create(id: string, parent: string | undefined, options?: CreateOptions): Promise<void>
  /** A new, empty writable layer on `parent` (containers, init layers). */
  createReadWrite(id: string, parent: string | undefined, options?: CreateOptions): Promise<void>
  /** Deletes a layer's data; an id that does not exist is not an error. */
  remove(id: string): Promise<void>
  /**
   * Mounts the layer if needed and returns its root path; counted, balanced by put().
   * DRIVER_LAYER_NOT_FOUND when the layer does not exist.
   */
  get(id: string, mountLabel?: string): Promise<string>
  /** Releases one get(); the last one unmounts. */
  put(id: string): Promise<void>
  exists(id: string): Promise<boolean>
  status(): DriverStatus
  /** Paths of the layer for users (vfs: `SourceDir`; overlay2: `UpperDir`, `MergedDir`...). */
  getMetadata(id: string): Promise<Record<string, string>>
  /** Releases what the driver holds (mounts) when the store closes. */
  cleanup(): Promise<void>
  /**
   * Ids of every layer the driver holds data for, so that the store can find directories no
   * metadata references (a crash between creating a layer and recording it). Optional: a
   * driver without it is never swept.
   */
  ids?(): Promise<string[]>
}

/**
 * The diff half of a driver: Docker's DiffDriver. `parent` is the layer the changes are
 * relative to, usually the layer's parent; undefined means "against nothing".
 */
export interface DiffDriver {
  /**
   * The layer's changes against `parent` as a tar diff (the whole tree without a parent).
   * The layer stays in use (mounted) until the stream ends or is destroyed: always read it
   * to the end or destroy it.
   */
  diff(id: string, parent: string | undefined): Promise<Readable>
  /** The layer's changes against `parent`, sorted by path (all `A` without a parent). */
  changes(id: string, parent: string | undefined): Promise<Change[]>
  /** Applies an uncompressed layer tar to the (new, empty) layer; returns the layer size. */
  applyDiff(
    id: string,
    parent: string | undefined,
    tar: AsyncIterable<Uint8Array>,
    options?: ApplyDiffOptions,
  ): Promise<number>
  /**
   * applyDiff entry by entry, for a caller that reads the tar itself (the layer store
   * splits, hashes and applies a tar in one pass). Always finish() or abort() it.
   */
  applier(id: string, parent: string | undefined): Promise<LayerApplier>
  /** Size of the layer's changes against `parent` (SPEC.md §6.8 ChangesSize). */
  diffSize(id: string, parent: string | undefined): Promise<number>
}

/** A layer being filled by {@link DiffDriver.applier}. */
export interface LayerApplier extends EntryTarget {
  /**
   * Completes the layer's files after its last entry (directory times, files in flight); the
   * apply holds nothing after. A layer on this one may be made from then on.
   */
  finish(): Promise<void>
  /**
   * The layer's size, as applyDiff returns it; after finish(). It may take the time to bring
   * the layer's data to the disk (overlay2 measures the directory meanwhile).
   */
  size(): Promise<number>
  /**
   * Gives up: waits for the work in flight and releases what the apply holds. The layer's
   * files stay for remove(). Idempotent, and a no-op after finish().
   */
  abort(): Promise<void>
}

/** A whole driver. Drivers without a native diff get DiffDriver from naive-diff.ts. */
export interface Driver extends ProtoDriver, DiffDriver {}

/** A tar-split FileGetter over a layer's files, released with close(). */
export interface FileGetCloser extends FileGetter {
  close(): Promise<void>
}

/** Optional capability: read an image layer's files for exact reassembly (tar-split). */
export interface DiffGetterDriver extends Driver {
  diffGetter(id: string): Promise<FileGetCloser>
}

export function isDiffGetterDriver(d: Driver): d is DiffGetterDriver {
  return typeof (d as Partial<DiffGetterDriver>).diffGetter === 'function'
}
