/**
 * What one process knows of the layers and read-write layers on disk, and how it catches up
 * with what other processes (or an earlier run) did there: records loaded, deleted ones
 * forgotten, damaged ones quarantined, and, when the store opens or is cleaned up, the data
 * nothing references removed. Every method runs under the store's lock (layer-store.ts).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { hasCode } from '../errors.js'
import type { ChainId, DiffId } from '../digest/digest.js'
import { isInflight, sweepInflight } from '../internal/inflight.js'
import type { Driver } from '../drivers/types.js'
import type { LayerDb } from '../metadata/layer-db.js'
import type { LayerRecord, MountRecord } from '../metadata/types.js'
import type { TarSizeCache } from './tar-size-cache.js'
import { RoLayer } from './ro-layer.js'
import { MountedLayer } from './rw-layer.js'
import { LayerCycleError } from './errors.js'
import type { LayerStoreOptions } from './types.js'

export class DiskView {
  readonly layers = new Map<ChainId, RoLayer>()
  readonly mounts = new Map<string, MountedLayer>()
  readonly #db: LayerDb
  readonly #driver: Driver
  /** Markers of driver layers being filled, not yet recorded (see internal/inflight.ts). */
  readonly #inflight: string
  readonly #tarSizes: TarSizeCache
  readonly #onWarning: LayerStoreOptions['onWarning']

  constructor(
    db: LayerDb,
    driver: Driver,
    inflight: string,
    tarSizes: TarSizeCache,
    onWarning: LayerStoreOptions['onWarning'],
  ) {
    this.#db = db
    this.#driver = driver
    this.#inflight = inflight
    this.#tarSizes = tarSizes
    this.#onWarning = onWarning
  }

  /** Adds a layer loaded or registered by this process; its parent counts one more child. */
  insert(layer: RoLayer): void {
    this.layers.set(layer.chainId, layer)
    if (layer.parent !== undefined) layer.parent.children++
  }

  /**
   * Loads the records other processes (or an earlier run) wrote and drops the ones they
   * deleted. Damaged records are quarantined and reported, never silently skipped.
   */
  async refresh(): Promise<void> {
    const { layers, mounts } = await this.#db.list()
    const onDisk = new Set(layers)
    // Layers another process deleted (or deleted and registered again): forget them, and
    // whatever this process had loaded on top of them; they load again below if still there.
    const stale = new Set<RoLayer>()
    for (const l of [...this.layers.values()].sort((a, b) => a.depth - b.depth)) {
      // A record deleted and registered again has the same ChainID but another cache id.
      const gone = !onDisk.has(l.chainId) || this.#cacheIdOnDisk(l.chainId) !== l.cacheId
      if (gone || (l.parent !== undefined && stale.has(l.parent))) stale.add(l)
    }
    for (const l of [...stale].sort((a, b) => b.depth - a.depth)) {
      this.layers.delete(l.chainId)
      if (l.parent !== undefined) l.parent.children--
    }
    for (const [name, m] of this.mounts) {
      if (m.parent === undefined || !stale.has(m.parent)) continue
      this.mounts.delete(name) // loads again below, on the new parent
    }
    const failed = new Set<ChainId>()
    const load = async (id: ChainId, seen: Set<ChainId>): Promise<RoLayer | undefined> => {
      const known = this.layers.get(id)
      if (known !== undefined) return known
      if (failed.has(id) || !onDisk.has(id)) return undefined
      if (seen.has(id)) throw new LayerCycleError(`layer ${id} is its own ancestor`)
      seen.add(id)
      let record: LayerRecord
      try {
        record = await this.#db.readLayer(id)
      } catch (err) {
        failed.add(id)
        if (!hasCode(err, 'METADATA_CORRUPT')) throw err // a passing failure: keep the record
        const q = await this.#db.quarantine('layer', id.slice('sha256:'.length), String(err))
        this.#onWarning?.(
          'LAYER_QUARANTINED',
          `layer ${id} could not be read (${String(err)}); moved to ${q.movedTo}`,
        )
        return undefined
      }
      let parent: RoLayer | undefined
      if (record.parent !== undefined) {
        try {
          parent = await load(record.parent, seen)
        } catch (err) {
          failed.add(id)
          this.#onWarning?.('LAYER_PARENT_MISSING', `layer ${id}: ${String(err)}`)
          return undefined
        }
        if (parent === undefined) {
          failed.add(id)
          this.#onWarning?.(
            'LAYER_PARENT_MISSING',
            `layer ${id} is not available: its parent ${record.parent} could not be loaded`,
          )
          return undefined
        }
      }
      const layer = new RoLayer(record, parent)
      this.insert(layer)
      return layer
    }
    for (const id of layers) await load(id, new Set())
    // Read-write layers.
    const names = new Set(mounts)
    for (const [name, m] of this.mounts) {
      if (names.has(name)) continue
      this.mounts.delete(name)
      if (m.parent !== undefined) m.parent.mounts--
    }
    for (const name of mounts) {
      if (this.mounts.has(name)) continue
      let record: MountRecord
      try {
        record = await this.#db.readMount(name)
      } catch (err) {
        if (!hasCode(err, 'METADATA_CORRUPT')) throw err
        const q = await this.#db.quarantine('mount', name, String(err))
        this.#onWarning?.(
          'MOUNT_QUARANTINED',
          `read-write layer ${name} could not be read (${String(err)}); moved to ${q.movedTo}`,
        )
        continue
      }
      const parent = record.parent === undefined ? undefined : this.layers.get(record.parent)
      if (record.parent !== undefined && parent === undefined) {
        this.#onWarning?.(
          'LAYER_PARENT_MISSING',
          `read-write layer ${name} is not available: its layer ${record.parent} is missing`,
        )
        continue
      }
      const m = new MountedLayer(record, parent)
      this.mounts.set(name, m)
      if (parent !== undefined) parent.mounts++
    }
  }

  /**
   * Under the lock: removes driver layers that no record references and no live process is
   * filling (a crash between creating a layer's directory and committing its record), and
   * the tar sizes of DiffIDs no layer has any more.
   */
  async sweepDriver(): Promise<void> {
    const referenced = new Set<string>()
    const diffIds = new Set<DiffId>()
    for (const l of this.layers.values()) {
      referenced.add(l.cacheId)
      diffIds.add(l.diffId)
    }
    for (const m of this.mounts.values()) {
      referenced.add(m.mountId)
      if (m.initId !== undefined) referenced.add(m.initId)
    }
    // Records this process could not load (waiting for a parent) keep their data too.
    const { layers, mounts } = await this.#db.list()
    for (const id of layers) {
      if (this.layers.has(id)) continue
      const r = await this.#db.readLayer(id).catch(() => undefined)
      if (r === undefined) continue
      referenced.add(r.cacheId)
      diffIds.add(r.diffId)
    }
    for (const name of mounts) {
      if (this.mounts.has(name)) continue
      const r = await this.#db.readMount(name).catch(() => undefined)
      if (r !== undefined) referenced.add(r.mountId).add(r.initId ?? r.mountId)
    }
    for (const id of (await this.#driver.ids?.()) ?? []) {
      if (referenced.has(id)) continue
      const base = id.endsWith('-init') ? id.slice(0, -'-init'.length) : id
      if (isInflight(this.#inflight, base)) continue
      await this.#driver.remove(id)
    }
    sweepInflight(this.#inflight)
    this.#tarSizes.prune(diffIds)
  }

  async finishOrphans(): Promise<void> {
    for (const orphan of await this.#db.orphans()) {
      await this.#driver.remove(orphan.cacheId)
      await this.#db.finishRemove(orphan)
      this.#onWarning?.('LAYER_ORPHAN_REMOVED', `finished deleting ${orphan.chainId}`)
    }
  }

  #cacheIdOnDisk(chainId: ChainId): string | undefined {
    try {
      return readFileSync(join(this.#db.layerPath(chainId), 'cache-id'), 'utf8').trim()
    } catch {
      return undefined
    }
  }
}
