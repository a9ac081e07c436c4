/**
 * Comparing two trees: Docker's Linux `ChangesDirs(newDir, oldDir)` (SPEC.md §6.7), and
 * `ChangesSize`. Both trees are walked side by side; a name whose two nodes are the same inode
 * on the same device is skipped with its whole subtree (a hard-linked or shared copy), every
 * other node is lstat'ed on both sides and compared.
 *
 * The walk uses synchronous fs calls: a tree is thousands of lstat calls that the page cache
 * answers in a few microseconds each, against tens for a thread-pool round trip. It yields to
 * the event loop every few hundred calls so that other work keeps going.
 *
 * Differences from Docker, none visible in the result: a deleted subtree is not descended
 * (its children are never reported), nor is the old side of a directory replaced by a file;
 * below an added directory readdir's file types replace lstat (only directories matter
 * there, and character devices, which are lstat'ed: overlayfs lists the whiteouts of a
 * directory it does not merge, yet lstat finds no such node, and Docker reports only what
 * lstat finds); capabilities are read only where both sides exist and their stats agree (elsewhere
 * the answer does not depend on them); inodes are compared with lstat's st_ino and st_dev of
 * the two nodes, not getdents' d_ino and the parents' devices.
 */
import { lstatSync, readdirSync, type BigIntStats, type Dirent } from 'node:fs'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { debuglog } from 'node:util'
import { sys } from '../internal/sys.js'
import { floorSeconds, isDirectory as isDir, S_IFDIR, wholeSecond } from './file-stat.js'
import { ArchiveIoError } from './errors.js'
import type { Change, ChangeKind } from './types.js'

const debug = debuglog('layerstore:archive')

const SLASH = Buffer.from('/')
const CAPABILITY = 'security.capability'
/** fs calls between two turns of the event loop. */
const CALLS_PER_TURN = 512

export interface ChangesOptions {
  readonly signal?: AbortSignal
}

/** Sorts changes by path bytes, as Docker's ExportChanges does (a parent before its children). */
export function byPath(a: Change, b: Change): number {
  return Buffer.compare(a.pathRaw, b.pathRaw)
}

/** Docker's sameFsTimeSpec: a side without nanoseconds (a coarse copy) matches on the second. */
function sameMtime(a: bigint, b: bigint): boolean {
  if (a === b) return true
  return floorSeconds(a) === floorSeconds(b) && (wholeSecond(a) || wholeSecond(b))
}

/**
 * Docker's statDifferent. Its directory test is `mode & S_IFDIR == S_IFDIR`, which block
 * devices (0o060000) pass too, so their mtime and size are ignored as well: kept, so that
 * both report the same changes.
 */
export function statDifferent(o: BigIntStats, n: BigIntStats): boolean {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true
  if ((Number(o.mode) & S_IFDIR) === S_IFDIR) return false
  return o.size !== n.size || !sameMtime(o.mtimeNs, n.mtimeNs)
}

/** The file capability of the node at host path `host` (`rel` in the tree, for errors). */
function capability(host: Buffer, rel: Buffer): Buffer | undefined {
  try {
    return sys.lgetxattr(host, CAPABILITY)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError(err, rel)
  }
}

/**
 * Docker's test of a node present in both trees: their stats differ or their file
 * capabilities do. `o` and `n` are the lstat results of `oldHost` and `newHost`; `rel` names
 * the node in errors.
 */
export function nodeModified(
  o: BigIntStats,
  n: BigIntStats,
  oldHost: Buffer,
  newHost: Buffer,
  rel: Buffer,
): boolean {
  if (statDifferent(o, n)) return true
  const oc = capability(oldHost, rel)
  const nc = capability(newHost, rel)
  return oc === undefined || nc === undefined ? oc !== nc : !oc.equals(nc)
}

/** `a/b` of two path buffers. */
export function join(a: Buffer, b: Buffer): Buffer {
  return Buffer.concat([a, SLASH, b])
}

/** A failed fs call while comparing trees, `rel` the path inside the tree ('' for the root). */
export function ioError(err: unknown, rel: Buffer): ArchiveIoError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error'
  const path = rel.length === 0 ? '/' : rel.toString('utf8')
  return new ArchiveIoError('ARCHIVE_EXPORT_FAILED', `Cannot compare trees (${code})`, path, {
    cause: err,
  })
}

/** Counts synchronous fs calls and lets the event loop run every {@link CALLS_PER_TURN}. */
export class Pacer {
  readonly #signal: AbortSignal | undefined
  #calls = 0

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal
  }

  /** Counts fs calls; true when it is time to let the event loop run ({@link yield}). */
  count(calls: number): boolean {
    this.#calls += calls
    return this.#calls >= CALLS_PER_TURN
  }

  /** Lets the event loop run, then throws if the signal has aborted. */
  async yield(): Promise<void> {
    this.#calls = 0
    await yieldToLoop()
    this.#signal?.throwIfAborted()
  }
}

class Walker {
  readonly changes: Change[] = []
  readonly #newRoot: Buffer
  readonly #oldRoot: Buffer
  readonly #pacer: Pacer

  constructor(newRoot: Buffer, oldRoot: Buffer, signal: AbortSignal | undefined) {
    this.#newRoot = newRoot
    this.#oldRoot = oldRoot
    this.#pacer = new Pacer(signal)
  }

  #push(pathRaw: Buffer, kind: ChangeKind): void {
    this.changes.push({ path: pathRaw.toString('utf8'), pathRaw, kind })
  }

  #list(root: Buffer, rel: Buffer): Buffer[] {
    try {
      return readdirSync(Buffer.concat([root, rel]), { encoding: 'buffer' }).sort((a, b) =>
        Buffer.compare(a, b),
      )
    } catch (err) {
      throw ioError(err, rel)
    }
  }

  /** lstat; undefined when the node has gone (Docker's os.IsNotExist). */
  #lstat(root: Buffer, rel: Buffer): BigIntStats | undefined {
    try {
      return lstatSync(Buffer.concat([root, rel]), { bigint: true, throwIfNoEntry: false })
    } catch (err) {
      throw ioError(err, rel)
    }
  }

  /**
   * A node only in the new tree: it and everything below it are Adds. Below it only the
   * directories matter, which readdir's file types tell without an lstat per node.
   */
  async added(rel: Buffer, isDirectory: boolean): Promise<void> {
    this.#push(rel, 'A')
    if (!isDirectory) return
    let entries: Dirent<Buffer>[]
    try {
      const path = Buffer.concat([this.#newRoot, rel])
      entries = readdirSync(path, { encoding: 'buffer', withFileTypes: true })
    } catch (err) {
      throw ioError(err, rel)
    }
    if (this.#pacer.count(entries.length + 1)) await this.#pacer.yield()
    for (const e of entries) {
      const child = join(rel, e.name)
      if (e.isDirectory()) await this.added(child, true)
      // overlayfs lists a whiteout of a directory it does not merge, but lstat finds nothing
      else if (!e.isCharacterDevice() || this.#lstat(this.#newRoot, child) !== undefined)
        this.#push(child, 'A')
    }
  }

  /** The children of `rel`, a directory in the new tree (and in the old one if `oldIsDir`). */
  async compareDir(rel: Buffer, oldIsDir: boolean): Promise<void> {
    const news = this.#list(this.#newRoot, rel)
    const olds = oldIsDir ? this.#list(this.#oldRoot, rel) : []
    if (this.#pacer.count(2)) await this.#pacer.yield()
    let i = 0
    let j = 0
    while (i < news.length || j < olds.length) {
      const c = i === news.length ? 1 : j === olds.length ? -1 : Buffer.compare(news[i]!, olds[j]!)
      if (c > 0) {
        // Only what lstat finds was deleted (a listed overlayfs whiteout is not there).
        const child = join(rel, olds[j++]!)
        if (this.#lstat(this.#oldRoot, child) !== undefined) this.#push(child, 'D')
        if (this.#pacer.count(1)) await this.#pacer.yield()
        continue
      }
      const child = join(rel, news[i++]!)
      const n = this.#lstat(this.#newRoot, child)
      let o: BigIntStats | undefined
      if (c === 0) {
        j++
        o = this.#lstat(this.#oldRoot, child)
      }
      if (this.#pacer.count(2)) await this.#pacer.yield()
      if (n === undefined) {
        if (o !== undefined) this.#push(child, 'D')
      } else if (o === undefined) {
        await this.added(child, isDir(n))
      } else if (n.ino !== o.ino || n.dev !== o.dev) {
        await this.#compareNode(child, o, n)
      }
    }
  }

  async #compareNode(rel: Buffer, o: BigIntStats, n: BigIntStats): Promise<void> {
    const oldHost = Buffer.concat([this.#oldRoot, rel])
    const newHost = Buffer.concat([this.#newRoot, rel])
    const modified = nodeModified(o, n, oldHost, newHost, rel)
    if (modified) this.#push(rel, 'C')
    if (!isDir(n)) return
    const before = this.changes.length
    await this.compareDir(rel, isDir(o))
    // A directory holding changes is part of the diff (its mode and owner travel with them);
    // the final sort puts it before its children.
    if (!modified && this.changes.length > before) this.#push(rel, 'C')
  }
}

/** A directory argument as path bytes, without a trailing slash. */
export function rootPath(dir: string): Buffer {
  const b = Buffer.from(dir)
  return b.length > 1 && b[b.length - 1] === 0x2f ? b.subarray(0, -1) : b
}

/**
 * What changed from `oldDir` to `newDir` (everything is added when `oldDir` is omitted):
 * Adds, Modifies and Deletes sorted by path bytes, paths absolute (`/etc/hosts`), the root
 * never included. A deleted directory is one Delete; an added one is an Add for it and each
 * node below it. Fails with ARCHIVE_EXPORT_FAILED when a directory cannot be read.
 */
export async function changes(
  newDir: string,
  oldDir?: string,
  options: ChangesOptions = {},
): Promise<Change[]> {
  options.signal?.throwIfAborted()
  const newRoot = rootPath(newDir)
  const oldRoot = rootPath(oldDir ?? newDir)
  const w = new Walker(newRoot, oldRoot, options.signal)
  const rootStat = (root: Buffer): BigIntStats => {
    try {
      return lstatSync(root, { bigint: true })
    } catch (err) {
      throw ioError(err, Buffer.alloc(0))
    }
  }
  const n = rootStat(newRoot)
  if (!isDir(n)) throw new TypeError(`Cannot compare trees: "${newDir}" is not a directory`)
  const oldIsDir = oldDir !== undefined && isDir(rootStat(oldRoot))
  await w.compareDir(Buffer.alloc(0), oldIsDir)
  return w.changes.sort(byPath)
}

/**
 * Bytes the added and modified nodes take: Docker's ChangesSize (SPEC.md §6.8). Non-directories
 * only, lstat's size (a symlink counts its target's length), a hard-linked inode once. Nodes
 * that cannot be lstat'ed are left out, as Docker does.
 */
export function changesSize(dir: string, changes: readonly Change[]): number {
  const root = rootPath(dir)
  const seen = new Set<string>()
  let size = 0
  for (const c of changes) {
    if (c.kind === 'D') continue
    let st: BigIntStats | undefined
    try {
      st = lstatSync(Buffer.concat([root, c.pathRaw]), { bigint: true, throwIfNoEntry: false })
    } catch (err) {
      debug('changesSize: cannot lstat %s: %s', c.path, String(err))
    }
    if (st === undefined || isDir(st)) continue
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      if (seen.has(key)) continue
      seen.add(key)
    }
    size += Number(st.size)
  }
  return size
}
