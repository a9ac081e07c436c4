/**
 * The open sweep: what crashed processes left under `tmp/` (Docker never cleans it, SPEC.md
 * §8.1 item 11) and `-removing` directories a crash left half-deleted. Directories a live
 * transaction holds (locked, see locked-dir.ts) are skipped, whichever process owns them.
 */
import type { Dirent } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { errnoOf, fsyncPath, removeTree } from './files.js'
import { MOUNT_REPLACED_PREFIX, REMOVING_PREFIX, WRITE_SET_PREFIX, type Layout } from './layout.js'
import { tryLockExisting } from './locked-dir.js'
import { restoreReplaced } from './mounts.js'
import { sweepEmptiedOrphans } from './removal.js'
import type { SweepReport } from './types.js'

const PREFIXES = [WRITE_SET_PREFIX, MOUNT_REPLACED_PREFIX, REMOVING_PREFIX]

export async function sweep(layout: Layout): Promise<SweepReport> {
  const removed: string[] = []
  const restoredMounts: string[] = []
  let entries: Dirent[]
  try {
    entries = await readdir(layout.tmp, { withFileTypes: true })
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err
    entries = []
  }
  for (const ent of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!PREFIXES.some((p) => ent.name.startsWith(p))) continue // not ours: left alone
    const path = join(layout.tmp, ent.name)
    if (!ent.isDirectory()) {
      await removeTree(path)
      removed.push(ent.name)
      continue
    }
    const fh = await tryLockExisting(path)
    if (fh === undefined) continue // in use (or gone)
    try {
      if (ent.name.startsWith(MOUNT_REPLACED_PREFIX)) {
        const name = await restoreReplaced(layout, path)
        if (name !== undefined) restoredMounts.push(name)
      }
      await removeTree(path)
      removed.push(ent.name)
    } finally {
      await fh.close()
    }
  }
  if (removed.length > 0) await fsyncPath(layout.tmp)
  const emptiedOrphans = await sweepEmptiedOrphans(layout)
  return { tmp: removed, restoredMounts, emptiedOrphans }
}
