import { sha256Digest } from './hash.js'
import type { ChainId, DiffId } from './digest.js'

/**
 * ChainID of a layer (OCI image spec, moby `CreateChainID`): a base layer's ChainID is its
 * DiffID; otherwise sha256 of `"<parent ChainID> <DiffID>"`, one space, no newline.
 */
export function chainId(parent: ChainId | undefined, diffId: DiffId): ChainId {
  if (parent === undefined) return diffId as string as ChainId
  return sha256Digest(`${parent} ${diffId}`) as ChainId
}

/** ChainIDs of every prefix of a list of DiffIDs, base first. */
export function chainIds(diffIds: readonly DiffId[]): ChainId[] {
  const out: ChainId[] = []
  let parent: ChainId | undefined
  for (const d of diffIds) {
    parent = chainId(parent, d)
    out.push(parent)
  }
  return out
}
