/**
 * Resolves tar names inside a root directory as if the root were `/`: `..` never climbs
 * above it and symlinks, absolute or relative, are followed inside it, never out of it
 * (chroot-style, without chroot). Paths are Buffers, so names that are not UTF-8 work.
 *
 * Resolved directories are cached: resolving 45k names in a deep tree costs one lstat per
 * distinct directory, not per name. The cache assumes nobody swaps a checked directory for a
 * symlink while the resolver is in use (the tree belongs to the caller).
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs'
import { lstat, readlink } from 'node:fs/promises'

const SLASH = 0x2f
const MAX_SYMLINKS = 255

export class ResolveError extends Error {
  readonly errno: 'ELOOP' | 'ENOTDIR'
  constructor(errno: 'ELOOP' | 'ENOTDIR', message: string) {
    super(message)
    this.errno = errno
  }
}

/** Splits a path into its components, dropping empty ones and `.`. */
export function components(p: Buffer): Buffer[] {
  const out: Buffer[] = []
  let start = 0
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === SLASH) {
      if (i > start && !(i - start === 1 && p[start] === 0x2e)) out.push(p.subarray(start, i))
      start = i + 1
    }
  }
  return out
}

const isDotDot = (c: Buffer): boolean => c.length === 2 && c[0] === 0x2e && c[1] === 0x2e
const isDot = (c: Buffer): boolean => c.length === 1 && c[0] === 0x2e
const SLASH_BUFFER = Buffer.of(SLASH)

export class RootResolver {
  readonly root: Buffer
  /**
   * Relative directory paths (latin1 keys) known to be real directories, or being checked:
   * concurrent resolutions of names in one new directory share one lstat.
   */
  readonly #dirs = new Map<string, Promise<boolean>>()
  /** The settled part of #dirs: checked without waiting. */
  readonly #confirmed = new Set<string>()
  /**
   * Host paths of directories by their name as given (latin1 key): a name in a directory
   * seen before resolves with one lookup and one concat instead of a walk (a layer's 45k
   * names come grouped by directory).
   */
  readonly #parents = new Map<string, Buffer>()
  #lastParent: { name: Buffer; host: Buffer } | undefined

  /** Metadata calls are made synchronously (see the constructor). */
  readonly #sync: boolean

  /**
   * `sync`: lstat and readlink block instead of taking a thread-pool round trip each (from
   * the page cache, a few microseconds against ~100); for callers that read files
   * synchronously anyway.
   */
  constructor(root: string | Buffer, options: { sync?: boolean } = {}) {
    this.#sync = options.sync === true
    this.root = Buffer.isBuffer(root) ? root : Buffer.from(root)
  }

  /**
   * Host path of `name` inside the root. Every parent is resolved; the last component is
   * followed too when `followLast` (a symlink's target, confined to the root), else left as is.
   * A missing component ends the walk: the rest is joined as given (creation paths).
   */
  async resolve(name: Buffer, followLast = false): Promise<Buffer> {
    if (followLast) return this.#walk(name, true)
    const known = this.resolveKnown(name)
    if (known !== undefined) return known
    const split = splitLast(name)
    if (split === undefined) return this.#walk(name, false)
    const parent = await this.#directory(split.parent)
    // Not a directory (missing, a file): the walk gives its answer or its error, uncached.
    if (parent === undefined) return this.#walk(name, false)
    this.#parents.set(split.parent.toString('latin1'), parent)
    return joinHost(parent, split.base)
  }

  /**
   * resolve(name) without waiting, when the name's directory was resolved before (else
   * undefined): for callers resolving thousands of names, most in directories seen already.
   */
  resolveKnown(name: Buffer): Buffer | undefined {
    const split = splitLast(name)
    if (split === undefined) return undefined
    const { parent: parentName, base } = split
    let parent: Buffer | undefined
    // Names come grouped by directory: most share the previous one's, compared as bytes.
    if (this.#lastParent !== undefined && parentName.equals(this.#lastParent.name)) {
      parent = this.#lastParent.host
    } else {
      parent = this.#parents.get(parentName.toString('latin1'))
      if (parent === undefined) return undefined
      this.#lastParent = { name: parentName, host: parent }
    }
    return joinHost(parent, base)
  }

  /** Host path of `name` when it is a directory (followed if a symlink), else undefined. */
  async #directory(name: Buffer): Promise<Buffer | undefined> {
    const host = await this.#walk(name, true)
    try {
      return (await this.#lstat(host)).isDirectory() ? host : undefined
    } catch {
      return undefined
    }
  }

  async #walk(name: Buffer, followLast: boolean): Promise<Buffer> {
    const pending = components(name).reverse() // a stack: next component last
    const parts: Buffer[] = [] // resolved relative components
    let links = 0
    let missing = false
    while (pending.length > 0) {
      const comp = pending.pop()!
      if (isDotDot(comp)) {
        parts.pop()
        continue
      }
      parts.push(comp)
      const last = pending.length === 0
      if (missing || (last && !followLast)) continue
      const key = last ? '' : joinKey(parts)
      if (!last) {
        if (this.#confirmed.has(key)) continue
        const known = this.#dirs.get(key)
        if (known !== undefined && (await known)) continue
      }
      const host = this.#host(parts)
      let st
      const check = this.#lstat(host)
      if (!last) {
        const isDir = check.then(
          (s) => {
            if (s.isDirectory()) this.#confirmed.add(key)
            return s.isDirectory()
          },
          () => false,
        )
        this.#dirs.set(key, isDir)
      }
      try {
        st = await check
      } catch (err) {
        if (!last) this.#dirs.delete(key)
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          missing = true
          continue
        }
        throw err
      }
      if (!last && !st.isDirectory()) this.#dirs.delete(key)
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS)
          throw new ResolveError('ELOOP', 'Too many levels of symbolic links')
        const target = this.#sync
          ? readlinkSync(host, { encoding: 'buffer' })
          : await readlink(host, { encoding: 'buffer' })
        parts.pop()
        if (target[0] === SLASH) parts.length = 0
        pending.push(...components(target).reverse())
        continue
      }
      if (!last && !st.isDirectory()) throw new ResolveError('ENOTDIR', `Not a directory: "${key}"`)
    }
    return this.#host(parts)
  }

  async #lstat(host: Buffer): Promise<Stats> {
    return this.#sync ? lstatSync(host) : lstat(host)
  }

  /** Forgets cached directories (after the tree was changed). */
  invalidate(): void {
    this.#dirs.clear()
    this.#confirmed.clear()
    this.#parents.clear()
    this.#lastParent = undefined
  }

  #host(parts: Buffer[]): Buffer {
    if (parts.length === 0) return this.root
    const list: Buffer[] = [this.root]
    for (const p of parts) list.push(SLASH_BUFFER, p)
    return Buffer.concat(list)
  }
}

/**
 * A name's directory and last component, when the name can be resolved from its directory's
 * host path (its last component is a plain name, not `.` or `..`).
 */
function splitLast(name: Buffer): { parent: Buffer; base: Buffer } | undefined {
  let end = name.length
  while (end > 0 && name[end - 1] === SLASH) end--
  const slash = name.lastIndexOf(SLASH, end - 1)
  const base = name.subarray(slash + 1, end)
  if (base.length === 0 || isDot(base) || isDotDot(base)) return undefined
  return { parent: name.subarray(0, Math.max(slash, 0)), base }
}

function joinHost(parent: Buffer, base: Buffer): Buffer {
  const out = Buffer.allocUnsafe(parent.length + 1 + base.length)
  parent.copy(out)
  out[parent.length] = SLASH
  base.copy(out, parent.length + 1)
  return out
}

function joinKey(parts: Buffer[]): string {
  return parts.map((p) => p.toString('latin1')).join('/')
}
