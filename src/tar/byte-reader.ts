/**
 * A pull reader over a stream of chunks: hands out exact-length reads and chunk views, keeps
 * the stream offset, and, when asked, a copy of selected bytes ("raw accounting", for
 * tar-split, which must record every byte that is not file data).
 *
 * What is buffered can be taken synchronously (`available`, `chunk`/`pos`, `consume`,
 * `take`): a parser then awaits only when it needs the next chunk.
 */
const EMPTY = Buffer.alloc(0)

/** Raw bytes are gathered in arenas of this size (or more), handed out in slices. */
const RAW_ARENA = 64 << 10

/**
 * Any source of byte chunks: a Node Readable, an async generator, an array of buffers.
 * As with any Node stream, a chunk must not be modified after it has been handed out: the
 * reader parses it in place and hands out views of it (entry bodies). The reader itself is
 * done with a chunk once it asks for the one after next (see fileChunks' ring).
 */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>

/**
 * A source that can also move ahead without reading (a file): skipped bytes that are not
 * recorded (an entry body nobody reads) are then never read at all. `skipAhead` skips up to
 * `n` bytes after the last chunk handed out and says how many it skipped (fewer at the end).
 */
export interface SeekableByteSource extends AsyncIterable<Uint8Array> {
  skipAhead(n: number): Promise<number>
}

function isSeekable(source: ByteSource): source is SeekableByteSource {
  return typeof (source as Partial<SeekableByteSource>).skipAhead === 'function'
}

export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array> | Iterator<Uint8Array>
  #chunk: Buffer = EMPTY
  #pos = 0
  #offset = 0
  #done = false
  readonly #signal: AbortSignal | undefined
  readonly #seek: SeekableByteSource | undefined
  /**
   * Raw bytes recorded since the last take (#rawStart to #rawEnd of the arena): copies, so
   * that the reader holds on to no chunk but the current one (a source may then recycle its
   * buffers, see fileChunks' ring).
   */
  #raw: Buffer = EMPTY
  #rawStart = 0
  #rawEnd = 0

  constructor(source: ByteSource, signal?: AbortSignal) {
    this.#it =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()
    this.#signal = signal
    this.#seek = isSeekable(source) ? source : undefined
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#offset
  }

  /** Bytes of the current chunk not consumed yet: what can be read without waiting. */
  get available(): number {
    return this.#chunk.length - this.#pos
  }

  /** The current chunk; its unread bytes start at `pos`. Valid until the next await. */
  get chunk(): Buffer {
    return this.#chunk
  }

  get pos(): number {
    return this.#pos
  }

  /** Consumes `n` bytes of the current chunk (n <= available), recording them when `raw`. */
  consume(n: number, raw: boolean): void {
    if (raw) this.#record(this.#chunk, this.#pos, n)
    this.#pos += n
    this.#offset += n
  }

  /** `n` bytes of the current chunk (n <= available) as a view, consumed. */
  take(n: number): Uint8Array {
    const c = this.#chunk
    const out = new Uint8Array(c.buffer, c.byteOffset + this.#pos, n)
    this.#pos += n
    this.#offset += n
    return out
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
      this.#chunk =
        v instanceof Uint8Array
          ? Buffer.isBuffer(v)
            ? v
            : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
          : Buffer.from(String(v))
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
    return this.take(Math.min(max, this.#chunk.length - this.#pos))
  }

  /**
   * Exactly `n` bytes, or fewer only at the end of the stream (Go's io.ReadFull; the caller
   * tells a clean end, length 0, from a cut one). A view when the bytes lie in one chunk,
   * otherwise a copy: no view of a chunk is held while the next ones are read.
   */
  async readFull(n: number, raw = false): Promise<Buffer> {
    if (this.available >= n) {
      const out = this.#chunk.subarray(this.#pos, this.#pos + n)
      this.consume(n, raw)
      return out
    }
    let out: Buffer | undefined
    let got = 0
    while (got < n) {
      if (this.#pos >= this.#chunk.length && !(await this.#fill())) break
      const k = Math.min(n - got, this.#chunk.length - this.#pos)
      out ??= Buffer.allocUnsafe(n)
      this.#chunk.copy(out, got, this.#pos, this.#pos + k)
      this.consume(k, raw)
      got += k
    }
    return out === undefined ? EMPTY : out.subarray(0, got)
  }

  /** Skips up to `n` bytes (recording them when `raw`); returns how many were skipped. */
  async skip(n: number, raw = false): Promise<number> {
    let left = n
    while (left > 0) {
      if (this.#pos >= this.#chunk.length && !raw && this.#seek !== undefined && !this.#done) {
        const k = await this.#seek.skipAhead(left)
        this.#offset += k
        left -= k
        if (left > 0) this.#done = true // the source ended inside the skipped bytes
        break
      }
      if (this.#pos >= this.#chunk.length && !(await this.#fill())) break
      const k = Math.min(left, this.#chunk.length - this.#pos)
      this.consume(k, raw)
      left -= k
    }
    return n - left
  }

  #record(from: Buffer, at: number, n: number): void {
    if (this.#rawEnd + n > this.#raw.length) {
      // A new arena, with the bytes not taken yet moved to its start.
      const pending = this.#rawEnd - this.#rawStart
      const arena = Buffer.allocUnsafeSlow(Math.max(RAW_ARENA, pending + n + (pending >> 1)))
      this.#raw.copy(arena, 0, this.#rawStart, this.#rawEnd)
      this.#raw = arena
      this.#rawStart = 0
      this.#rawEnd = pending
    }
    from.copy(this.#raw, this.#rawEnd, at, at + n)
    this.#rawEnd += n
  }

  /**
   * All raw bytes recorded since the last call, as one buffer (Go's Reader.RawBytes): a slice
   * of the arena, which is never written again.
   */
  takeRaw(): Buffer {
    if (this.#rawStart === this.#rawEnd) return EMPTY
    const out = this.#raw.subarray(this.#rawStart, this.#rawEnd)
    this.#rawStart = this.#rawEnd
    return out
  }

  /** Stops reading the source (lets a generator source run its cleanup). */
  async close(): Promise<void> {
    this.#done = true
    await this.#it.return?.()
  }
}
