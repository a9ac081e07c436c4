import { open, constants, type FileHandle } from 'node:fs/promises'
import { closeSync, openSync, readSync } from 'node:fs'
import { RootResolver, ResolveError } from '../internal/root-resolver.js'
import { FileMissingError } from './errors.js'
import type { BatchRead, FileGetter } from './entry.js'
import { sys } from '../internal/sys.js'

const CHUNK = 1 << 20

/**
 * Reads payloads from a directory holding the layer's files (a vfs layer, an overlay mount,
 * an extracted tar). Names are resolved inside the directory, chroot-style: a name whose
 * parent is a symlink cannot reach a file outside it (Go's getter joins host paths).
 * Files are read until EOF, as Go does: a longer or shorter file then fails its checksum.
 */
export class PathFileGetter implements FileGetter {
  readonly #resolver: RootResolver

  constructor(root: string | Buffer) {
    this.#resolver = new RootResolver(root, { sync: true })
  }

  async #open(name: Buffer): Promise<FileHandle> {
    try {
      const path = await this.#resolver.resolve(name, false)
      try {
        return await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err
        return await open(
          await this.#resolver.resolve(name, true),
          constants.O_RDONLY | constants.O_NOFOLLOW,
        )
      }
    } catch (err) {
      const detail =
        err instanceof ResolveError
          ? err.message
          : ((err as NodeJS.ErrnoException).code ?? String(err))
      throw new FileMissingError(name.toString('utf8'), detail, { cause: err })
    }
  }

  async *get(name: Buffer, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const fh = await this.#open(name)
    try {
      let want = size > 0 && size < CHUNK ? size + 1 : CHUNK
      for (;;) {
        signal?.throwIfAborted()
        const buf = Buffer.allocUnsafe(want)
        const { bytesRead } = await fh.read(buf, 0, want, null)
        if (bytesRead === 0) return
        yield bytesRead === want ? buf : buf.subarray(0, bytesRead)
        want = CHUNK
      }
    } finally {
      await fh.close()
    }
  }

  /**
   * Small files are read with synchronous calls: from the page cache that is several times
   * cheaper than three thread-pool round trips (open, read, close) per file, and one file of
   * at most SMALL_FILE bytes blocks the event loop for well under a millisecond.
   */
  async readWhole(name: Buffer, size: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(size + 1)
    const n = await this.readInto(name, size, buf, 0)
    if (n <= size) return buf.subarray(0, n)
    const fd = await this.#openSync(name)
    try {
      return Buffer.concat([buf.subarray(0, n), ...readRest(fd, n)])
    } finally {
      closeSync(fd)
    }
  }

  async readInto(name: Buffer, size: number, dest: Uint8Array, offset: number): Promise<number> {
    const fd = await this.#openSync(name)
    try {
      let got = 0
      const want = size + 1
      while (got < want) {
        const n = readSync(fd, dest, offset + got, want - got, null)
        if (n === 0) break
        got += n
      }
      return got
    } finally {
      closeSync(fd)
    }
  }

  /** Small files in one job of the thread pool (sys.readFiles), named as readInto names them. */
  async readBatch(reads: readonly BatchRead[], dest: Uint8Array): Promise<(number | undefined)[]> {
    const out: (number | undefined)[] = reads.map(() => undefined)
    const index: number[] = [] // reads with a path, in order
    const paths: Buffer[] = []
    const layout: number[] = []
    for (const [i, r] of reads.entries()) {
      let path = this.#resolver.resolveKnown(r.name)
      if (path === undefined) {
        try {
          path = await this.#resolver.resolve(r.name, false)
        } catch {
          continue // readInto explains
        }
      }
      if (path.includes(0)) continue
      index.push(i)
      paths.push(path)
      layout.push(r.offset, r.size)
    }
    const results = await sys.readFiles(paths, dest, Float64Array.from(layout))
    for (const [k, i] of index.entries()) if (results[k]! >= 0) out[i] = results[k]
    return out
  }

  /** A piece of a large file (at most a batch, 2 MiB), read like readInto. */
  async readAt(
    name: Buffer,
    position: number,
    dest: Uint8Array,
    offset: number,
    length: number,
  ): Promise<number> {
    const fd = await this.#openSync(name)
    try {
      return readSync(fd, dest, offset, length, position)
    } finally {
      closeSync(fd)
    }
  }

  async #openSync(name: Buffer): Promise<number> {
    try {
      return openSync(
        await this.#resolver.resolve(name, false),
        constants.O_RDONLY | constants.O_NOFOLLOW,
      )
    } catch {
      // A symlink, a missing file, a bad parent: the slow path sorts it out or explains it.
      await (await this.#open(name)).close()
      return openSync(
        await this.#resolver.resolve(name, true),
        constants.O_RDONLY | constants.O_NOFOLLOW,
      )
    }
  }
}

/** What is left of a file that grew past its recorded size (it will fail its checksum). */
function readRest(fd: number, from: number): Buffer[] {
  const parts: Buffer[] = []
  for (let position = from; ;) {
    const more = Buffer.allocUnsafe(CHUNK)
    const n = readSync(fd, more, 0, CHUNK, position)
    position += n
    if (n === 0) return parts
    parts.push(more.subarray(0, n))
  }
}
