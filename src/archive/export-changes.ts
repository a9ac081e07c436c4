/**
 * Layer diffs made from a directory: {@link exportChanges} (Docker's `ExportChanges`, SPEC.md
 * §6.8) writes the nodes a comparison found, {@link exportTree} (Docker's `Tar` of a
 * directory, §6.10) writes every node, as a base layer's diff.
 *
 * Both are pull-based: a node is lstat'ed and read only when the archive is read that far,
 * large files a chunk at a time, so memory stays flat whatever the tree holds. Unlike Docker:
 * - a node that cannot be read (gone, unreadable, changed size or replaced while being
 *   read) fails the stream with ARCHIVE_EXPORT_FAILED instead of being left out, since a
 *   diff missing a file would be committed as if it were complete;
 * - deletion whiteouts carry the Unix epoch, not the current time, so the same trees always
 *   give the same bytes (containerd does the same).
 */
import { readdirSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { TYPE, writeTarStream, type TarWriteEntry } from '../tar/index.js'
import { exportError } from './file-body.js'
import { TarAppender, whiteoutName, type TarAppenderOptions } from './tar-appender.js'
import type { Change, ChangeKind, WhiteoutFormat } from './types.js'

export interface ExportOptions {
  /**
   * How `dir` holds whiteouts (default `aufs`). `overlay`: `dir` is an overlayfs upper
   * directory, whose 0/0 character devices and opaque directories are written as AUFS
   * whiteouts (overlay2's native diff).
   */
  readonly whiteoutFormat?: WhiteoutFormat
  readonly signal?: AbortSignal
}

const SLASH = Buffer.from('/')
/** Work between two turns of the event loop (small files are read synchronously). */
const ENTRIES_PER_TURN = 256
const BYTES_PER_TURN = 8 << 20

interface Item {
  readonly kind: ChangeKind
  /** The path without its leading slash. */
  readonly rel: Buffer
}

/** The change's path inside the tree, checked: export must not read outside `dir`. */
function relative(c: Change): Item {
  const p = c.pathRaw
  const parts = p.toString('latin1').split('/')
  if (p[0] !== 0x2f || parts.slice(1).some((s) => s === '' || s === '.' || s === '..'))
    throw new TypeError(`Cannot export change: "${c.path}" is not a clean absolute path`)
  return { kind: c.kind, rel: p.subarray(1) }
}

/** A deletion: `dir/.wh.base`, an empty regular file owned by root, mode 0, at the epoch. */
function whiteout(rel: Buffer): TarWriteEntry {
  const name = whiteoutName(rel)
  return { header: { typeflag: TYPE.REG, nameRaw: name, mode: 0, uid: 0, gid: 0, mtime: 0 } }
}

/** Lets the event loop run now and then while entries are made synchronously. */
function pacer(
  signal: AbortSignal | undefined,
): (entries: readonly TarWriteEntry[]) => Promise<void> {
  let entries = 0
  let bytes = 0
  return async (made) => {
    entries += made.length
    for (const e of made) if (e.body instanceof Uint8Array) bytes += e.body.length
    if (entries < ENTRIES_PER_TURN && bytes < BYTES_PER_TURN) return
    entries = 0
    bytes = 0
    await yieldToLoop()
    signal?.throwIfAborted()
  }
}

async function* changeEntries(
  dir: string,
  items: readonly Item[],
  options: TarAppenderOptions,
): AsyncGenerator<TarWriteEntry> {
  const appender = new TarAppender(dir, options)
  const pace = pacer(options.signal)
  for (const { kind, rel } of items) {
    const made = kind === 'D' ? [whiteout(rel)] : appender.add(rel).entries
    yield* made
    await pace(made)
  }
}

/**
 * A layer diff of `changes` found in `dir` (as `changes()` reports them): entries sorted by
 * path; a Delete is a `.wh.` whiteout, an Add or Modify the node as it is now in `dir`. The
 * stream fails with ARCHIVE_EXPORT_FAILED when a node cannot be read. A change path that is
 * not clean and absolute throws a TypeError at once.
 */
export function exportChanges(
  dir: string,
  changes: readonly Change[],
  options: ExportOptions = {},
): Readable {
  const items = changes.map(relative).sort((a, b) => Buffer.compare(a.rel, b.rel))
  return writeTarStream(changeEntries(dir, items, options), options)
}

async function* treeEntries(
  dir: string,
  options: TarAppenderOptions,
): AsyncGenerator<TarWriteEntry> {
  const root = Buffer.from(dir)
  const list = (rel: Buffer): Buffer[] => {
    try {
      const path = rel.length === 0 ? root : Buffer.concat([root, SLASH, rel])
      return readdirSync(path, { encoding: 'buffer' }).sort((a, b) => Buffer.compare(a, b))
    } catch (err) {
      throw exportError(err, `/${rel.toString('utf8')}`)
    }
  }
  const appender = new TarAppender(dir, options)
  const pace = pacer(options.signal)
  const stack: { rel: Buffer; names: Buffer[]; next: number }[] = [
    { rel: Buffer.alloc(0), names: list(Buffer.alloc(0)), next: 0 },
  ]
  for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
    const name = top.names[top.next++]
    if (name === undefined) {
      stack.pop()
      continue
    }
    const rel = top.rel.length === 0 ? name : Buffer.concat([top.rel, SLASH, name])
    const node = appender.add(rel)
    yield* node.entries
    await pace(node.entries)
    if (node.stat.isDirectory()) stack.push({ rel, names: list(rel), next: 0 })
  }
}

/**
 * A layer diff holding every node of `dir` (the root itself excepted): Docker's `Tar` of a
 * directory, a base layer's naive diff. The entries are those of `exportChanges` with every
 * node added, in Docker's walk order: depth first, the names of a directory in byte order
 * (so `a/`, `a/x`, `a-b`, where sorting whole paths gives `a-b` before `a/x`).
 */
export function exportTree(dir: string, options: ExportOptions = {}): Readable {
  return writeTarStream(treeEntries(dir, options), options)
}
