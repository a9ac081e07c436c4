/**
 * Whiteouts in a layer tar (SPEC.md §6.4): `.wh.NAME` deletes NAME of the layers below,
 * `.wh..wh..opq` hides a directory's lower content. In overlay form they become what overlayfs
 * reads (a 0/0 character device, the opaque xattr); in plain form (vfs) they delete.
 */
import { lchownSync, readdirSync, rmSync, type Stats } from 'node:fs'
import type { TarHeader } from '../tar/types.js'
import { sys, S_IFCHR } from '../internal/sys.js'
import type { Name } from './entry-name.js'
import type { EntryAttributes } from './entry-attributes.js'
import { ArchiveError } from './errors.js'
import {
  join,
  lstatOrUndefined,
  OPAQUE_XATTR,
  type LayerRoot,
  type ResolvedDir,
} from './layer-root.js'

export const WH_PREFIX = '.wh.'
export const WH_META_PREFIX = '.wh..wh.'
export const WH_OPAQUE = '.wh..wh..opq'
/** AUFS hard-link store. */
export const WH_PLNK = '.wh..wh.plnk'

/** What whiteout handling needs of the applier. */
export interface WhiteoutContext {
  readonly root: LayerRoot
  readonly overlay: boolean
  readonly attributes: EntryAttributes
  /** Resolved relative paths (latin1) created by this layer: an opaque marker keeps them. */
  readonly unpacked: Set<string>
  /** Removes an entry before its name is reused. */
  remove(host: Buffer, st: Stats): void
}

/** Applies the whiteout entry `name` (its base starts with `.wh.`) in `parent`. */
export function applyWhiteout(
  ctx: WhiteoutContext,
  header: TarHeader,
  parent: ResolvedDir,
  name: Name,
): void {
  if (name.base === WH_OPAQUE) {
    if (ctx.overlay && parent === ctx.root.root) {
      hideLowerRoot(ctx, header)
      ctx.root.setRootOpaque()
    } else if (ctx.overlay) {
      sys.lsetxattr(parent.host, OPAQUE_XATTR, Buffer.from('y'))
      ctx.root.invalidate()
    } else if (removeNotUnpacked(ctx, parent)) {
      ctx.root.invalidate()
    }
    return
  }
  const hidden = name.base.slice(WH_PREFIX.length)
  if (hidden === '' || hidden === '.' || hidden === '..' || hidden.includes('/'))
    throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'invalid whiteout entry', name.full)
  const host = join(parent.host, Buffer.from(hidden, 'latin1'))
  const existing = lstatOrUndefined(host)
  if (existing !== undefined) ctx.remove(host, existing)
  if (!ctx.overlay) return
  sys.mknod(host, S_IFCHR, 0, 0)
  ctx.unpacked.add(parent.key === '' ? hidden : `${parent.key}/${hidden}`)
  const owner = whiteoutOwner(ctx, header, name.full)
  if (owner !== undefined && (owner[0] !== 0 || owner[1] !== 0)) lchownSync(host, ...owner)
}

/**
 * An opaque marker at the root in overlay form. overlayfs ignores the opaque xattr on a
 * layer's root, so the root is made to hide the lowers name by name: a whiteout for every
 * name the lowers show there that this layer did not create.
 */
function hideLowerRoot(ctx: WhiteoutContext, header: TarHeader): void {
  const root = ctx.root.root
  const seen = new Set<string>()
  for (const lower of root.lowers) {
    for (const ent of readdirSync(lower, { encoding: 'buffer' })) {
      const name = ent.toString('latin1')
      if (seen.has(name)) continue
      seen.add(name) // the topmost layer decides, a whiteout included
      const host = join(root.host, ent)
      if (ctx.root.lowerEntry(root, ent) === undefined) continue
      if (lstatOrUndefined(host) !== undefined) continue // this layer's own
      sys.mknod(host, S_IFCHR, 0, 0)
      const owner = whiteoutOwner(ctx, header, name)
      if (owner !== undefined) lchownSync(host, ...owner)
    }
  }
}

/** The host owner of a whiteout device: its marker's (undefined: no chown at all). */
function whiteoutOwner(
  ctx: WhiteoutContext,
  header: TarHeader,
  entry: string,
): [number, number] | undefined {
  if (!ctx.attributes.chown) return undefined
  return [
    ctx.attributes.id(header.uid, 'uids', entry),
    ctx.attributes.id(header.gid, 'gids', entry),
  ]
}

/** AUFS opaque marker: removes what this layer did not create, below `dir`. */
function removeNotUnpacked(ctx: WhiteoutContext, dir: ResolvedDir): boolean {
  let removed = false
  const walk = (d: Buffer, key: string): void => {
    let list
    try {
      list = readdirSync(d, { encoding: 'buffer', withFileTypes: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    for (const ent of list) {
      const host = join(d, ent.name)
      const name = ent.name.toString('latin1')
      const childKey = key === '' ? name : `${key}/${name}`
      if (!ctx.unpacked.has(childKey)) {
        rmSync(host, { recursive: true, force: true })
        removed = true
      } else if (ent.isDirectory()) {
        walk(host, childKey)
      }
    }
  }
  walk(dir.host, dir.key)
  return removed
}
