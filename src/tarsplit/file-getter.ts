import { open, constants, type FileHandle } from 'node:fs/promises'
import { RootResolver, ResolveError } from '../internal/root-resolver.js'
import { FileMissingError } from './errors.js'
import type { FileGetter } from './entry.js'

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
    this.#resolver = new RootResolver(root)
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

  async readWhole(name: Buffer, size: number): Promise<Buffer> {
    const fh = await this.#open(name)
    try {
      // One byte more than expected, so that a grown file is seen (and fails its checksum).
      const buf = Buffer.allocUnsafe(size + 1)
      let got = 0
      for (;;) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, null)
        if (bytesRead === 0) return buf.subarray(0, got)
        got += bytesRead
        if (got === buf.length) {
          // Larger than recorded: read the rest too, as Go would stream it.
          const rest: Buffer[] = [buf]
          for (;;) {
            const more = Buffer.allocUnsafe(CHUNK)
            const r = await fh.read(more, 0, CHUNK, null)
            if (r.bytesRead === 0) return Buffer.concat(rest)
            rest.push(more.subarray(0, r.bytesRead))
          }
        }
      }
    } finally {
      await fh.close()
    }
  }
}
