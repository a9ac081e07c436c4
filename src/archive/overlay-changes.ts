/**
 * The changes of an overlayfs upper directory (a container's writes) against the layers below
 * it, without mounting anything: the list that {@link changes} gives for the mounted trees,
 * `changes(merged, lowerMerged)`, where `merged` is the overlay of `upperDir` on `lowers` and
 * `lowerMerged` the read-only overlay of `lowers` alone. This is what Docker's overlay2 calls
 * its native diff.
 *
 * Only the upper directory is walked. A node of the old tree (the merged lowers) is looked up
 * by name in the lower layers, as the kernel resolves it: the topmost layer that has the name
 * wins; a 0/0 character device is a whiteout that hides it; a non-directory ends the merge of
 * a directory, which merges only with directories; an opaque directory (`trusted.overlay.opaque`
 * = `y`) hides what the layers below it hold. Below a directory of the upper directory that
 * does not show the lowers (it is opaque, or one above it is), every name of the old tree
 * that the upper lacks is gone: those directories are the only ones of the lowers that are
 * listed. The cost is the size of the upper directory plus a few lookups per upper node.
 *
 * Where the two walks see the same thing:
 * - A name the upper directory does not hold shows the same lower node in both trees: it is
 *   unchanged, except below a directory that does not show the lowers (a Delete).
 * - An upper whiteout is a Delete when the old tree has the name, nothing otherwise.
 * - An upper node the old tree lacks is an Add, with every node below it (whiteouts aside:
 *   nothing can be below them).
 * - An upper node the old tree has is compared as {@link changes} compares two nodes (stats
 *   and file capabilities; the merged view of a node is the upper node itself); the two trees
 *   are two mounts, never the same inode on the same device, so none is skipped.
 * - A directory holding changes is a Modify, as in {@link changes}.
 *
 * Kernel behaviours followed (Linux 6.18, checked with real mounts by the tests): the opaque
 * xattr of a layer's root, upper or lower, is ignored (the root merges every layer); a
 * directory the kernel does not merge lists its whiteouts, yet lstat finds nothing there, so
 * neither this nor {@link changes} reports them. Not supported: directories the kernel would
 * look up elsewhere (`trusted.overlay.redirect`, written with the `redirect_dir` mount option;
 * Docker's overlay2 falls back to its naive diff then): ARCHIVE_EXPORT_FAILED, compare the
 * mounted trees instead. A redirect in the bottom layer is allowed: the kernel never reads it.
 * Lower layers are taken to be layer directories as Docker and `apply` write them (kernel
 * 6.7's "xwhiteouts", regular files marked by an xattr, are not looked for).
 *
 * As in {@link changes}, fs calls are synchronous and the walk yields to the event loop every
 * few hundred of them.
 */
import { lstatSync, readdirSync, type BigIntStats, type Dirent } from 'node:fs'
import { sys } from '../internal/sys.js'
import {
  byPath,
  ioError,
  join,
  nodeModified,
  Pacer,
  rootPath,
  type ChangesOptions,
} from './changes.js'
import { ArchiveIoError } from './errors.js'
import { fileType, isDirectory as isDir, S_IFCHR } from './file-stat.js'
import { isOpaque } from './layer-root.js'
import type { Change, ChangeKind } from './types.js'

const REDIRECT_XATTR = 'trusted.overlay.redirect'

const isWhiteout = (st: BigIntStats): boolean => fileType(st) === S_IFCHR && st.rdev === 0n

/** A node of the old tree: the lower layer that shows it. */
interface OldNode {
  readonly host: Buffer
  readonly stat: BigIntStats
  /** Index of its layer in the lowers. */
  readonly layer: number
}

class UpperWalker {
  readonly changes: Change[] = []
  readonly #upper: Buffer
  /** Roots of the lower layers, top first. */
  readonly #lowers: readonly Buffer[]
  readonly #pacer: Pacer

  constructor(upper: Buffer, lowers: readonly Buffer[], signal: AbortSignal | undefined) {
    this.#upper = upper
    this.#lowers = lowers
    this.#pacer = new Pacer(signal)
  }

  async #count(calls: number): Promise<void> {
    if (this.#pacer.count(calls)) await this.#pacer.yield()
  }

  #push(pathRaw: Buffer, kind: ChangeKind): void {
    this.changes.push({ path: pathRaw.toString('utf8'), pathRaw, kind })
  }

  /** lstat; undefined when there is no such node. */
  #lstat(host: Buffer, rel: Buffer): BigIntStats | undefined {
    try {
      return lstatSync(host, { bigint: true, throwIfNoEntry: false })
    } catch (err) {
      throw ioError(err, rel)
    }
  }

  #opaque(host: Buffer, rel: Buffer): boolean {
    try {
      return isOpaque(host)
    } catch (err) {
      throw ioError(err, rel)
    }
  }

  /** Fails on a directory the kernel would redirect to another path of the lowers. */
  #refuseRedirect(host: Buffer, rel: Buffer): void {
    let value: Buffer | undefined
    try {
      value = sys.lgetxattr(host, REDIRECT_XATTR)
    } catch (err) {
      throw ioError(err, rel)
    }
    if (value !== undefined)
      throw new ArchiveIoError(
        'ARCHIVE_EXPORT_FAILED',
        'Cannot compare an overlay upper directory: a directory is redirected (redirect_dir); compare the mounted trees',
        rel.toString('utf8'),
      )
  }

  /** `rel` in the old tree's directory made of layers `olds` (top first). */
  #lookup(olds: readonly number[], rel: Buffer): OldNode | undefined {
    for (const layer of olds) {
      const host = Buffer.concat([this.#lowers[layer]!, rel])
      const stat = this.#lstat(host, rel)
      if (stat === undefined) continue
      return isWhiteout(stat) ? undefined : { host, stat, layer }
    }
    return undefined
  }

  /**
   * The layers whose directories make the old tree's node `o` at `rel` ([] for a
   * non-directory), found in the layers below its parent's (`olds`): it and the directories
   * below it, down to the first non-directory or opaque directory. The bottom layer's flags
   * matter to nothing (the kernel reads neither there).
   */
  #mergeOf(olds: readonly number[], o: OldNode, rel: Buffer): number[] {
    if (!isDir(o.stat)) return []
    const out: number[] = []
    const bottom = this.#lowers.length - 1
    /** Adds a directory to the stack; false when nothing below it can be merged. */
    const add = (layer: number, host: Buffer): boolean => {
      out.push(layer)
      if (layer === bottom) return false
      this.#refuseRedirect(host, rel)
      return !this.#opaque(host, rel)
    }
    if (!add(o.layer, o.host)) return out
    for (const layer of olds) {
      if (layer <= o.layer) continue
      const host = Buffer.concat([this.#lowers[layer]!, rel])
      const st = this.#lstat(host, rel)
      if (st === undefined) continue
      if (!isDir(st) || !add(layer, host)) break // a file, a symlink or a whiteout ends it
    }
    return out
  }

  /** An upper node the old tree lacks, and everything below it. */
  async added(rel: Buffer, host: Buffer, isDirectory: boolean): Promise<void> {
    this.#push(rel, 'A')
    if (!isDirectory) return
    this.#refuseRedirect(host, rel)
    let entries: Dirent<Buffer>[]
    try {
      entries = readdirSync(host, { encoding: 'buffer', withFileTypes: true })
    } catch (err) {
      throw ioError(err, rel)
    }
    await this.#count(entries.length + 2)
    for (const e of entries) {
      const child = join(rel, e.name)
      const childHost = join(host, e.name)
      if (e.isDirectory()) await this.added(child, childHost, true)
      else if (e.isCharacterDevice()) {
        const st = this.#lstat(childHost, child)
        if (st !== undefined && !isWhiteout(st)) this.#push(child, 'A')
      } else this.#push(child, 'A')
    }
  }

  /**
   * The children of `rel`, a directory of the upper directory. `olds`: the layers whose
   * directories make the old tree's directory there, top first ([] when the old tree has no
   * directory there). `merged`: the new tree's directory shows them too (else only the upper
   * one: names of the old tree the upper lacks are gone).
   */
  async compareDir(rel: Buffer, olds: readonly number[], merged: boolean): Promise<void> {
    const host = Buffer.concat([this.#upper, rel])
    let names: Buffer[]
    try {
      names = readdirSync(host, { encoding: 'buffer' })
    } catch (err) {
      throw ioError(err, rel)
    }
    await this.#count(1)
    const present = new Set<string>()
    for (const name of names) {
      const child = join(rel, name)
      const childHost = join(host, name)
      const n = this.#lstat(childHost, child)
      if (n === undefined) continue // gone since readdir: not a change of the upper
      present.add(name.toString('latin1'))
      const o = olds.length === 0 ? undefined : this.#lookup(olds, child)
      await this.#count(1 + olds.length)
      if (isWhiteout(n)) {
        if (o !== undefined) this.#push(child, 'D')
      } else if (o === undefined) {
        await this.added(child, childHost, isDir(n))
      } else {
        await this.#compareNode(child, childHost, n, olds, o, merged)
      }
    }
    if (olds.length > 0 && !merged) {
      for (const name of await this.#visible(olds, rel)) {
        if (!present.has(name.toString('latin1'))) this.#push(join(rel, name), 'D')
      }
    }
  }

  async #compareNode(
    rel: Buffer,
    host: Buffer,
    n: BigIntStats,
    parentOlds: readonly number[],
    o: OldNode,
    parentMerged: boolean,
  ): Promise<void> {
    const modified = nodeModified(o.stat, n, o.host, host, rel)
    if (modified) this.#push(rel, 'C')
    if (!isDir(n)) return
    this.#refuseRedirect(host, rel)
    const opaque = this.#opaque(host, rel)
    const olds = this.#mergeOf(parentOlds, o, rel)
    await this.#count(2 + olds.length * 2)
    const before = this.changes.length
    await this.compareDir(rel, olds, parentMerged && !opaque)
    if (!modified && this.changes.length > before) this.#push(rel, 'C')
  }

  /** Names the old tree's directory made of `olds` shows (whiteouts hide, the top wins). */
  async #visible(olds: readonly number[], rel: Buffer): Promise<Buffer[]> {
    const seen = new Set<string>()
    const out: Buffer[] = []
    for (const layer of olds) {
      const dir = Buffer.concat([this.#lowers[layer]!, rel])
      let entries: Dirent<Buffer>[]
      try {
        entries = readdirSync(dir, { encoding: 'buffer', withFileTypes: true })
      } catch (err) {
        throw ioError(err, rel)
      }
      await this.#count(entries.length + 1)
      for (const e of entries) {
        const key = e.name.toString('latin1')
        if (seen.has(key)) continue
        seen.add(key)
        if (e.isCharacterDevice()) {
          const st = this.#lstat(join(dir, e.name), join(rel, e.name))
          if (st === undefined || isWhiteout(st)) continue
        }
        out.push(e.name)
      }
    }
    return out
  }
}

/**
 * What changed in an overlayfs mount of `upperDir` on `lowers` (top first) from the mount of
 * `lowers` alone: the list `changes(merged, lowerMerged)` gives, from the upper directory
 * and lookups in the lowers, without mounting. Fails with ARCHIVE_EXPORT_FAILED when a
 * directory cannot be read or a directory is redirected (redirect_dir).
 */
export async function overlayChanges(
  upperDir: string,
  lowers: readonly string[],
  options: ChangesOptions = {},
): Promise<Change[]> {
  options.signal?.throwIfAborted()
  for (const dir of [upperDir, ...lowers]) {
    let st: BigIntStats
    try {
      st = lstatSync(dir, { bigint: true })
    } catch (err) {
      throw ioError(err, Buffer.alloc(0))
    }
    if (!isDir(st)) throw new TypeError(`Cannot compare trees: "${dir}" is not a directory`)
  }
  const upper = rootPath(upperDir)
  const roots = lowers.map(rootPath)
  const w = new UpperWalker(upper, roots, options.signal)
  // The kernel ignores the opaque flag of a layer's root: the root always merges them all.
  await w.compareDir(
    Buffer.alloc(0),
    roots.map((_, i) => i),
    true,
  )
  return w.changes.sort(byPath)
}
