/**
 * The length of each registered tar, by DiffID, under `<root>/layerstore/tar-size/`: what
 * saving a layer needs before its first byte (a tar header carries the size), otherwise
 * summed from the whole tar-split metadata (0.7 s for a 45k-entry layer). Equal DiffIDs are
 * equal bytes, so an entry is never stale. Best effort: a missing or unreadable entry is
 * computed again; entries are created whole (O_EXCL, one write) and never rewritten. Under the
 * store's lock, an entry is made after a layer's record is committed and removed when the
 * last layer with its DiffID is deleted; a sweep prunes what a crash left in between.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { digestHex, type DiffId } from '../digest/digest.js'

export class TarSizeCache {
  readonly #dir: string

  constructor(root: string) {
    this.#dir = join(root, 'layerstore', 'tar-size')
  }

  get(diffId: DiffId): number | undefined {
    let text: string
    try {
      text = readFileSync(join(this.#dir, digestHex(diffId)), 'utf8')
    } catch {
      return undefined
    }
    return /^[0-9]{1,16}$/.test(text) ? Number(text) : undefined
  }

  set(diffId: DiffId, size: number): void {
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 })
      writeFileSync(join(this.#dir, digestHex(diffId)), String(size), { flag: 'wx', mode: 0o600 })
    } catch {
      // Present already, or not writable: the size is computed when needed.
    }
  }

  /** Removes the entry of `diffId` (no layer has it any more). */
  forget(diffId: DiffId): void {
    rmSync(join(this.#dir, digestHex(diffId)), { force: true })
  }

  /** Removes the entries of DiffIDs not in `keep`. */
  prune(keep: ReadonlySet<DiffId>): void {
    const hexes = new Set([...keep].map(digestHex))
    let names: string[]
    try {
      names = readdirSync(this.#dir)
    } catch {
      return
    }
    for (const name of names) if (!hexes.has(name)) rmSync(join(this.#dir, name), { force: true })
  }
}
