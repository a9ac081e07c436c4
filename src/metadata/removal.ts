/**
 * Deleting layer records (SPEC.md §3.4, §3.5). A record is first renamed
 * `sha256/<hex>-<64 random hex>-removing`, so that a crash before its driver data is gone leaves
 * an orphan the next start finds (with the cache id to remove), never a record that points at
 * deleted data. Unlike Docker, every rename failure but a name collision is fatal: the caller
 * must not touch the driver data of a layer whose record is still visible (SPEC.md §8.1 item 1).
 */
import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { readdir, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { digestFromHex, digestHex, parseChainId, type ChainId } from '../digest/digest.js'
import { crashPoint } from './crash-points.js'
import { MetadataCorruptError, MetadataNotFoundError } from './errors.js'
import {
  errnoOf,
  pathExists,
  fsyncPath,
  parseCacheIdText,
  ParseError,
  readSmallFile,
  removeTree,
} from './files.js'
import type { Layout } from './layout.js'
import type { Orphan } from './types.js'

const REMOVING_SUFFIX = '-removing'

/** Renames `sha256/<hex>` to its `-removing` name and syncs `sha256/`. */
export async function beginRemoveLayer(layout: Layout, chainId: ChainId): Promise<Orphan> {
  parseChainId(chainId)
  const hex = digestHex(chainId)
  const dir = join(layout.sha256, hex)
  // The cache id first: an orphan is useless without it, and nothing has changed yet. A
  // record without a usable one is METADATA_CORRUPT here, for the caller to quarantine.
  const cacheId = await readCacheId(layout, hex)
  for (;;) {
    const dirName = `${hex}-${randomBytes(32).toString('hex')}${REMOVING_SUFFIX}`
    try {
      await rename(dir, join(layout.sha256, dirName))
    } catch (err) {
      const code = errnoOf(err)
      if (code === 'EEXIST' || code === 'ENOTEMPTY') continue // 2^-256, but Docker retries too
      if (code === 'ENOENT') throw new MetadataNotFoundError('layer', hex, dir, { cause: err })
      throw err
    }
    crashPoint('remove:renamed')
    await fsyncPath(layout.sha256)
    return { chainId, cacheId, dirName }
  }
}

/** Removes an orphan's directory; one already gone is not an error. */
export async function finishRemoveLayer(layout: Layout, orphan: Orphan): Promise<void> {
  const { dirName } = orphan
  if (
    !dirName.startsWith(`${digestHex(orphan.chainId)}-`) ||
    !dirName.endsWith(REMOVING_SUFFIX) ||
    dirName.includes('/')
  )
    throw new TypeError(`Cannot remove orphan "${dirName}": not a -removing directory of its layer`)
  await removeTree(join(layout.sha256, dirName))
  crashPoint('finish-remove:done')
  await fsyncPath(layout.sha256)
}

/**
 * The `-removing` directories of `sha256/` (SPEC.md §3.5): the first `-`-separated field is
 * the hex of the ChainID; ones whose hex is not valid or whose `cache-id` is missing, empty or
 * unreadable are left out, as Docker leaves them. Sorted by directory name.
 */
export async function listOrphans(layout: Layout): Promise<Orphan[]> {
  const out: Orphan[] = []
  for (const ent of await readDirOrEmpty(layout.sha256)) {
    if (!ent.isDirectory() || !ent.name.endsWith(REMOVING_SUFFIX)) continue
    const hex = ent.name.split('-')[0]!
    if (!/^[0-9a-f]{64}$/.test(hex)) continue
    let cacheId: string
    try {
      const text = await readSmallFile(join(layout.sha256, ent.name, 'cache-id'), 4096)
      if (text === undefined) continue
      cacheId = parseCacheIdText(text)
    } catch (err) {
      if (err instanceof ParseError) continue
      throw err
    }
    out.push({ chainId: digestFromHex(hex) as ChainId, cacheId, dirName: ent.name })
  }
  return out
}

/**
 * `-removing` directories without a `cache-id` file: a removal interrupted while it deleted
 * the directory, after the driver data was gone (the store removes the data first). Docker
 * never looks at them again; the open sweep deletes them. Returns their names.
 */
export async function sweepEmptiedOrphans(layout: Layout): Promise<string[]> {
  const out: string[] = []
  for (const ent of await readDirOrEmpty(layout.sha256)) {
    if (!ent.isDirectory() || !ent.name.endsWith(REMOVING_SUFFIX)) continue
    const dir = join(layout.sha256, ent.name)
    let text: string | undefined
    try {
      text = await readSmallFile(join(dir, 'cache-id'), 4096)
    } catch {
      continue // unreadable, not missing: left for an operator
    }
    if (text !== undefined) continue
    await removeTree(dir)
    out.push(ent.name)
  }
  if (out.length > 0) await fsyncPath(layout.sha256)
  return out
}

async function readCacheId(layout: Layout, hex: string): Promise<string> {
  const dir = join(layout.sha256, hex)
  const path = join(dir, 'cache-id')
  let text: string | undefined
  try {
    text = await readSmallFile(path, 4096)
  } catch (err) {
    if (err instanceof ParseError)
      throw new MetadataCorruptError('layer', hex, path, `cache-id: ${err.message}`, { cause: err })
    if (errnoOf(err) === 'ENOTDIR')
      throw new MetadataCorruptError('layer', hex, dir, 'the record is not a directory')
    throw err
  }
  if (text === undefined) {
    if (!(await pathExists(dir))) throw new MetadataNotFoundError('layer', hex, dir)
    throw new MetadataCorruptError('layer', hex, path, 'cache-id: missing')
  }
  try {
    return parseCacheIdText(text)
  } catch (err) {
    if (err instanceof ParseError)
      throw new MetadataCorruptError('layer', hex, path, `cache-id: ${err.message}`, { cause: err })
    throw err
  }
}

async function readDirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return []
    throw err
  }
}
