/**
 * The round trip of a layer diff made from two trees: `changes(new, old)`, `exportChanges`,
 * then `apply` on a copy of the old tree (aufs form), or into an empty upper directory over the
 * old tree mounted with overlayfs (overlay form). The result is the new tree except where
 * Docker's diff itself is lossy; {@link expectedRoundTrip} states exactly where, entry by entry
 * and field by field, each with its reason. Nothing else is loosened: a field outside these
 * rules that differs is a bug in changes, export or apply. The root itself is not compared
 * (snapshots leave it out; a diff never carries it).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { apply } from '../archive/apply.js'
import { changes as treeChanges } from '../archive/changes.js'
import { exportChanges } from '../archive/export-changes.js'
import type { Change, WhiteoutFormat } from '../archive/types.js'
import { mountLayers } from './overlay-mount.js'
import { compareTrees, display, snapshot, type TreeEntry } from './tree.js'

const CAPABILITY = 'security.capability'

/** Why the round trip may differ from the new tree, one line per rule. */
export const REASONS = {
  wholeSeconds: 'export writes whole-second mtimes (no PAX times), as Docker does',
  dirMtime:
    'changes() ignores directory mtimes (Docker statDifferent): an unreported dir keeps its old one',
  blockMtime:
    'Docker statDifferent takes a block device for a directory: its mtime is not compared',
  sameSecond: 'Docker sameFsTimeSpec: a whole-second mtime equals any mtime in the same second',
  content: 'changes() compares lstat, not content: same size and mtime look unchanged',
  xattrsExported: 'export carries security.capability only (Docker tarAppender)',
  capabilityV2: 'export cuts a v3 capability to v2: its namespace root id means nothing elsewhere',
  xattrsKept: 'apply keeps an existing directory with its xattrs, setting only the header ones',
  xattrsUnreported: 'changes() compares no xattr but security.capability',
  links: 'a name changes() does not report keeps its old inode: links join exported names only',
} as const

export type Reason = keyof typeof REASONS

/** One field of one entry where the expected tree is not the new tree. */
export interface Loosening {
  readonly path: string
  readonly field: string
  readonly reason: Reason
}

/** The tree the round trip must give, and where it departs from the new tree. */
export interface Expectation {
  readonly tree: TreeEntry[]
  readonly loosened: Loosening[]
}

type Entry = { -readonly [K in keyof TreeEntry]: TreeEntry[K] }

function rawPath(e: TreeEntry): Buffer {
  return e.path !== undefined ? Buffer.from(e.path) : Buffer.from(e.path_b64 ?? '', 'base64')
}

/** The bytes of a path as `display` shows it. */
function displayRaw(path: string): Buffer {
  return path.startsWith('b64:') ? Buffer.from(path.slice(4), 'base64') : Buffer.from(path)
}

/** A change's path as `display` shows a tree entry's (no leading slash, b64 when not UTF-8). */
function changePath(c: Change): string {
  const raw = c.pathRaw.subarray(1)
  const text = raw.toString('utf8')
  return Buffer.from(text, 'utf8').equals(raw) ? text : `b64:${raw.toString('base64')}`
}

/** Docker's sameFsTimeSpec on two snapshot entries. */
function sameMtime(a: TreeEntry, b: TreeEntry): boolean {
  if (a.mtime === b.mtime && a.mtime_nsec === b.mtime_nsec) return true
  return a.mtime === b.mtime && (a.mtime_nsec === 0 || b.mtime_nsec === 0)
}

function withoutCapability(x: TreeEntry['xattrs']): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(x ?? {})) if (k !== CAPABILITY) out[k] = v
  return out
}

function onlyCapability(x: TreeEntry['xattrs']): Record<string, string> {
  const cap = x?.[CAPABILITY]
  return cap === undefined ? {} : { [CAPABILITY]: cap }
}

/** The capability as export writes it (tar-appender.ts): v3 becomes v2 (byte 3, 20 bytes). */
function exportedCapability(x: TreeEntry['xattrs']): Record<string, string> {
  const cap = onlyCapability(x)[CAPABILITY]
  if (cap === undefined) return {}
  const raw = Buffer.from(cap.replace(/^base64:/, ''), 'base64')
  if (raw[3] !== 3) return { [CAPABILITY]: cap }
  const v2 = Buffer.from(raw.subarray(0, 20))
  v2[3] = 2
  return { [CAPABILITY]: `base64:${v2.toString('base64')}` }
}

/** A value in a canonical form: xattrs sorted by name, an empty set of xattrs as none. */
function canonical(field: string, v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (field !== 'xattrs') return JSON.stringify(v)
  const entries = Object.entries(v as Record<string, string>).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )
  return entries.length === 0 ? undefined : JSON.stringify(entries)
}

/**
 * The tree that applying `exportChanges(new, changes)` to the old tree must give, from the
 * snapshots of both trees. `form` is how the diff was applied: `aufs` on a copy of the old
 * tree, `overlay` into an upper directory above it (the merged view then shows an exported
 * directory's own xattrs, not the old directory's).
 */
export function expectedRoundTrip(
  newTree: readonly TreeEntry[],
  oldTree: readonly TreeEntry[],
  changes: readonly Change[],
  form: WhiteoutFormat,
): Expectation {
  const olds = new Map(oldTree.map((e) => [display(e), e]))
  const exported = new Set(changes.filter((c) => c.kind !== 'D').map(changePath))
  const loosened: Loosening[] = []
  /** Sets a field of the expected entry when it differs from the new tree's, and says why. */
  const loosen = <K extends keyof Entry>(
    e: Entry,
    field: K,
    value: Entry[K],
    why: Reason,
  ): void => {
    if (canonical(field, e[field]) === canonical(field, value)) return
    if (canonical(field, value) === undefined) Reflect.deleteProperty(e, field)
    else e[field] = value
    loosened.push({ path: display(e), field, reason: why })
  }
  const linkKeys = new Map<Entry, string>()
  const tree = newTree.map((n) => {
    const e: Entry = { ...n }
    const o = olds.get(display(n))
    if (exported.has(display(n))) {
      // Written from the new tree: its tar header is all the target learns of the node.
      loosen(e, 'mtime_nsec', 0, 'wholeSeconds')
      if (form === 'aufs' && n.type === 'dir' && o?.type === 'dir') {
        loosen(e, 'xattrs', { ...o.xattrs, ...onlyCapability(n.xattrs) }, 'xattrsKept')
        loosen(e, 'xattrs', { ...o.xattrs, ...exportedCapability(n.xattrs) }, 'capabilityV2')
      } else {
        loosen(e, 'xattrs', onlyCapability(n.xattrs), 'xattrsExported')
        loosen(e, 'xattrs', exportedCapability(n.xattrs), 'capabilityV2')
      }
      if (n.link_group !== undefined) linkKeys.set(e, `new:${n.link_group}`)
      return e
    }
    if (o === undefined || o.type !== n.type) return e // changes() missed it: no excuse
    // An unreported node is the old node, untouched: what changes() does not compare may differ.
    if (n.type === 'dir' || n.type === 'block') {
      const why = n.type === 'dir' ? 'dirMtime' : 'blockMtime'
      loosen(e, 'mtime', o.mtime, why)
      loosen(e, 'mtime_nsec', o.mtime_nsec, why)
    } else if (sameMtime(o, n)) {
      loosen(e, 'mtime', o.mtime, 'sameSecond')
      loosen(e, 'mtime_nsec', o.mtime_nsec, 'sameSecond')
      if (n.type === 'file' && o.size === n.size) loosen(e, 'sha256', o.sha256, 'content')
      if (n.type === 'symlink' && byteLength(o.target) === byteLength(n.target))
        loosen(e, 'target', o.target, 'content')
    }
    loosen(
      e,
      'xattrs',
      { ...withoutCapability(o.xattrs), ...onlyCapability(n.xattrs) },
      'xattrsUnreported',
    )
    if (o.link_group !== undefined) linkKeys.set(e, `old:${o.link_group}`)
    return e
  })
  // Hard-link groups as the target holds them: exported names of one new inode together (the
  // export links them to the first), unreported names with the names of their old inode that
  // are still there.
  const groups = new Map<string, Entry[]>()
  for (const [e, key] of linkKeys) groups.set(key, [...(groups.get(key) ?? []), e])
  for (const e of tree) {
    if (e.type !== 'file') continue
    const key = linkKeys.get(e)
    const members = key === undefined ? [e] : (groups.get(key) ?? [e])
    const first = members.reduce((a, b) => (Buffer.compare(rawPath(a), rawPath(b)) <= 0 ? a : b))
    const linked = members.length > 1
    loosen(e, 'nlink', linked ? members.length : undefined, 'links')
    loosen(e, 'link_group', linked ? display(first) : undefined, 'links')
  }
  return { tree, loosened }
}

function byteLength(s: string | undefined): number {
  return Buffer.byteLength(s ?? '')
}

/** Copies a tree exactly (owners, modes, nanosecond times, xattrs, hard links) with `cp -a`. */
export function copyTree(from: string, to: string): void {
  execFileSync('cp', ['-a', '--', from, to])
  const diffs = compareTrees(snapshot(from), snapshot(to))
  if (diffs.length > 0) throw new Error(`cp -a did not copy ${from} exactly:\n${diffs.join('\n')}`)
}

export interface RoundTripResult {
  readonly changes: readonly Change[]
  /**
   * compareTrees(expected, actual), then what `changes(new, result)` reports beyond the v3
   * capabilities export cuts down: every other loosening is something changes() does not see,
   * so Docker's own comparison must find the trees equal. Empty when the round trip is right.
   */
  readonly diffs: string[]
  readonly loosened: readonly Loosening[]
  /** Entries applied (the exported tar's entry count). */
  readonly entries: number
}

/**
 * Runs the round trip from `oldDir` to `newDir` in the empty directory `work` (both trees are
 * left as they are). `aufs`: the diff is applied to a copy of the old tree. `overlay`: it is
 * applied in overlay form into an empty upper directory whose lower is the old tree, and the
 * two are mounted with overlayfs (needs root); nlink is not compared then, as overlayfs
 * reports a lower inode's own count.
 */
export async function roundTrip(
  oldDir: string,
  newDir: string,
  work: string,
  form: WhiteoutFormat,
): Promise<RoundTripResult> {
  const found = await treeChanges(newDir, oldDir)
  const expected = expectedRoundTrip(snapshot(newDir), snapshot(oldDir), found, form)
  const check = async (result: string): Promise<string[]> => {
    const diffs = compareTrees(expected.tree, snapshot(result), {
      ignoreNlink: form === 'overlay',
    })
    // A v3 capability cut to v2, and the directories above it (changes() reports them too).
    const cut = new Set<string>()
    for (const l of expected.loosened) {
      if (l.reason !== 'capabilityV2') continue
      const parts = displayRaw(l.path).toString('latin1').split('/')
      for (let i = 1; i <= parts.length; i++) cut.add(parts.slice(0, i).join('/'))
    }
    for (const c of await treeChanges(newDir, result)) {
      if (c.kind !== 'C' || !cut.has(c.pathRaw.subarray(1).toString('latin1')))
        diffs.push(`changes(new, result) reports ${c.kind} ${c.path}`)
    }
    return diffs
  }
  if (form === 'aufs') {
    const target = join(work, 'target')
    copyTree(oldDir, target)
    const { entries } = await apply(exportChanges(newDir, found), target)
    return { changes: found, diffs: await check(target), loosened: expected.loosened, entries }
  }
  const upper = join(work, 'upper')
  mkdirSync(upper)
  const tar = exportChanges(newDir, found)
  const { entries } = await apply(tar, upper, { whiteoutFormat: 'overlay', lowers: [oldDir] })
  const mount = mountLayers([upper, oldDir], work)
  try {
    return { changes: found, diffs: await check(mount.dir), loosened: expected.loosened, entries }
  } finally {
    mount.unmount()
  }
}

/** A loosening as one line, for test output. */
export function describe(l: Loosening): string {
  return `${l.path}: ${l.field} (${REASONS[l.reason]})`
}
