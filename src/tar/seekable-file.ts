/**
 * A file as a seekable byte source (see SeekableByteSource): read in chunks as the reader asks,
 * no read-ahead, and moved past what the reader skips without reading it. For listing a tar
 * whose entries' bodies nobody reads (an image archive's index): only the headers are read.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { SeekableByteSource } from './byte-reader.js'

export class SeekableFile implements SeekableByteSource {
  readonly #fh: FileHandle
  readonly #size: number
  readonly #chunkSize: number
  #pos = 0
  #closed = false

  private constructor(fh: FileHandle, size: number, chunkSize: number) {
    this.#fh = fh
    this.#size = size
    this.#chunkSize = chunkSize
  }

  /** Opens `path`; finishing or breaking out of the iteration closes it, as does close(). */
  static async open(path: string, chunkSize = 64 << 10): Promise<SeekableFile> {
    const fh = await open(path, 'r')
    try {
      return new SeekableFile(fh, (await fh.stat()).size, chunkSize)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      while (this.#pos < this.#size) {
        const buf = Buffer.allocUnsafe(Math.min(this.#chunkSize, this.#size - this.#pos))
        const { bytesRead } = await this.#fh.read(buf, 0, buf.length, this.#pos)
        if (bytesRead === 0) return // the file was cut since it was opened
        this.#pos += bytesRead
        yield buf.subarray(0, bytesRead)
      }
    } finally {
      await this.close()
    }
  }

  /** Closes the file (idempotent): for a reader that stopped before it started iterating. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#fh.close()
  }

  skipAhead(n: number): Promise<number> {
    const k = Math.max(0, Math.min(n, this.#size - this.#pos))
    this.#pos += k
    return Promise.resolve(k)
  }
}
