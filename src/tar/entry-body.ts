/**
 * An entry's body: the iterator over its data that the reader hands out with each entry.
 * It behaves as an async generator would (one read at a time, finished after an error or a
 * return, refused once the reader has moved on), but answers from the buffered chunk without
 * waiting for the source.
 */
import type { ByteReader } from './byte-reader.js'
import { TarError } from './errors.js'
import { sparseHoles } from './sparse.js'
import type { SparseFragment, TarHeader } from './types.js'

const ZEROS = new Uint8Array(1 << 20) // sparse holes are handed out as views of this

/** The reader's position in the current entry's data, shared with that entry's body. */
export class DataCursor {
  readonly br: ByteReader
  /** Physical data bytes of the current entry not consumed yet. */
  remaining = 0
  /** Counts the entries: a body reads only while its entry is the current one. */
  generation = 0
  /** The reader's error, sticky: every later read fails with it. */
  failed: Error | undefined = undefined

  constructor(br: ByteReader) {
    this.br = br
  }

  checkGeneration(gen: number): void {
    if (gen !== this.generation)
      throw new TypeError('Cannot read entry body: the reader has moved to another entry')
  }

  /** Reads physical data; the chunks are views into the source's chunks. */
  async physical(max: number): Promise<Uint8Array> {
    const chunk = await this.br.readSome(Math.min(max, this.remaining))
    if (chunk.length === 0) {
      const err = new TarError(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar entry data: stream ends early',
        this.br.offset,
      )
      this.failed = err
      throw err
    }
    this.remaining -= chunk.length
    return chunk
  }

  fail(code: 'TAR_INVALID_SPARSE', message: string): never {
    const err = new TarError(code, message, this.br.offset)
    this.failed = err
    throw err
  }
}

/** The body of one entry; each iteration continues where the last one stopped. */
export class EntryBody implements AsyncIterable<Uint8Array> {
  readonly #cursor: DataCursor
  readonly #gen: number
  /** For a sparse file: its header (whose size is the logical size) and fragments. */
  readonly #header: TarHeader | undefined
  readonly #sparse: readonly SparseFragment[] | undefined

  constructor(cursor: DataCursor, header?: TarHeader, sparse?: readonly SparseFragment[]) {
    this.#cursor = cursor
    this.#gen = cursor.generation
    this.#header = header
    this.#sparse = sparse
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    return this.#header === undefined || this.#sparse === undefined
      ? new PlainBody(this.#cursor, this.#gen)
      : sparseBody(this.#cursor, this.#gen, this.#sparse, this.#header.size)
  }
}

const done = (value?: unknown): IteratorResult<Uint8Array> => ({
  value: value as undefined,
  done: true,
})

/** The data of a plain (not sparse) entry, chunk by chunk. */
class PlainBody implements AsyncIterableIterator<Uint8Array> {
  readonly #cursor: DataCursor
  readonly #gen: number
  #finished = false
  /** A read waiting for the source: later calls queue behind it, as a generator's do. */
  #pending: Promise<IteratorResult<Uint8Array>> | undefined = undefined

  constructor(cursor: DataCursor, gen: number) {
    this.#cursor = cursor
    this.#gen = gen
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#pending !== undefined) {
      const again = (): Promise<IteratorResult<Uint8Array>> => this.next()
      return this.#pending.then(again, again)
    }
    if (this.#finished) return Promise.resolve(done())
    const c = this.#cursor
    if (c.generation !== this.#gen) {
      this.#finished = true
      return Promise.reject(
        new TypeError('Cannot read entry body: the reader has moved to another entry'),
      )
    }
    if (c.remaining === 0) {
      this.#finished = true
      return Promise.resolve(done())
    }
    const available = c.br.available
    if (available > 0) {
      const n = Math.min(available, c.remaining)
      c.remaining -= n
      return Promise.resolve({ value: c.br.take(n), done: false })
    }
    const p = this.#wait()
    this.#pending = p
    return p
  }

  async #wait(): Promise<IteratorResult<Uint8Array>> {
    try {
      return { value: await this.#cursor.physical(this.#cursor.remaining), done: false }
    } catch (err) {
      this.#finished = true
      throw err
    } finally {
      this.#pending = undefined
    }
  }

  return(value?: unknown): Promise<IteratorResult<Uint8Array>> {
    if (this.#pending !== undefined) {
      const again = (): Promise<IteratorResult<Uint8Array>> => this.return(value)
      return this.#pending.then(again, again)
    }
    this.#finished = true
    return Promise.resolve(done(value))
  }

  async throw(err?: unknown): Promise<IteratorResult<Uint8Array>> {
    // As a generator: after the read in progress, finished, rejecting with `err`.
    await this.#pending?.catch(() => undefined)
    this.#finished = true
    throw err
  }
}

/** The logical data of a sparse file: its data fragments, with the holes as zeros. */
async function* sparseBody(
  c: DataCursor,
  gen: number,
  fragments: readonly SparseFragment[],
  size: number,
): AsyncGenerator<Uint8Array> {
  c.checkGeneration(gen)
  const holes = sparseHoles(fragments, size)
  let pos = 0
  for (const hole of holes) {
    // Data from pos up to the hole, then the hole.
    while (pos < hole.offset) {
      if (c.remaining === 0)
        c.fail(
          'TAR_INVALID_SPARSE',
          'Cannot read sparse file: Sparse file references data the archive does not hold',
        )
      const chunk = await c.physical(hole.offset - pos)
      pos += chunk.length
      yield chunk
      c.checkGeneration(gen)
    }
    const holeEnd = hole.offset + hole.length
    while (pos < holeEnd) {
      const n = Math.min(ZEROS.length, holeEnd - pos)
      pos += n
      yield ZEROS.subarray(0, n)
      c.checkGeneration(gen)
    }
  }
  if (c.remaining > 0)
    c.fail(
      'TAR_INVALID_SPARSE',
      'Cannot read sparse file: Sparse file contains data its map does not reference',
    )
}
