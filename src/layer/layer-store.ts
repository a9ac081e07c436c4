/**
 * The layer store (Docker's `layer/layer_store.go`, SPEC.md §2), on a graph driver and the
 * crash-safe layerdb.
 *
 * References: a layer is held by the handles this process gave out, by each child layer and
 * by each read-write layer on it; counts are derived from those, never stored, so a store
 * reopened after a crash counts exactly what is on disk.
 *
 * Several processes may share a root: every mutation runs under a file lock the kernel
 * releases when a process dies, and first brings this process's view up to date with the
 * disk. Slow work runs outside the lock: extracting a layer's tar, and deleting a layer's
 * files (its record is renamed `-removing` under the lock, its data removed after).
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Readable } from 'node:stream'
import { parseChainId, type ChainId, type DiffId } from '../digest/digest.js'
import { FileLock } from '../internal/lock.js'
import { InflightMarker } from '../internal/inflight.js'
import type { Driver } from '../drivers/types.js'
import { LayerDb } from '../metadata/layer-db.js'
import type { MountRecord, Orphan } from '../metadata/types.js'
import { checksumDriverLayer } from './graph-checksum.js'
import { layerTarSize, layerTarStream } from './layer-tar.js'
import { openDriver } from './open-driver.js'
import { adoptDriverLayer, registerChain, type RegisterHost } from './register.js'
import { TarSizeCache } from './tar-size-cache.js'
import { DiskView } from './disk-view.js'
import { LayerHandle, RoLayer } from './ro-layer.js'
import { createRwDriverLayers, MountedLayer, RwHandle } from './rw-layer.js'
import {
  LayerInUseError,
  LayerDoesNotExistError,
  LayerNotRetainedError,
  MaxDepthExceededError,
  MountDoesNotExistError,
  MountNameConflictError,
} from './errors.js'
import type {
  ChainLayer,
  CreateRwLayerOptions,
  DriverInfo,
  Layer,
  LayerInfo,
  LayerMetadata,
  LayerStoreOptions,
  RegisterOptions,
  TarStreamOptions,
  RwLayer,
} from './types.js'

/** A layer taken out of the store under the lock, whose data is deleted after. */
interface Removal {
  readonly layer: RoLayer
  readonly orphan: Orphan
}

/** Docker's limit on chain depth (layer_store.go maxLayerDepth). */
export const MAX_LAYER_DEPTH = 125

function randomId(): string {
  return randomBytes(32).toString('hex')
}

export class LayerStore {
  readonly root: string
  readonly driver: Driver
  readonly #db: LayerDb
  readonly #lockPath: string
  /** Markers of driver layers being filled, not yet recorded (see internal/inflight.ts). */
  readonly #inflight: string
  readonly #view: DiskView
  readonly #layers: Map<ChainId, RoLayer>
  readonly #mounts: Map<string, MountedLayer>
  readonly #onWarning: LayerStoreOptions['onWarning']
  readonly #tarSizes: TarSizeCache

  private constructor(root: string, driver: Driver, db: LayerDb, options: LayerStoreOptions) {
    this.root = root
    this.driver = driver
    this.#db = db
    this.#lockPath = join(root, 'layerstore', 'lock')
    this.#inflight = join(root, 'layerstore', 'inflight')
    this.#onWarning = options.onWarning
    this.#tarSizes = new TarSizeCache(root)
    this.#view = new DiskView(db, driver, this.#inflight, this.#tarSizes, this.#onWarning)
    this.#layers = this.#view.layers
    this.#mounts = this.#view.mounts
  }

  /** Opens (or creates) the store at `options.root`, loading every layer and read-write layer. */
  static async open(options: LayerStoreOptions): Promise<LayerStore> {
    const root = resolve(options.root)
    mkdirSync(root, { recursive: true, mode: 0o711 })
    const lock = await FileLock.acquire(join(root, 'layerstore', 'lock'))
    try {
      const driver = await openDriver(root, options.driver)
      const db = await LayerDb.open(root, driver.name)
      const store = new LayerStore(root, driver, db, options)
      await store.#view.finishOrphans()
      await store.#view.refresh()
      await store.#view.sweepDriver()
      return store
    } finally {
      lock.release()
    }
  }

  // ---- image layers -------------------------------------------------------------------------

  /**
   * Registers an uncompressed layer tar on `parent`: applies it, records its tar-split
   * metadata and returns a handle. The same content on the same parent gives the same layer
   * (one more hold on it), also when two registrations race.
   */
  async register(
    tar: AsyncIterable<Uint8Array>,
    parent?: ChainId,
    options: RegisterOptions = {},
  ): Promise<Layer> {
    return this.registerChain([{ tar: () => tar, options }], parent)
  }

  /**
   * Registers layer tars each on the one before, the first on `parent`, as register() one by
   * one would, but faster: each layer's data goes to the disk while the next one is applied.
   * Calls `onLayer` as each layer is recorded; returns a handle on the top one (the layers
   * below are held by it). A chain that would pass MAX_LAYER_DEPTH registers nothing.
   */
  async registerChain(
    layers: readonly ChainLayer[],
    parent?: ChainId,
    onLayer?: (index: number, layer: Layer) => void,
  ): Promise<Layer> {
    // Hold the parent for the duration: nobody may delete it under us.
    const parentHandle = parent === undefined ? undefined : await this.get(parent)
    try {
      const p = parentHandle?.layer
      const deepest = (p?.depth ?? 0) + layers.length - 1 // the depth of the last one's parent
      if (deepest >= MAX_LAYER_DEPTH)
        throw new MaxDepthExceededError(`max depth exceeded: ${deepest} layers below`)
      return await registerChain(this.#registerHost, layers, p, onLayer)
    } finally {
      if (parentHandle !== undefined) await this.release(parentHandle)
    }
  }

  /** What registerChain needs of this store. */
  get #registerHost(): RegisterHost {
    return {
      driver: this.driver,
      db: this.#db,
      inflight: this.#inflight,
      locked: (fn) => this.#locked(fn),
      layer: (chainId) => this.#layers.get(chainId),
      hold: (layer) => this.#hold(layer),
      recorded: (layer, tarSize) => {
        if (tarSize !== undefined) this.#tarSizes.set(layer.diffId, tarSize)
        this.#view.insert(layer)
      },
      release: (handle) => this.release(handle),
    }
  }

  /** A new hold on a layer (ErrLayerDoesNotExist when there is none). */
  async get(chainId: ChainId): Promise<LayerHandle> {
    return this.#locked(() => {
      const layer = this.#layers.get(chainId)
      if (layer === undefined) throw new LayerDoesNotExistError(`layer does not exist: ${chainId}`)
      return Promise.resolve(this.#hold(layer))
    })
  }

  /** Every layer, without holding them (Docker's Map()). */
  map(): ReadonlyMap<ChainId, LayerInfo> {
    return new Map(this.#layers)
  }

  /**
   * Releases a hold. Layers nothing holds any more are deleted, child first; their metadata
   * is returned in that order. An unknown layer gives [] (Docker's contract).
   */
  async release(handle: Layer): Promise<LayerMetadata[]> {
    const removed = await this.#locked(async () => {
      const layer = this.#layers.get(handle.chainId)
      if (layer === undefined) return []
      if (!(handle instanceof LayerHandle)) throw new LayerNotRetainedError('layer not retained')
      // The layer it held was deleted by another process (and maybe registered again).
      if (handle.layer !== layer) return []
      if (!layer.handles.has(handle)) throw new LayerNotRetainedError('layer not retained')
      layer.handles.delete(handle)
      return this.#collect(layer)
    })
    return this.#deleteAll(removed)
  }

  // ---- migration (Docker's ChecksumForGraphID / RegisterByGraphID, SPEC.md §2.4) ----------

  /**
   * Records tar-split metadata for a driver layer that has none (a layer of a pre-layerdb
   * graph): its diff against `parentGraphId` is split into `outPath` (gzip'd JSON lines) while
   * hashed. Returns the diff's DiffID and the sum of its entries' sizes.
   */
  checksumForGraphId(
    graphId: string,
    parentGraphId: string | undefined,
    outPath: string,
  ): Promise<{ diffId: DiffId; size: number }> {
    return checksumDriverLayer(this.driver, graphId, parentGraphId, outPath)
  }

  /**
   * Adopts a driver layer as the layer `diffId` on `parent`, with tar-split metadata from
   * `tarDataFile` (as checksumForGraphId wrote it). A layer with that ChainID already
   * present is held instead.
   */
  async registerByGraphId(
    graphId: string,
    parent: ChainId | undefined,
    diffId: DiffId,
    tarDataFile: string,
    size: number,
  ): Promise<Layer> {
    const parentHandle = parent === undefined ? undefined : await this.get(parent)
    try {
      const p = parentHandle?.layer
      return await adoptDriverLayer(this.#registerHost, graphId, p, diffId, tarDataFile, size)
    } finally {
      if (parentHandle !== undefined) await this.release(parentHandle)
    }
  }

  /**
   * Gives up a hold without deleting anything, as a process that exits does: the layer stays
   * on disk, unreferenced, until a release or remove finds nothing holding it. For commands
   * that only look at a layer.
   */
  detach(handle: Layer): void {
    if (handle instanceof LayerHandle) handle.layer.handles.delete(handle)
  }

  /**
   * Deletes a layer that nothing holds (no child, no read-write layer, no handle of this
   * process), then its ancestors that nothing else holds; returns them, child first.
   */
  async remove(chainId: ChainId): Promise<LayerMetadata[]> {
    const removed = await this.#locked(async () => {
      const layer = this.#layers.get(chainId)
      if (layer === undefined) throw new LayerDoesNotExistError(`layer does not exist: ${chainId}`)
      if (layer.references > 0) {
        const by = [
          layer.children > 0 ? `${layer.children} layer(s)` : '',
          layer.mounts > 0 ? `${layer.mounts} read-write layer(s)` : '',
          layer.handles.size > 0 ? `${layer.handles.size} handle(s)` : '',
        ].filter((s) => s !== '')
        throw new LayerInUseError(`layer ${chainId} is held by ${by.join(', ')}`)
      }
      return this.#collect(layer)
    })
    return this.#deleteAll(removed)
  }

  // ---- read-write layers --------------------------------------------------------------------

  async createRwLayer(
    name: string,
    parent?: ChainId,
    options: CreateRwLayerOptions = {},
  ): Promise<RwLayer> {
    if (this.#mounts.has(name))
      throw new MountNameConflictError(`mount already exists with name: ${name}`)
    const parentHandle = parent === undefined ? undefined : await this.get(parent)
    const p = parentHandle?.layer
    const mountId = randomId()
    const marker = InflightMarker.hold(this.#inflight, mountId)
    const made: string[] = []
    try {
      const initId = await createRwDriverLayers(this.driver, mountId, p?.cacheId, options, made)
      const record: MountRecord = {
        name,
        mountId,
        ...(initId ? { initId } : {}),
        ...(p ? { parent: p.chainId } : {}),
      }
      return await this.#locked(async () => {
        if (this.#mounts.has(name))
          throw new MountNameConflictError(`mount already exists with name: ${name}`)
        await this.#db.writeMount(record)
        const m = new MountedLayer(record, p)
        this.#mounts.set(name, m)
        if (p !== undefined) p.mounts++
        const h = new RwHandle(m, this.driver)
        m.handles.add(h)
        made.length = 0
        return h
      })
    } finally {
      for (const id of made.reverse()) await this.driver.remove(id).catch(() => undefined)
      marker.release()
      if (parentHandle !== undefined) await this.release(parentHandle)
    }
  }

  async getRwLayer(name: string): Promise<RwLayer> {
    return this.#locked(() => {
      const m = this.#mounts.get(name)
      if (m === undefined) throw new MountDoesNotExistError(`mount does not exist: ${name}`)
      const h = new RwHandle(m, this.driver)
      m.handles.add(h)
      return Promise.resolve(h)
    })
  }

  getMountId(name: string): string {
    const m = this.#mounts.get(name)
    if (m === undefined) throw new MountDoesNotExistError(`mount does not exist: ${name}`)
    return m.mountId
  }

  /** Every read-write layer. */
  rwLayers(): { name: string; mountId: string; parent: ChainId | undefined }[] {
    return [...this.#mounts.values()].map((m) => ({
      name: m.name,
      mountId: m.mountId,
      parent: m.parent?.chainId,
    }))
  }

  /** Gives up a read-write layer handle without deleting the layer (see {@link detach}). */
  detachRwLayer(handle: RwLayer): void {
    if (handle instanceof RwHandle) handle.mounted.handles.delete(handle)
  }

  /**
   * Releases a read-write layer handle; the last one deletes the layer (and the init layer),
   * then releases its hold on the image layer, returning what that deleted.
   */
  async releaseRwLayer(handle: RwLayer): Promise<LayerMetadata[]> {
    const removed = await this.#locked(async () => {
      const m = this.#mounts.get(handle.name)
      if (m === undefined) return []
      if (!(handle instanceof RwHandle) || !m.handles.has(handle))
        throw new LayerNotRetainedError('layer not retained')
      m.handles.delete(handle)
      if (m.handles.size > 0) return []
      await this.driver.remove(m.mountId)
      if (m.initId !== undefined) await this.driver.remove(m.initId)
      await this.#db.removeMount(m.name)
      this.#mounts.delete(m.name)
      if (m.parent === undefined) return []
      m.parent.mounts--
      return this.#collect(m.parent)
    })
    return this.#deleteAll(removed)
  }

  // ---- the store ----------------------------------------------------------------------------

  driverStatus(): DriverInfo {
    return { name: this.driver.name, status: this.driver.status() }
  }

  get driverName(): string {
    return this.driver.name
  }

  /** Finishes interrupted deletions and releases the driver's mounts. */
  async cleanup(): Promise<void> {
    await this.#locked(async () => {
      await this.#view.finishOrphans()
      await this.#view.sweepDriver()
    })
    await this.driver.cleanup()
  }

  /** The exact registered bytes of a layer, verified against its DiffID. */
  layerTarStream(layer: RoLayer, options: TarStreamOptions = {}): Readable {
    return layerTarStream(this.driver, this.#db, layer, options)
  }

  /** Length of the registered tar: cached, else summed from its tar-split metadata. */
  layerTarSize(layer: RoLayer): Promise<number> {
    return layerTarSize(this.#db, this.#tarSizes, layer)
  }

  // ---- internals ----------------------------------------------------------------------------

  #hold(layer: RoLayer): LayerHandle {
    const h = new LayerHandle(layer, this)
    layer.handles.add(h)
    return h
  }

  /**
   * Under the lock: takes every layer that nothing holds any more out of the map, from
   * `layer` up its chain, and renames its record `-removing` (and drops the tar sizes no
   * layer needs any more). Returns them, child first.
   */
  async #collect(start: RoLayer): Promise<Removal[]> {
    const out: Removal[] = []
    for (let l: RoLayer | undefined = start; l !== undefined && l.references === 0; l = l.parent) {
      const orphan = await this.#db.beginRemove(l.chainId)
      this.#layers.delete(l.chainId)
      if (l.parent !== undefined) l.parent.children--
      out.push({ layer: l, orphan })
    }
    if (out.length > 0) {
      const kept = new Set([...this.#layers.values()].map((l) => l.diffId))
      for (const { layer } of out) if (!kept.has(layer.diffId)) this.#tarSizes.forget(layer.diffId)
    }
    return out
  }

  /** Outside the lock: deletes the data of layers #collect took out. */
  async #deleteAll(removed: readonly Removal[]): Promise<LayerMetadata[]> {
    const out: LayerMetadata[] = []
    for (const { layer, orphan } of removed) {
      await this.driver.remove(layer.cacheId)
      await this.#db.finishRemove(orphan)
      out.push(layer.metadata())
    }
    return out
  }

  /** Runs `fn` under the store's file lock, with this process's view brought up to date. */
  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await FileLock.acquire(this.#lockPath)
    try {
      await this.#view.refresh()
      return await fn()
    } finally {
      lock.release()
    }
  }
}

export { parseChainId }
