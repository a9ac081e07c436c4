/**
 * Where the names of a layer tar land on disk: resolves entry parents inside the target
 * directory as if it were `/` (chroot-style, without chroot) and creates missing parents.
 *
 * - `..` never climbs above the root; symlinks met on the way, absolute or relative, are
 *   followed inside the root, never out of it (at most 255 per name: ELOOP).
 * - In overlay mode the target is the upper layer of an overlayfs stack and `lowers` are the
 *   layers below it (top first). Names resolve in the *merged* view, as the kernel will show
 *   it: a parent that only a lower layer has is copied up (mode, owner, xattrs), a symlink in
 *   a lower layer is followed, whiteouts and opaque directories hide what is below them.
 *   Without lowers the two modes resolve alike.
 *
 * All calls are synchronous: resolution is a few lstat calls from the page cache, cheaper
 * than a thread-pool round trip each. Resolved directories are cached by name; the applier
 * calls {@link LayerRoot.invalidate} whenever it removes a directory or a symlink.
 */
import { lstatSync, readlinkSync, rmSync, type Stats } from 'node:fs'
import { sys } from '../internal/sys.js'
import { components } from '../internal/root-resolver.js'

const SLASH = 0x2f
const MAX_SYMLINKS = 255
export const OPAQUE_XATTR = 'trusted.overlay.opaque'

/** A directory of the merged view: its path in the target and in each lower that shows through. */
export interface ResolvedDir {
  /** Host path of the directory in the target (it exists). */
  readonly host: Buffer
  /** Relative path in the root after symlinks (latin1 text, '' for the root). */
  readonly key: string
  /** The same directory in lower layers whose content shows through, top first. */
  readonly lowers: readonly Buffer[]
  /** The group a file created in it gets: its own with setgid, else the process's. */
  readonly newFileGid: number
  /** It has the setgid bit, which a directory created in it inherits. */
  readonly setgid: boolean
  /** Made by this apply: it holds only what the applier created in it since. */
  readonly fresh: boolean
}

const EGID = process.getegid?.() ?? 0
const S_ISGID = 0o2000

/** What a directory passes on to what is created in it, from its mode and group. */
export function dirGroup(mode: number, gid: number): { newFileGid: number; setgid: boolean } {
  const setgid = (mode & S_ISGID) !== 0
  return { newFileGid: setgid ? gid : EGID, setgid }
}

function statGroup(st: Stats): { newFileGid: number; setgid: boolean } {
  return dirGroup(st.mode, st.gid)
}

/** Why a name cannot be resolved; the applier turns it into a coded error naming the entry. */
export class ResolveError extends Error {
  readonly errno: 'ELOOP' | 'ENOTDIR'
  constructor(errno: 'ELOOP' | 'ENOTDIR', message: string) {
    super(message)
    this.errno = errno
  }
}

/**
 * How an implied parent directory is made (the applier owns ownership and modes). `key` is its
 * resolved relative path; the applier may throw to stop the resolution.
 */
export type MakeDir = (
  host: Buffer,
  key: string,
  copyOf: { host: Buffer; stat: Stats } | undefined,
) => void

export function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.of(SLASH), name])
}

const isDotDot = (c: Buffer): boolean => c.length === 2 && c[0] === 0x2e && c[1] === 0x2e

/** A 0/0 character device: overlayfs's whiteout. */
export function isWhiteoutDevice(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0
}

export function isOpaque(host: Buffer): boolean {
  const v = sys.lgetxattr(host, OPAQUE_XATTR)
  return v !== undefined && v.length === 1 && v[0] === 0x79 // 'y'
}

export function lstatOrUndefined(host: Buffer): Stats | undefined {
  try {
    return lstatSync(host, { throwIfNoEntry: false })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}

export class LayerRoot {
  readonly root: ResolvedDir
  readonly overlay: boolean
  readonly #makeDir: MakeDir
  /** Entry parent names (latin1) and resolved keys → directories. */
  readonly #cache = new Map<string, ResolvedDir>()

  constructor(target: Buffer, overlay: boolean, lowers: readonly Buffer[], makeDir: MakeDir) {
    this.overlay = overlay
    this.#makeDir = makeDir
    // overlayfs ignores the opaque xattr on a layer's root: so does the merged view.
    const visible = overlay ? lowers : []
    this.root = {
      host: target,
      key: '',
      lowers: visible,
      ...statGroup(lstatSync(target)),
      fresh: false,
    }
  }

  /** Forgets resolved directories: the tree changed under them. */
  invalidate(): void {
    this.#cache.clear()
  }

  /** The root's lowers change when an opaque marker is set on it. */
  setRootOpaque(): void {
    ;(this.root as { lowers: readonly Buffer[] }).lowers = []
    this.invalidate()
  }

  /**
   * Remembers a directory the applier just created, so children skip lookups. `group` is what
   * the applier made of its mode and group (see dirGroup): it knows, no stat needed.
   */
  remember(
    parent: ResolvedDir,
    name: Buffer,
    host: Buffer,
    group: { newFileGid: number; setgid: boolean },
  ): void {
    const key = childKey(parent.key, name)
    const lowers = this.#childLowers(parent, name, host)
    this.#cache.set(key, { host, key, lowers, ...group, fresh: true })
  }

  /**
   * The directory `dir` (a cleaned relative name, latin1 text) in the target, every missing
   * component created. Throws ResolveError for a loop or a non-directory on the way.
   */
  dir(name: string): ResolvedDir {
    if (name === '') return this.root
    const hit = this.#cache.get(name)
    if (hit !== undefined) return hit
    const resolved = this.#walk(components(Buffer.from(name, 'latin1')), true)!
    this.#cache.set(name, resolved)
    return resolved
  }

  /** Like {@link dir}, but creates nothing: undefined when a component does not exist. */
  existingDir(name: string): ResolvedDir | undefined {
    if (name === '') return this.root
    return this.#cache.get(name) ?? this.#walk(components(Buffer.from(name, 'latin1')), false)
  }

  /**
   * Looks `name` up in the lowers of `dir` (merged view): the first layer that has it, or
   * undefined when none does or a whiteout hides it.
   */
  lowerEntry(dir: ResolvedDir, name: Buffer): { host: Buffer; stat: Stats } | undefined {
    for (const lower of dir.lowers) {
      const host = join(lower, name)
      const st = lstatOrUndefined(host)
      if (st === undefined) continue
      return isWhiteoutDevice(st) ? undefined : { host, stat: st }
    }
    return undefined
  }

  /** The lowers of child directory `name` of `dir`, which exists in the target. */
  #childLowers(dir: ResolvedDir, name: Buffer, host: Buffer): readonly Buffer[] {
    if (dir.lowers.length === 0 || isOpaque(host)) return []
    const out: Buffer[] = []
    for (const lower of dir.lowers) {
      const h = join(lower, name)
      const st = lstatOrUndefined(h)
      if (st === undefined) continue
      if (!st.isDirectory()) break // a file, a symlink or a whiteout ends the merge
      out.push(h)
      if (isOpaque(h)) break
    }
    return out
  }

  #walk(comps: Buffer[], create: boolean): ResolvedDir | undefined {
    const pending = comps.reverse() // a stack: next component last
    const path: ResolvedDir[] = [this.root] // resolved directories from the root down
    let links = 0
    while (pending.length > 0) {
      const comp = pending.pop()!
      if (isDotDot(comp)) {
        if (path.length > 1) path.pop()
        continue
      }
      const dir = path[path.length - 1]!
      const key = childKey(dir.key, comp)
      const cached = this.#cache.get(key)
      if (cached !== undefined) {
        path.push(cached)
        continue
      }
      const host = join(dir.host, comp)
      let st = lstatOrUndefined(host)
      let copyOf: { host: Buffer; stat: Stats } | undefined
      let opaque = false
      if (st !== undefined && this.overlay && isWhiteoutDevice(st)) {
        // Deleted in this layer and now needed again: a fresh directory hiding the lowers.
        if (!create) return undefined
        rmSync(host)
        st = undefined
        opaque = true
      } else if (st === undefined && !this.overlay) {
        // created below
      } else if (st === undefined) {
        copyOf = this.lowerEntry(dir, comp)
        if (copyOf?.stat.isSymbolicLink()) {
          if (++links > MAX_SYMLINKS) throw loop()
          const target = readlinkSync(copyOf.host, { encoding: 'buffer' })
          if (target[0] === SLASH) path.length = 1
          pending.push(...components(target).reverse())
          continue
        }
        if (copyOf !== undefined && !copyOf.stat.isDirectory())
          throw new ResolveError('ENOTDIR', `not a directory: "${key}"`)
      }
      if (st === undefined) {
        if (!create && copyOf === undefined) return undefined
        this.#makeDir(host, key, copyOf)
        if (opaque) sys.lsetxattr(host, OPAQUE_XATTR, Buffer.from('y'))
        const lowers = opaque ? [] : this.#childLowers(dir, comp, host)
        const made = { host, key, lowers, ...statGroup(lstatSync(host)), fresh: true }
        this.#cache.set(key, made)
        path.push(made)
        continue
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw loop()
        const target = readlinkSync(host, { encoding: 'buffer' })
        if (target[0] === SLASH) path.length = 1
        pending.push(...components(target).reverse())
        continue
      }
      if (!st.isDirectory()) throw new ResolveError('ENOTDIR', `not a directory: "${key}"`)
      const lowers = this.#childLowers(dir, comp, host)
      const found = { host, key, lowers, ...statGroup(st), fresh: false }
      this.#cache.set(key, found)
      path.push(found)
    }
    return path[path.length - 1]!
  }
}

function childKey(parent: string, name: Buffer): string {
  const n = name.toString('latin1')
  return parent === '' ? n : `${parent}/${n}`
}

function loop(): ResolveError {
  return new ResolveError('ELOOP', 'too many levels of symbolic links')
}
