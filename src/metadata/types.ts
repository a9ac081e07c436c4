/**
 * The layer metadata contract: Docker's layerdb (SPEC.md §3), byte-compatible, made
 * crash-safe. Layout under `<root>/image/<driver>/layerdb/`:
 *
 * - `sha256/<chainID hex>/{diff,size,cache-id,parent,descriptor.json,tar-split.json.gz}`
 * - `sha256/<hex>-<random>-removing/`: a layer being deleted, or its orphan after a crash
 * - `mounts/<name>/{mount-id,init-id,parent}`
 * - `tmp/write-set-*`: transactions in flight
 *
 * Every record becomes visible by one rename of a complete, synced directory; nothing is ever
 * half-written where a reader looks. Files are written without a trailing newline and read
 * tolerantly (trimmed), as Docker reads them.
 */
import type { ChainId, DiffId } from '../digest/digest.js'

/** What a layer record holds (the files of `sha256/<hex>/` but tar-split). */
export interface LayerRecord {
  readonly chainId: ChainId
  readonly diffId: DiffId
  /** The `size` file: what the driver's applyDiff returned. */
  readonly size: number
  /** Driver id of the layer's data. */
  readonly cacheId: string
  readonly parent?: ChainId
  /** `descriptor.json`, kept verbatim when present. */
  readonly descriptor?: Readonly<Record<string, unknown>>
}

/** What a read-write layer record holds (`mounts/<name>/`). */
export interface MountRecord {
  readonly name: string
  readonly mountId: string
  readonly initId?: string
  readonly parent?: ChainId
}

/** A layer directory found `-removing` (a deletion a crash interrupted). */
export interface Orphan {
  readonly chainId: ChainId
  readonly cacheId: string
  /** The directory's name under `sha256/`. */
  readonly dirName: string
}

/** A record that could not be read; it was moved aside, never silently skipped. */
export interface Quarantined {
  readonly kind: 'layer' | 'mount'
  /** The record's original directory name. */
  readonly name: string
  /** Where it was moved to. */
  readonly movedTo: string
  readonly reason: string
}

/** What `list()` finds: the records a store loads at start-up (SPEC.md §3.6 step 2). */
export interface LayerDbList {
  /** ChainIDs of the `sha256/<64 hex>` directories, sorted. */
  readonly layers: readonly ChainId[]
  /** Names of the `mounts/` directories, sorted by their bytes (as Go's ReadDir). */
  readonly mounts: readonly string[]
}

/** What opening a layerdb cleaned up after crashed processes. */
export interface SweepReport {
  /** Entries removed from `tmp/`: uncommitted write sets, half-done mount changes. */
  readonly tmp: readonly string[]
  /** Mount records put back: a replacement that died between its two renames. */
  readonly restoredMounts: readonly string[]
  /** `-removing` directories without `cache-id`: deletions that died while removing them. */
  readonly emptiedOrphans: readonly string[]
}
