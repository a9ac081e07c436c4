import { PathFileGetter } from '../../tarsplit/file-getter.js'
import { FileMissingError } from '../../tarsplit/errors.js'
import type { FileGetCloser } from '../types.js'
import type { BatchRead } from '../../tarsplit/entry.js'

/**
 * A layer's files for tar-split assembly: from diff/, where its tar put them. A name that
 * only resolves in the merged view (its parent is a symlink in a lower layer) is read from a
 * read-only mount of the layer, made on first need and released by close().
 */
export class Overlay2FileGetter implements FileGetCloser {
  readonly #diff: PathFileGetter
  readonly #mount: () => Promise<string>
  readonly #unmount: () => Promise<void>
  #merged: Promise<PathFileGetter> | undefined

  constructor(diff: string, mount: () => Promise<string>, unmount: () => Promise<void>) {
    this.#diff = new PathFileGetter(diff)
    this.#mount = mount
    this.#unmount = unmount
  }

  #fallback(): Promise<PathFileGetter> {
    this.#merged ??= this.#mount().then((root) => new PathFileGetter(root))
    return this.#merged
  }

  async #either<T>(fn: (g: PathFileGetter) => Promise<T>): Promise<T> {
    try {
      return await fn(this.#diff)
    } catch (err) {
      if (!(err instanceof FileMissingError)) throw err
      return fn(await this.#fallback())
    }
  }

  async *get(name: Buffer, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    // Only the opening can fail over: once bytes are out, the file is the one being read.
    const first = await this.#either(async (g) => {
      const it = g.get(name, size, signal)[Symbol.asyncIterator]()
      return { it, r: await it.next() }
    })
    for (let r = first.r; r.done !== true; r = await first.it.next()) yield r.value
  }
  readWhole(name: Buffer, size: number): Promise<Buffer> {
    return this.#either((g) => g.readWhole(name, size))
  }
  readInto(name: Buffer, size: number, dest: Uint8Array, offset: number): Promise<number> {
    return this.#either((g) => g.readInto(name, size, dest, offset))
  }
  /** From diff/ only: what is not there, assembly reads with readInto, which falls back. */
  readBatch(reads: readonly BatchRead[], dest: Uint8Array): Promise<(number | undefined)[]> {
    return this.#diff.readBatch(reads, dest)
  }
  readAt(
    name: Buffer,
    position: number,
    dest: Uint8Array,
    offset: number,
    length: number,
  ): Promise<number> {
    return this.#either((g) => g.readAt(name, position, dest, offset, length))
  }
  async close(): Promise<void> {
    if (this.#merged === undefined) return
    await this.#merged.catch(() => undefined)
    await this.#unmount()
  }
}

/** The overlay2 directories and mounts; {@link createOverlay2Driver} adds the diff. */
