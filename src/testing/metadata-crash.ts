/**
 * Records whose every field derives from their identity, for the layerdb crash tests: after a
 * process dies anywhere, every record that is visible must be complete and consistent, which
 * the verifier can tell from the record alone (no log of what the dead process did).
 *
 * - A layer: `diffId` from a seed, `chainId` by the real formula from parent and diffId;
 *   `size`, `cache-id` and the tar-split payload (up to 256 KiB) from the chainId.
 * - A mount record of version v: `mountId` starts with v in 8 hex digits, the rest and the
 *   init id and parent (present or not) derive from name and v, so a mix of two versions shows.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { chainId as chainIdOf } from '../digest/chain-id.js'
import { sha256Digest } from '../digest/hash.js'
import { digestHex, type ChainId, type DiffId } from '../digest/digest.js'
import { hasCode } from '../errors.js'
import type { LayerDb } from '../metadata/layer-db.js'
import type { MountRecord, Orphan } from '../metadata/types.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

/** Marks records the tests damage on purpose (they are then quarantined, not reported). */
export const DAMAGED_ON_PURPOSE = 'damaged-on-purpose'

export interface DerivedLayer {
  readonly chainId: ChainId
  readonly diffId: DiffId
  readonly parent: ChainId | undefined
  readonly size: number
  readonly cacheId: string
  /** The uncompressed tar-split stand-in. */
  readonly payload: Buffer
}

export function deriveLayer(parent: ChainId | undefined, seed: string): DerivedLayer {
  const diffId = sha256Digest(`diff ${seed}`) as DiffId
  const chainId = chainIdOf(parent, diffId)
  return { chainId, diffId, parent, ...fromChainId(chainId) }
}

function fromChainId(chainId: ChainId): { size: number; cacheId: string; payload: Buffer } {
  const h = sha(chainId)
  const len = parseInt(h.slice(0, 8), 16) % (256 << 10)
  const blocks: Buffer[] = []
  for (let i = 0, n = 0; n < len; i++, n += 32)
    blocks.push(createHash('sha256').update(`${chainId} ${i}`).digest())
  return {
    size: parseInt(h.slice(8, 20), 16),
    cacheId: sha(`cache ${chainId}`),
    payload: Buffer.concat(blocks).subarray(0, len),
  }
}

/** Commits a derived layer, its tar-split written through the transaction's stream. */
export async function commitDerived(db: LayerDb, l: DerivedLayer): Promise<void> {
  await using txn = await db.begin()
  const stream = txn.tarSplitStream()
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject)
    stream.end(gzipSync(l.payload, { level: 1 }), resolve)
  })
  txn.setDiffId(l.diffId)
  txn.setSize(l.size)
  txn.setCacheId(l.cacheId)
  if (l.parent !== undefined) txn.setParent(l.parent)
  await txn.commit(l.chainId)
}

export function deriveMount(name: string, version: number): MountRecord {
  const h = sha(`mount ${name} ${version}`)
  const mountId = version.toString(16).padStart(8, '0') + h.slice(8)
  return {
    name,
    mountId,
    ...(version % 2 === 1 ? { initId: `${sha(`init ${mountId}`)}-init` } : {}),
    ...(version % 3 !== 0 ? { parent: sha256Digest(`parent ${mountId}`) as ChainId } : {}),
  }
}

/** The version of a mount record, from its mount id. */
export function mountVersion(record: MountRecord): number {
  return parseInt(record.mountId.slice(0, 8), 16)
}

export interface Verified {
  readonly layers: readonly ChainId[]
  readonly mounts: ReadonlyMap<string, number>
  readonly orphans: readonly ChainId[]
  /** Records damaged on purpose, quarantined by the verifier. */
  readonly quarantined: number
  readonly problems: readonly string[]
}

/** Checks every visible record of a (just reopened) layerdb; quarantines the purposely damaged. */
export async function verifyLayerDb(db: LayerDb): Promise<Verified> {
  const problems: string[] = []
  const layers: ChainId[] = []
  const mounts = new Map<string, number>()
  let quarantined = 0
  for (const name of readdirSync(db.layout.tmp))
    if (/^(write-set-|mount-replaced-|removing-)/.test(name))
      problems.push(`tmp/${name} was not swept`)
  const list = await db.list()
  for (const id of list.layers) {
    try {
      const r = await db.readLayer(id)
      const want = fromChainId(id)
      if (chainIdOf(r.parent, r.diffId) !== id) problems.push(`${id}: diff/parent do not match`)
      if (r.size !== want.size) problems.push(`${id}: size ${r.size}, want ${want.size}`)
      if (r.cacheId !== want.cacheId) problems.push(`${id}: cache-id ${r.cacheId}`)
      const payload = gunzipSync(readFileSync(db.tarSplitPath(id)))
      if (!payload.equals(want.payload)) problems.push(`${id}: tar-split differs`)
      layers.push(id)
    } catch (err) {
      if (hasCode(err, 'METADATA_CORRUPT') && err.message.includes(DAMAGED_ON_PURPOSE)) {
        await db.quarantine('layer', id, err.message)
        quarantined++
      } else problems.push(`${id}: ${String(err)}`)
    }
  }
  for (const name of list.mounts) {
    try {
      const r = await db.readMount(name)
      const v = mountVersion(r)
      const want = deriveMount(name, v)
      if (JSON.stringify(r) !== JSON.stringify(want))
        problems.push(`mount ${name}: ${JSON.stringify(r)} is not version ${v}`)
      mounts.set(name, v)
    } catch (err) {
      problems.push(`mount ${name}: ${String(err)}`)
    }
  }
  const orphans: ChainId[] = []
  for (const o of await db.orphans()) {
    if (o.cacheId !== fromChainId(o.chainId).cacheId)
      problems.push(`orphan ${o.dirName}: cache-id ${o.cacheId}`)
    orphans.push(o.chainId)
  }
  return { layers, mounts, orphans, quarantined, problems }
}

/** A damaged record made elsewhere and renamed in whole, so that only its damage is seen. */
export function damage(db: LayerDb, l: DerivedLayer, tag: string): void {
  const staging = join(db.root, `staging-${tag}`)
  mkdirSync(staging, { recursive: true })
  writeFileSync(join(staging, 'diff'), l.diffId)
  writeFileSync(join(staging, 'size'), DAMAGED_ON_PURPOSE)
  writeFileSync(join(staging, 'cache-id'), l.cacheId)
  renameSync(staging, join(db.layout.sha256, digestHex(l.chainId)))
}

/** A step of a scenario: runs `fn`, reporting `name` before and after. */
export type Step = (name: string, fn: () => Promise<unknown>) => Promise<void>

/**
 * The crash scenario: commits A and B on it, writes mount m (v1), replaces it (v2), removes
 * it, deletes B (both halves), damages a record C and quarantines it. It reaches every crash
 * point at least once.
 */
export async function scenario(db: LayerDb, step: Step): Promise<void> {
  const a = deriveLayer(undefined, 'A')
  const b = deriveLayer(a.chainId, 'B')
  const c = deriveLayer(undefined, 'C')
  let orphan: Orphan | undefined
  await step('commit A', () => commitDerived(db, a))
  await step('commit B', () => commitDerived(db, b))
  await step('mount v1', () => db.writeMount(deriveMount('m', 1)))
  await step('mount v2', () => db.writeMount(deriveMount('m', 2)))
  await step('remove mount', () => db.removeMount('m'))
  await step('begin remove B', async () => {
    orphan = await db.beginRemove(b.chainId)
  })
  await step('finish remove B', () => db.finishRemove(orphan!))
  await step('damage C', () => Promise.resolve(damage(db, c, 'C')))
  await step('quarantine C', () => db.quarantine('layer', c.chainId, 'damaged'))
}
