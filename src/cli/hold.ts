/**
 * A CLI command's own hold on a layer it builds on. Every command is a process of its own, so
 * a layer that an earlier command registered is held by nothing; the store releases its hold
 * on a parent when an operation on it fails (Docker's rule), which would delete such a layer
 * instead of leaving it as it was.
 */
import type { ChainId } from '../digest/digest.js'
import type { LayerStore } from '../layer/layer-store.js'

/** Runs `fn` with `chainId` (if any) held, then lets the hold go without deleting anything. */
export async function withLayerHeld<T>(
  store: LayerStore,
  chainId: ChainId | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const held = chainId === undefined ? undefined : await store.get(chainId)
  try {
    return await fn()
  } finally {
    if (held !== undefined) store.detach(held)
  }
}
