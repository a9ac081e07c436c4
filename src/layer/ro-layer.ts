/**
 * Image layers as the store keeps them: one {@link RoLayer} per layer (Docker's roLayer), with
 * the holds on it, and the {@link LayerHandle}s that register/get give out.
 */
import type { Readable } from 'node:stream'
import type { ChainId, DiffId } from '../digest/digest.js'
import type { Driver } from '../drivers/types.js'
import type { LayerRecord } from '../metadata/types.js'
import type { Layer, LayerInfo, LayerMetadata, TarStreamOptions } from './types.js'

/** What a handle needs of its store. */
export interface LayerSource {
  readonly driver: Driver
  layerTarStream(layer: RoLayer, options?: TarStreamOptions): Readable
  layerTarSize(layer: RoLayer): Promise<number>
}

/** An image layer as the store keeps it (Docker's roLayer). */
export class RoLayer implements LayerInfo {
  readonly chainId: ChainId
  readonly diffId: DiffId
  readonly parent: RoLayer | undefined
  readonly cacheId: string
  readonly diffSize: number
  readonly depth: number
  /** Handles this process gave out and has not had released. */
  readonly handles = new Set<LayerHandle>()
  /** Child layers and read-write layers on this one. */
  children = 0
  mounts = 0

  constructor(record: LayerRecord, parent: RoLayer | undefined) {
    this.chainId = record.chainId
    this.diffId = record.diffId
    this.parent = parent
    this.cacheId = record.cacheId
    this.diffSize = record.size
    this.depth = parent === undefined ? 1 : parent.depth + 1
  }

  get size(): number {
    return this.diffSize + (this.parent?.size ?? 0) // at most 125 deep
  }

  get references(): number {
    return this.handles.size + this.children + this.mounts
  }

  metadata(): LayerMetadata {
    return { chainId: this.chainId, diffId: this.diffId, size: this.size, diffSize: this.diffSize }
  }
}

/** A handle on a layer: what register/get return and release takes back. */
export class LayerHandle implements Layer {
  readonly #layer: RoLayer
  readonly #store: LayerSource
  constructor(layer: RoLayer, store: LayerSource) {
    this.#layer = layer
    this.#store = store
  }
  get layer(): RoLayer {
    return this.#layer
  }
  get chainId(): ChainId {
    return this.#layer.chainId
  }
  get diffId(): DiffId {
    return this.#layer.diffId
  }
  get parent(): LayerInfo | undefined {
    return this.#layer.parent
  }
  get diffSize(): number {
    return this.#layer.diffSize
  }
  get size(): number {
    return this.#layer.size
  }
  get cacheId(): string {
    return this.#layer.cacheId
  }
  tarStream(options?: TarStreamOptions): Readable {
    return this.#store.layerTarStream(this.#layer, options)
  }
  tarSize(): Promise<number> {
    return this.#store.layerTarSize(this.#layer)
  }
  metadata(): Promise<Record<string, string>> {
    return this.#store.driver.getMetadata(this.#layer.cacheId)
  }
}
