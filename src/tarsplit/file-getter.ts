import { open, constants } from 'node:fs/promises'
import { RootResolver, ResolveError } from '../internal/root-resolver.js'
import { FileMissingError } from './errors.js'
import type { FileGetter } from './entry.js'

/** Files up to this size are read in one call. */
const WHOLE_READ = 1 << 20
const CHUNK = 1 << 20

/**
 * Reads payloads from a directory holding the layer's files (a vfs layer, an overlay mount,
 * an extracted tar). Names are resolved inside the directory, chroot-style: a name whose
 * parent is a symlink cannot reach a file outside it (Go's getter joins host paths).
 */
export class PathFileGetter implements FileGetter {
  readonly #resolver: RootResolver

  constructor(root: string | Buffer) {
    this.#resolver = new RootResolver(root)
  }

  async *get(name: Buffer, size: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const shown = name.toString('utf8')
    let fh
    try {
      const path = await this.#resolver.resolve(name, false)
      try {
        fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err
        fh = await open(
          await this.#resolver.resolve(name, true),
          constants.O_RDONLY | constants.O_NOFOLLOW,
        )
      }
    } catch (err) {
      const detail =
        err instanceof ResolveError
          ? err.message
          : ((err as NodeJS.ErrnoException).code ?? String(err))
      throw new FileMissingError(shown, detail, { cause: err })
    }
    try {
      // Read until EOF, as Go does: a longer or shorter file then fails the checksum.
      let want = size > 0 && size <= WHOLE_READ ? size + 1 : CHUNK
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
}
