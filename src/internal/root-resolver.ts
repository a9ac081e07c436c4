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

export class RootResolver {
  readonly root: Buffer
  /**
   * Relative directory paths (latin1 keys) known to be real directories, or being checked:
   * concurrent resolutions of names in one new directory share one lstat.
   */
  readonly #dirs = new Map<string, Promise<boolean>>()
  /** The settled part of #dirs: checked without waiting. */
  readonly #confirmed = new Set<string>()

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
  }

  #host(parts: Buffer[]): Buffer {
    if (parts.length === 0) return this.root
    const list: Buffer[] = [this.root]
    for (const p of parts) list.push(Buffer.of(SLASH), p)
    return Buffer.concat(list)
  }
}

function joinKey(parts: Buffer[]): string {
  return parts.map((p) => p.toString('latin1')).join('/')
}
