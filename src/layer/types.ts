/**
 * The layer-store contract: Docker's `layer.Store` (SPEC.md §2), in TypeScript.
 *
 * Image layers are content-addressed (ChainID) and reference-counted: a layer is held by each
 * handle given out (register, get), by each child layer and by each read-write layer on it.
 * Releasing the last hold deletes it, then its parent if nothing else holds that, and so on up
 * the chain. Read-write layers (a container's root filesystem) are named and held by handles
 * too.
 *
 * ```ts
 * const store = await LayerStore.open({ root }) // overlay2 where it mounts, else vfs
 * const base = await store.register(createReadStream('base.tar'))
 * const rw = await store.createRwLayer('c1', base.chainId)
 * const dir = await rw.mount()            // write the container's changes here
 * await rw.unmount()
 * const top = await store.register(await rw.tarStream(), base.chainId) // commit
 * await store.releaseRwLayer(rw)
 * await store.release(base)               // [] : top still holds it
 * await store.release(top)                // [top, base]: both deleted
 * ```
 */
import type { Readable } from 'node:stream'
import type { ChainId, DiffId } from '../digest/digest.js'
import type { Change } from '../archive/types.js'
import type { DriverStatus } from '../drivers/types.js'

/** What a release reports for each layer it deleted (Docker's layer.Metadata). */
export interface LayerMetadata {
  readonly chainId: ChainId
  readonly diffId: DiffId
  /** Size of the whole chain at deletion time. */
  readonly size: number
  /** The layer's own size. */
  readonly diffSize: number
}

/** A layer's identity and sizes, without a hold on it (Docker's roLayer seen through Map()). */
export interface LayerInfo {
  readonly chainId: ChainId
  readonly diffId: DiffId
  /** The parent layer, or undefined for a base layer. */
  readonly parent: LayerInfo | undefined
  /** The layer's own size (the `size` file: what applying it reported). */
  readonly diffSize: number
  /** Sum of diffSize over the layer and its ancestors. */
  readonly size: number
  /** The driver's id of the layer's files. */
  readonly cacheId: string
}

/** A held image layer (Docker's layer.Layer). Release it with LayerStore.release. */
export interface Layer extends LayerInfo {
  /**
   * The exact bytes that were registered, reassembled from tar-split metadata and the
   * layer's files. Fails with DIGEST_MISMATCH (at the end, before the last bytes) when they
   * no longer hash to the DiffID.
   */
  tarStream(options?: TarStreamOptions): Readable
  /** Length in bytes of what tarStream() gives, known before reading it (from tar-split). */
  tarSize(): Promise<number>
  /** Driver paths of the layer (vfs: SourceDir). */
  metadata(): Promise<Record<string, string>>
}

export interface TarStreamOptions {
  /**
   * Check each file against its tar-split CRC-64 as it is read (default true). Off, a damaged
   * file is found only by the DiffID check at the end: for a consumer that discards the whole
   * output on failure (a save to a temporary file), and saves a pass over the data.
   */
  readonly checkFiles?: boolean
}

/** A held read-write layer (Docker's layer.RWLayer). Release it with releaseRwLayer. */
export interface RwLayer {
  readonly name: string
  /** The image layer under it (never the init layer). */
  readonly parent: LayerInfo | undefined
  readonly mountId: string
  /** Mounts the layer if needed and returns its root path; balance with unmount(). */
  mount(mountLabel?: string): Promise<string>
  unmount(): Promise<void>
  /** Changes against the image layer (the init layer's excluded), sorted by path. */
  changes(): Promise<Change[]>
  /** The changes as a layer diff (not byte-reproducible: a fresh export). */
  tarStream(): Promise<Readable>
  /** Size of the changes. */
  size(): Promise<number>
  /** Applies a layer diff on top of the read-write layer's contents. */
  applyDiff(tar: AsyncIterable<Uint8Array>): Promise<number>
  metadata(): Promise<Record<string, string>>
}

/** What a new read-write layer is made with (Docker's CreateRWLayerOpts). */
export interface CreateRwLayerOptions {
  readonly mountLabel?: string
  /**
   * Writes the init layer (Docker: /etc/hosts, /dev/console...): called once with its mounted
   * root. Its content is visible in the container but not part of its changes.
   */
  readonly initFunc?: (root: string) => Promise<void> | void
  readonly storageOpt?: Readonly<Record<string, string>>
}

export interface RegisterOptions {
  /** Distribution descriptor kept in `descriptor.json` (Docker's RegisterWithDescriptor). */
  readonly descriptor?: Readonly<Record<string, unknown>>
  /**
   * The DiffID the tar must hash to (an image configuration's `rootfs.diff_ids` entry):
   * otherwise the registration fails with DIGEST_MISMATCH and nothing is recorded.
   */
  readonly expectDiffId?: DiffId
  readonly signal?: AbortSignal
}

/** One layer of a chain to register (LayerStore.registerChain). */
export interface ChainLayer {
  /**
   * The layer's tar, uncompressed. Asked for once; once more only if another process recorded
   * the same layer below at the same time (this one is then made again on that one).
   */
  readonly tar: () => AsyncIterable<Uint8Array> | Promise<AsyncIterable<Uint8Array>>
  readonly options?: RegisterOptions
}

export interface LayerStoreOptions {
  /** The store root (a Docker data root). */
  readonly root: string
  /** `overlay2` or `vfs`; default: the one the root uses, else overlay2 where supported, else vfs. */
  readonly driver?: string
  /** Problems found while opening (damaged records quarantined, orphans removed...). */
  readonly onWarning?: (code: LayerWarningCode, message: string) => void
}

export type LayerWarningCode =
  | 'LAYER_QUARANTINED' // a layer record could not be read; it was moved aside
  | 'MOUNT_QUARANTINED' // a read-write layer record could not be read; moved aside
  | 'LAYER_PARENT_MISSING' // a layer whose parent could not be loaded is not available
  | 'LAYER_ORPHAN_REMOVED' // an interrupted deletion was finished

export interface DriverInfo {
  readonly name: string
  readonly status: DriverStatus
}
