/**
 * A pull reader over a stream of chunks: hands out exact-length reads and chunk views, keeps
 * the stream offset, and, when asked, a copy of selected bytes ("raw accounting", for
 * tar-split, which must record every byte that is not file data).
 */
const EMPTY = new Uint8Array(0)

/**
 * Any source of byte chunks: a Node Readable, an async generator, an array of buffers.
 * As with any Node stream, a chunk must not be modified after it has been handed out: the
 * reader keeps views of it, not copies.
 */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>
  #chunk: Uint8Array = EMPTY
  #pos = 0
  #offset = 0
  #done = false
  readonly #signal: AbortSignal | undefined
  /**
   * Raw bytes recorded since the last take: copies, so that the reader holds on to no chunk
   * but the current one (a source may then recycle its buffers, see fileChunks' ring).
   */
  raw: Uint8Array[] = []

  constructor(source: ByteSource, signal?: AbortSignal) {
    this.#it =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()
    this.#signal = signal
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset
  }

  /** Loads the next non-empty chunk; false at end of stream. */
  async #fill(): Promise<boolean> {
    while (this.#pos >= this.#chunk.length) {
      if (this.#done) return false
      this.#signal?.throwIfAborted()
      const r = await this.#it.next()
      if (r.done === true) {
        this.#done = true
        this.#chunk = EMPTY
        this.#pos = 0
        return false
      }
      const v = r.value
      // Strings from a text-mode stream are a caller's mistake, but cheap to tolerate.
      this.#chunk = v instanceof Uint8Array ? v : Buffer.from(String(v))
      this.#pos = 0
    }
    return true
  }

  /**
   * Up to `max` bytes, from the current chunk only (a view, not a copy); empty at the end of
   * the stream.
   */
  async readSome(max: number): Promise<Uint8Array> {
    if (max <= 0) return EMPTY
    if (this.#pos >= this.#chunk.length && !(await this.#fill())) return EMPTY
    const n = Math.min(max, this.#chunk.length - this.#pos)
    const out = this.#view(n)
    this.#pos += n
    this.#offset += n
    return out
  }

  /** A plain Uint8Array view (cheaper to make than a Buffer's subarray). */
  #view(n: number): Uint8Array {
    const c = this.#chunk
    return new Uint8Array(c.buffer, c.byteOffset + this.#pos, n)
  }

  /**
   * Exactly `n` bytes, or fewer only at the end of the stream (Go's io.ReadFull; the caller
   * tells a clean end, length 0, from a cut one). A view when the bytes lie in one chunk.
   */
  async readFull(n: number, raw = false): Promise<Uint8Array> {
    const avail = this.#chunk.length - this.#pos
    let out: Uint8Array
    if (avail >= n) {
      out = this.#view(n)
      this.#pos += n
      this.#offset += n
    } else {
      const parts: Uint8Array[] = []
      let got = 0
      while (got < n) {
        const part = await this.readSome(n - got)
        if (part.length === 0) break
        parts.push(part)
        got += part.length
      }
      out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, got)
    }
    if (raw && out.length > 0) this.raw.push(out.slice())
    return out
  }

  /** Skips up to `n` bytes (recording them when `raw`); returns how many were skipped. */
  async skip(n: number, raw = false): Promise<number> {
    let left = n
    while (left > 0) {
      const part = await this.readSome(Math.min(left, 1 << 20))
      if (part.length === 0) break
      if (raw) this.raw.push(part.slice())
      left -= part.length
    }
    return n - left
  }

  /** All raw bytes recorded since the last call, as one buffer (Go's Reader.RawBytes). */
  takeRaw(): Buffer {
    const parts = this.raw
    this.raw = []
    if (parts.length === 1)
      return Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.length)
    return Buffer.concat(parts)
  }

  /** Stops reading the source (lets a generator source run its cleanup). */
  async close(): Promise<void> {
    this.#done = true
    await this.#it.return?.()
  }
}
