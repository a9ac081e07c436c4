/**
 * Read-write layers as the store keeps them: one {@link MountedLayer} per layer (Docker's
 * mountedLayer), the {@link RwHandle}s that createRwLayer/getRwLayer give out, and the driver
 * layers a new one is made of ({@link createRwDriverLayers}).
 */
import type { Readable } from 'node:stream'
import type { Driver } from '../drivers/types.js'
import type { MountRecord } from '../metadata/types.js'
import type { RoLayer } from './ro-layer.js'
import type { CreateRwLayerOptions, LayerInfo, RwLayer } from './types.js'

/** A read-write layer as the store keeps it (Docker's mountedLayer). */
export class MountedLayer {
  readonly name: string
  readonly mountId: string
  readonly initId: string | undefined
  readonly parent: RoLayer | undefined
  readonly handles = new Set<RwHandle>()
  constructor(record: MountRecord, parent: RoLayer | undefined) {
    this.name = record.name
    this.mountId = record.mountId
    this.initId = record.initId
    this.parent = parent
  }
  /** The driver parent of the container layer's diff: the init layer, else the image layer. */
  get diffParent(): string | undefined {
    return this.initId ?? this.parent?.cacheId
  }
}

export class RwHandle implements RwLayer {
  readonly #m: MountedLayer
  readonly #driver: Driver
  constructor(m: MountedLayer, driver: Driver) {
    this.#m = m
    this.#driver = driver
  }
  get mounted(): MountedLayer {
    return this.#m
  }
  get name(): string {
    return this.#m.name
  }
  get parent(): LayerInfo | undefined {
    return this.#m.parent
  }
  get mountId(): string {
    return this.#m.mountId
  }
  mount(mountLabel?: string): Promise<string> {
    return this.#driver.get(this.#m.mountId, mountLabel)
  }
  unmount(): Promise<void> {
    return this.#driver.put(this.#m.mountId)
  }
  changes(): ReturnType<RwLayer['changes']> {
    return this.#driver.changes(this.#m.mountId, this.#m.diffParent)
  }
  tarStream(): Promise<Readable> {
    return this.#driver.diff(this.#m.mountId, this.#m.diffParent)
  }
  size(): Promise<number> {
    return this.#driver.diffSize(this.#m.mountId, this.#m.diffParent)
  }
  applyDiff(tar: AsyncIterable<Uint8Array>): Promise<number> {
    return this.#driver.applyDiff(this.#m.mountId, this.#m.diffParent, tar)
  }
  async metadata(): Promise<Record<string, string>> {
    const m = await this.#driver.getMetadata(this.#m.mountId)
    return m['ID'] ? m : { ...m, ID: this.#m.name }
  }
}

/**
 * The driver layers of a new read-write layer `mountId` on `parentCacheId`: first its init
 * layer (`<mountId>-init`, filled by `options.initFunc`) when asked for, then the layer itself.
 * Each id is pushed to `made` once created, so that the caller removes them all on failure.
 * Returns the init layer's id.
 */
export async function createRwDriverLayers(
  driver: Driver,
  mountId: string,
  parentCacheId: string | undefined,
  options: CreateRwLayerOptions,
  made: string[],
): Promise<string | undefined> {
  let initId: string | undefined
  if (options.initFunc !== undefined) {
    initId = `${mountId}-init`
    await driver.createReadWrite(initId, parentCacheId, options)
    made.push(initId)
    const dir = await driver.get(initId, '')
    try {
      await options.initFunc(dir)
    } finally {
      await driver.put(initId)
    }
  }
  await driver.createReadWrite(
    mountId,
    initId ?? parentCacheId,
    options.storageOpt ? { storageOpt: options.storageOpt } : {},
  )
  made.push(mountId)
  return initId
}
