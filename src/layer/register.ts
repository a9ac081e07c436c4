/**
 * Registering layer tars (Docker's Register), one or a chain of them each on the one before,
 * and adopting a driver layer that is already on disk (Docker's RegisterByGraphID).
 *
 * A layer is made in two steps: filled (its tar applied, split and hashed into a new driver
 * layer and an open metadata transaction; its files complete) and sealed (its files brought
 * to the disk, then its record committed under the store's lock). In a chain, a layer is
 * sealed while the next one is filled on its driver layer: the wait for the disk, the longest
 * part of a layer's end (overlay2: 5-65 ms a layer of the benchmark's 6-layer chain), runs
 * beside useful work. The crash model holds: a record is committed only after its files are
 * on disk and after its parent's record, so a crash leaves driver layers without records at
 * most, which the store's sweep removes (their in-flight markers die with the process).
 */
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { chainId as chainIdOf } from '../digest/chain-id.js'
import type { ChainId, DiffId } from '../digest/digest.js'
import type { Driver } from '../drivers/types.js'
import { InflightMarker } from '../internal/inflight.js'
import type { LayerDb } from '../metadata/layer-db.js'
import type { LayerTransaction } from '../metadata/transaction.js'
import { LayerDoesNotExistError } from './errors.js'
import { fillLayer, type FilledLayer } from './fill-layer.js'
import { RoLayer, type LayerHandle } from './ro-layer.js'
import type { ChainLayer, RegisterOptions } from './types.js'

/** What registering needs of the layer store. */
export interface RegisterHost {
  readonly driver: Driver
  readonly db: LayerDb
  /** Directory of the markers of driver layers being filled (internal/inflight.ts). */
  readonly inflight: string
  /** Runs `fn` under the store's lock, the store's view of the disk brought up to date. */
  locked<T>(fn: () => Promise<T>): Promise<T>
  /** The layer recorded as `chainId`, if any. */
  layer(chainId: ChainId): RoLayer | undefined
  /** A new hold on `layer`. */
  hold(layer: RoLayer): LayerHandle
  /** Takes in a layer just recorded, whose tar is `tarSize` bytes long (when known). */
  recorded(layer: RoLayer, tarSize?: number): void
  release(handle: LayerHandle): Promise<unknown>
}

/** A filled driver layer, not recorded. */
interface Pending {
  readonly cacheId: string
  readonly filled: FilledLayer
  readonly txn: LayerTransaction
  /** Its record is committed: nothing of it may be removed any more. */
  recorded(): void
  /** Removes it (nothing after recorded()). */
  discard(): Promise<void>
}

interface Sealing {
  readonly pending: Pending
  readonly done: Promise<LayerHandle>
}

/**
 * Registers `layers`, the first on `base` (held by the caller), each next one on the one
 * before, as many register() calls would (a layer already recorded is held, not made twice).
 * Calls `onLayer` as each is recorded; returns a hold on the top one.
 */
export async function registerChain(
  host: RegisterHost,
  layers: readonly ChainLayer[],
  base: RoLayer | undefined,
  onLayer?: (index: number, layer: LayerHandle) => void,
): Promise<LayerHandle> {
  if (layers.length === 0) throw new TypeError('registerChain: no layers')
  let below: LayerHandle | undefined // our hold on the layer the next record goes on
  let belowLayer = base
  let sealing: Sealing | undefined
  let pending: Pending | undefined
  try {
    for (const [i, { tar, options = {} }] of layers.entries()) {
      pending = await fill(
        host,
        await tar(),
        sealing?.pending.cacheId ?? belowLayer?.cacheId,
        options,
      )
      if (sealing !== undefined) {
        const held = await sealing.done
        const ours = sealing.pending
        sealing = undefined
        const previous = below // the new layer holds it now
        below = held
        belowLayer = held.layer
        if (previous !== undefined) await host.release(previous)
        if (held.layer.cacheId !== ours.cacheId) {
          // Another process recorded the layer below first: ours goes, and this one is made
          // again on theirs.
          await pending.discard()
          pending = undefined
          await ours.discard()
          pending = await fill(host, await tar(), held.layer.cacheId, options)
        }
      }
      const p: Pending = pending
      const done = seal(host, p, belowLayer, options).then((h) => {
        onLayer?.(i, h)
        return h
      })
      done.catch(() => undefined) // awaited with the next layer, or in the end
      sealing = { pending: p, done }
      pending = undefined
    }
    const top = await sealing!.done
    if (top.layer.cacheId !== sealing!.pending.cacheId) await sealing!.pending.discard()
    sealing = undefined
    return top
  } catch (err) {
    if (sealing !== undefined) {
      const held = await sealing.done.catch(() => undefined)
      if (held !== undefined) await host.release(held).catch(() => undefined)
      await sealing.pending.discard()
    }
    await pending?.discard()
    throw err
  } finally {
    if (below !== undefined) await host.release(below).catch(() => undefined)
  }
}

function randomId(): string {
  return randomBytes(32).toString('hex')
}

/** A new driver layer on `parentCacheId`, filled from `tar`, its record not written. */
async function fill(
  host: RegisterHost,
  tar: AsyncIterable<Uint8Array>,
  parentCacheId: string | undefined,
  options: RegisterOptions,
): Promise<Pending> {
  const cacheId = randomId()
  const marker = InflightMarker.hold(host.inflight, cacheId)
  let txn: LayerTransaction | undefined
  let created = false
  let state: 'open' | 'recorded' | 'gone' = 'open'
  const discard = async (): Promise<void> => {
    if (state !== 'open') return
    state = 'gone'
    await txn?.cancel().catch(() => undefined)
    if (created) await host.driver.remove(cacheId).catch(() => undefined)
    marker.release()
  }
  try {
    txn = await host.db.begin()
    await host.driver.create(cacheId, parentCacheId)
    created = true
    const filled = await fillLayer(host.driver, cacheId, parentCacheId, tar, txn, options)
    return {
      cacheId,
      filled,
      txn,
      recorded() {
        state = 'recorded'
        marker.release()
      },
      discard,
    }
  } catch (err) {
    await discard()
    throw err
  }
}

/**
 * Brings `p`'s files to the disk and records it on `below`. Resolves to a hold on it, or on
 * the same layer if another process recorded it first (`p` is then left for the caller to
 * discard: a layer filled on it may still read it).
 */
async function seal(
  host: RegisterHost,
  p: Pending,
  below: RoLayer | undefined,
  options: RegisterOptions,
): Promise<LayerHandle> {
  const size = await p.filled.durable()
  const { diffId, tarSize } = p.filled
  const chainId = chainIdOf(below?.chainId, diffId)
  p.txn.setDiffId(diffId)
  p.txn.setSize(size)
  p.txn.setCacheId(p.cacheId)
  if (below !== undefined) p.txn.setParent(below.chainId)
  if (options.descriptor !== undefined) p.txn.setDescriptor(options.descriptor)
  return host.locked(async () => {
    // Another process may have deleted the parent meanwhile (its holds are not ours).
    if (below !== undefined && host.layer(below.chainId) !== below)
      throw new LayerDoesNotExistError(
        `layer does not exist: ${below.chainId} (deleted while registering on it)`,
      )
    const existing = host.layer(chainId)
    if (existing !== undefined) return host.hold(existing)
    await p.txn.commit(chainId)
    p.recorded()
    return recorded(host, chainId, below, tarSize)
  })
}

/** Under the lock: the layer just committed as `chainId`, taken into the view and held. */
async function recorded(
  host: RegisterHost,
  chainId: ChainId,
  below: RoLayer | undefined,
  tarSize?: number,
): Promise<LayerHandle> {
  const layer = new RoLayer(await host.db.readLayer(chainId), below)
  host.recorded(layer, tarSize)
  return host.hold(layer)
}

/**
 * Docker's RegisterByGraphID: records the driver layer `graphId` (already on disk, on
 * `below`'s) as the layer `diffId`, with the tar-split metadata in `tarDataFile`. A layer
 * with that ChainID already recorded is held instead.
 */
export async function adoptDriverLayer(
  host: RegisterHost,
  graphId: string,
  below: RoLayer | undefined,
  diffId: DiffId,
  tarDataFile: string,
  size: number,
): Promise<LayerHandle> {
  const chainId = chainIdOf(below?.chainId, diffId)
  return host.locked(async () => {
    const existing = host.layer(chainId)
    if (existing !== undefined) return host.hold(existing)
    const txn = await host.db.begin()
    try {
      txn.setDiffId(diffId)
      txn.setSize(size)
      txn.setCacheId(graphId)
      if (below !== undefined) txn.setParent(below.chainId)
      await pipeline(createReadStream(tarDataFile), txn.tarSplitStream())
      await txn.commit(chainId)
    } catch (err) {
      await txn.cancel().catch(() => undefined)
      throw err
    }
    return recorded(host, chainId, below)
  })
}
