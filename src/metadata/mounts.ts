/**
 * Read-write layer records, written and removed atomically (SPEC.md §8.1 item 8, §8.3). Docker
 * writes `mount-id`, `init-id` and `parent` one by one straight into `mounts/<name>/`, so a
 * crash can leave a mount without its parent; here the files go into a write set that is
 * renamed into place.
 *
 * Replacing an existing record takes two renames, so the old one is first moved into a
 * `tmp/mount-replaced-*` directory that also holds the name: if the process dies between the
 * two renames, the next open's sweep finds the name without a record and moves the old one
 * back. Either the old record or the new one is visible, never none and never a mix.
 */
import { chmod, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { isDigest } from '../digest/digest.js'
import { crashPoint } from './crash-points.js'
import { MetadataExistsError, MetadataNotFoundError } from './errors.js'
import {
  ensureDir,
  errnoOf,
  pathExists,
  fsyncPath,
  fsyncTree,
  isValidId,
  pathComponentProblem,
  readSmallFile,
  writeExact,
} from './files.js'
import { MOUNT_REPLACED_PREFIX, REMOVING_PREFIX, WRITE_SET_PREFIX, type Layout } from './layout.js'
import { LockedDir } from './locked-dir.js'
import { checkMountName } from './read-record.js'
import type { MountRecord } from './types.js'

/** Options of `LayerDb.writeMount`. */
export interface WriteMountOptions {
  /** Fail with METADATA_EXISTS instead of replacing an existing record. Default false. */
  readonly exclusive?: boolean
}

/** Inside a `mount-replaced-*` directory: the record's name, and the old record itself. */
const REPLACED_NAME = 'name'
const REPLACED_OLD = 'old'

export async function writeMountRecord(
  layout: Layout,
  record: MountRecord,
  options: WriteMountOptions = {},
): Promise<void> {
  checkMountName(record.name)
  if (!isValidId(record.mountId))
    throw new TypeError(`Cannot write mount: invalid mount id "${record.mountId}"`)
  if (record.initId !== undefined && !isValidId(record.initId))
    throw new TypeError(`Cannot write mount: invalid init id "${record.initId}"`)
  if (record.parent !== undefined && !isDigest(record.parent))
    throw new TypeError(`Cannot write mount: parent "${String(record.parent)}" is not a digest`)

  await ensureDir(layout.tmp, 0o755)
  await ensureDir(layout.mounts, 0o755)
  const target = join(layout.mounts, record.name)
  const ws = await LockedDir.create(layout.tmp, WRITE_SET_PREFIX)
  let aside: LockedDir | undefined
  try {
    await writeExact(join(ws.path, 'mount-id'), record.mountId)
    if (record.initId !== undefined) await writeExact(join(ws.path, 'init-id'), record.initId)
    if (record.parent !== undefined) await writeExact(join(ws.path, 'parent'), record.parent)
    await chmod(ws.path, 0o755) // Docker's mounts/<name> comes from MkdirAll(…, 0755)
    await fsyncTree(ws.path)
    crashPoint('mount:synced')

    if (options.exclusive === true || !(await pathExists(target))) {
      try {
        await rename(ws.path, target)
      } catch (err) {
        const code = errnoOf(err)
        const taken = code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR'
        if (taken && (await pathExists(target).catch(() => false)))
          throw new MetadataExistsError('mount', record.name, target, { cause: err })
        throw err
      }
    } else {
      aside = await LockedDir.create(layout.tmp, MOUNT_REPLACED_PREFIX)
      await writeExact(join(aside.path, REPLACED_NAME), record.name)
      await fsyncTree(aside.path)
      await fsyncPath(layout.tmp)
      crashPoint('mount:aside')
      await rename(target, join(aside.path, REPLACED_OLD))
      await fsyncPath(layout.mounts)
      crashPoint('mount:old-moved')
      await rename(ws.path, target)
    }
    ws.movedTo(target)
    await ws.release()
    crashPoint('mount:renamed')
    // The new record is in place: what follows cannot undo it, and is not reported as a
    // failed write (the caller would then remove the data the record names).
    await Promise.allSettled([fsyncPath(layout.mounts), fsyncPath(layout.tmp)])
    await aside?.remove().catch(() => undefined) // a leftover the next sweep removes
    aside = undefined
  } finally {
    // Whatever did not reach its place. The old record is put back if it was moved aside.
    if (aside !== undefined) {
      try {
        await restoreReplaced(layout, aside.path)
        await aside.remove()
      } catch {
        await aside.release() // the next open's sweep puts it back
      }
    }
    await ws.remove()
  }
}

export async function removeMountRecord(layout: Layout, name: string): Promise<void> {
  checkMountName(name)
  const target = join(layout.mounts, name)
  if (!(await pathExists(target))) throw new MetadataNotFoundError('mount', name, target)
  const aside = await LockedDir.create(layout.tmp, REMOVING_PREFIX)
  try {
    try {
      await rename(target, join(aside.path, REPLACED_OLD))
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new MetadataNotFoundError('mount', name, target)
      throw err
    }
    await fsyncPath(layout.mounts)
    crashPoint('mount-remove:moved')
  } finally {
    await aside.remove()
  }
  // Only the aside directory's disappearance is left to sync; a sweep would finish it anyway.
  await fsyncPath(layout.tmp).catch(() => undefined)
}

/**
 * Recovery of an interrupted replacement: moves `<dir>/old` back to `mounts/<name>` when no
 * record of that name is in place. Returns the name restored, if any.
 */
export async function restoreReplaced(layout: Layout, dir: string): Promise<string | undefined> {
  let name: string | undefined
  try {
    name = await readSmallFile(join(dir, REPLACED_NAME), 4096)
  } catch {
    return undefined
  }
  if (name === undefined || pathComponentProblem(name) !== undefined) return undefined
  const old = join(dir, REPLACED_OLD)
  const target = join(layout.mounts, name)
  if (!(await pathExists(old)) || (await pathExists(target))) return undefined
  await ensureDir(layout.mounts, 0o755)
  await rename(old, target)
  await fsyncPath(layout.mounts)
  return name
}
