/**
 * How a driver fills a layer directory: a {@link LayerApplier} over archive's Applier, fed
 * entry by entry by the layer store (one pass that also splits and hashes the tar) or from a
 * whole tar by applyDiff.
 */
import { Applier, feed, type ApplyOptions } from '../archive/index.js'
import type { LayerApplier } from './types.js'

export interface ApplierHooks {
  /** The layer's size once its files are written, from Σ header sizes (the default). */
  readonly size?: (headerSizes: number) => Promise<number>
  /** Runs once, after finish() or abort() (a put() of the layer's mount). */
  readonly release?: () => Promise<void>
}

/** A LayerApplier writing into `dir`; throws (nothing to release) when `dir` is not one. */
export function layerApplier(
  dir: string,
  options: ApplyOptions,
  hooks: ApplierHooks = {},
): LayerApplier {
  const applier = new Applier(dir, options)
  let open = true
  let headerSizes: number | undefined
  const release = async (): Promise<void> => {
    if (!open) return
    open = false
    await hooks.release?.()
  }
  return {
    entry: (header) => applier.entry(header),
    async finish() {
      try {
        headerSizes = (await applier.finish()).size
      } catch (err) {
        await applier.settle()
        applier.abort()
        throw err
      } finally {
        await release()
      }
    },
    size() {
      if (headerSizes === undefined) throw new Error('LayerApplier.size() before finish()')
      return hooks.size === undefined ? Promise.resolve(headerSizes) : hooks.size(headerSizes)
    },
    async abort() {
      if (!open) return
      try {
        await applier.settle()
        applier.abort()
      } finally {
        await release()
      }
    },
  }
}

/** applyDiff on top of a LayerApplier: the whole tar, then finish(). */
export async function applyAll(
  applier: LayerApplier,
  tar: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
): Promise<number> {
  try {
    await feed(tar, applier, signal)
  } catch (err) {
    await applier.abort()
    throw err
  }
  await applier.finish()
  return applier.size()
}
