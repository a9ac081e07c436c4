/**
 * The streaming tar reader: Go's archive/tar `Reader.Next` loop, in TypeScript. Meta entries
 * (PAX 'x', GNU 'L'/'K') are folded into the entry they describe; a PAX global header 'g' is
 * returned as an entry of its own, as Go does. With `rawAccounting`, every byte that is not
 * file data is kept for tar-split (the vbatts/tar-split fork's RawAccounting).
 */
import { ByteReader, type ByteSource } from './byte-reader.js'
import { TarError } from './errors.js'
import { DataCursor, EntryBody } from './entry-body.js'
import { blockPadding, blockSums, decodeHeader, isHeaderOnlyType, RawHeader } from './header.js'
import { MAX_SPECIAL_FILE_SIZE } from './limits.js'
import { toTarHeader } from './header-fields.js'
import { isMeta, mergePaxAt, MetaEntries } from './meta.js'
import { readSparseMap, SparseMapError } from './sparse-map.js'
import { paxSparseVersion, validSparse } from './sparse.js'
import {
  BLOCK_SIZE,
  TYPE,
  type ReadTarOptions,
  type SparseFragment,
  type TarEntry,
  type TarHeader,
} from './types.js'

/** What #nextBuffered returns when it needs more than the current chunk holds. */
const MORE = Symbol('more')

export class TarReader implements AsyncIterable<TarEntry> {
  readonly #br: ByteReader
  /** The current entry's data; `remaining` is what is left of it. */
  readonly #data: DataCursor
  readonly #raw: boolean
  readonly #maxSpecial: number
  readonly #onWarning: ReadTarOptions['onWarning']
  /** Padding after the current entry's data. */
  #pad = 0
  #ended = false
  /** What the meta entries read so far say about the next entry. */
  readonly #ext = new MetaEntries()
  readonly #h = new RawHeader()

  constructor(source: ByteSource, options: ReadTarOptions = {}) {
    this.#br = new ByteReader(source, options.signal)
    this.#data = new DataCursor(this.#br)
    this.#raw = options.rawAccounting === true
    this.#maxSpecial = options.maxSpecialFileSize ?? MAX_SPECIAL_FILE_SIZE
    this.#onWarning = options.onWarning
  }

  /** Bytes of the stream consumed so far. */
  get offset(): number {
    return this.#br.offset
  }

  /** Raw (non-data) bytes recorded since the last call; empty unless rawAccounting. */
  takeRaw(): Buffer {
    return this.#br.takeRaw()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TarEntry> {
    for (;;) {
      const e = await this.next()
      if (e === undefined) return
      yield e
    }
  }

  /** The next entry, or undefined at the end of the archive. Errors are sticky. */
  next(): Promise<TarEntry | undefined> {
    const data = this.#data
    if (data.failed !== undefined) return Promise.reject(data.failed)
    if (this.#ended) return Promise.resolve(undefined)
    data.generation++
    this.#ext.reset()
    let e: TarEntry | undefined | typeof MORE
    try {
      e = this.#nextBuffered()
    } catch (err) {
      return Promise.reject(this.#failed(err))
    }
    if (e === MORE) return this.#nextAsync()
    if (e === undefined) this.#ended = true
    return Promise.resolve(e)
  }

  async #nextAsync(): Promise<TarEntry | undefined> {
    try {
      const e = await this.#next()
      if (e === undefined) this.#ended = true
      return e
    } catch (err) {
      throw this.#failed(err)
    }
  }

  #failed(err: unknown): Error {
    this.#data.failed = err instanceof Error ? err : new Error(String(err))
    return this.#data.failed
  }

  /**
   * What follows the end of the archive, up to the end of the stream, in pieces of at most
   * `pieceSize` bytes (trailing record padding or garbage; part of the DiffID).
   */
  async *rest(pieceSize = 1 << 20): AsyncGenerator<Buffer> {
    if (!this.#ended) throw new TypeError('Cannot read past the archive: the archive has not ended')
    for (;;) {
      const piece = await this.#br.readFull(pieceSize)
      if (piece.length === 0) return
      yield Buffer.from(piece)
      if (piece.length < pieceSize) return
    }
  }

  /** Stops reading the source early. */
  async close(): Promise<void> {
    await this.#br.close()
  }

  #fail(
    code: ConstructorParameters<typeof TarError>[0],
    message: string,
    offset = this.#br.offset,
  ): never {
    throw new TarError(code, message, offset)
  }

  #eofMissing(offset: number): undefined {
    this.#onWarning?.(
      'TAR_MISSING_EOF_MARKER',
      'Archive ends without its end-of-archive blocks',
      offset,
    )
    return undefined
  }

  /**
   * The next entry from what the current chunk holds, without awaiting; MORE, with nothing
   * of the step at hand consumed, when that needs the source (or may fail: #next, which
   * continues from the same state, then takes over).
   */
  #nextBuffered(): TarEntry | undefined | typeof MORE {
    const data = this.#data
    const br = this.#br
    const raw = this.#raw
    for (;;) {
      if (data.remaining > 0) {
        if (br.available < data.remaining) return MORE
        br.consume(data.remaining, raw)
        data.remaining = 0
      }
      if (this.#pad > 0) {
        if (br.available < this.#pad) return MORE
        br.consume(this.#pad, raw)
        this.#pad = 0
      }
      const available = br.available
      if (available < BLOCK_SIZE) return MORE
      const block = br.chunk
      const at = br.pos
      const offset = br.offset
      const sums = blockSums(block, at)
      if (sums === 0) {
        if (available < 2 * BLOCK_SIZE) return MORE
        br.consume(2 * BLOCK_SIZE, raw)
        if (blockSums(block, at + BLOCK_SIZE) === 0) return undefined
        this.#fail(
          'TAR_INVALID_HEADER',
          'Cannot read tar header: zero block followed by a non-zero block',
          offset + BLOCK_SIZE,
        )
      }
      let h: RawHeader
      try {
        h = decodeHeader(block, at, offset, sums, this.#h)
      } catch (err) {
        br.consume(BLOCK_SIZE, raw)
        throw err
      }
      const t = h.typeflag
      if (isMeta(t)) {
        // Its data must be buffered too; the general path reports sizes that are wrong.
        const n = h.size
        if (!(n >= 0) || n > this.#maxSpecial || available - BLOCK_SIZE < n) return MORE
        br.consume(BLOCK_SIZE, raw)
        this.#setData(t, n, offset)
        const from = br.pos
        br.consume(n, raw)
        data.remaining = 0
        const e = this.#meta(h, offset, block, from, n)
        if (e !== MORE) return e
        continue
      }
      const pax = this.#ext.pax
      if (t === TYPE.GNU_SPARSE || (pax !== undefined && paxSparseVersion(pax) !== undefined)) {
        return MORE
      }
      br.consume(BLOCK_SIZE, raw)
      this.#setData(t, h.size, offset)
      return this.#entry(this.#header(h, offset), undefined, offset)
    }
  }

  /** The general path: awaits the source wherever the data runs past the current chunk. */
  async #next(): Promise<TarEntry | undefined> {
    const data = this.#data
    const br = this.#br
    const raw = this.#raw
    for (;;) {
      // Skip what is left of the previous entry's data, then its padding.
      if (data.remaining > 0) {
        const want = data.remaining
        const skipped = await br.skip(want, raw)
        data.remaining = 0
        if (skipped < want)
          this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read tar entry data: stream ends early')
      }
      if (this.#pad > 0) {
        const want = this.#pad
        this.#pad = 0
        // Go treats a stream cut inside the padding like a clean end of the archive.
        if ((await br.skip(want, raw)) < want) return this.#eofMissing(br.offset)
      }

      const offset = br.offset
      const block = await this.#readHeaderBlock()
      if (block === undefined) return undefined
      const h = decodeHeader(block, 0, offset, blockSums(block, 0), this.#h)
      this.#setData(h.typeflag, h.size, offset)
      if (isMeta(h.typeflag)) {
        const what = h.typeflag === TYPE.GNU_LONGNAME || h.typeflag === TYPE.GNU_LONGLINK
        const n = this.#special(offset, what ? 'GNU long name' : 'PAX header')
        // A global header's own fields are taken before its data is read.
        const header = h.typeflag === TYPE.X_GLOBAL_HEADER ? toTarHeader(h, offset) : undefined
        const text = await this.#readSpecial(n, what ? 'GNU long name' : 'PAX header')
        const e = this.#meta(h, offset, text, 0, n, header)
        if (e !== MORE) return e
        continue
      }
      const header = this.#header(h, offset)
      let sparse: SparseFragment[] | undefined
      if (
        header.typeflag === TYPE.GNU_SPARSE ||
        (header.pax !== undefined && paxSparseVersion(header.pax) !== undefined)
      ) {
        sparse = await this.#sparse(header, block, offset)
      }
      return this.#entry(header, sparse, offset)
    }
  }

  /**
   * Takes in a meta entry whose data is `text` from `from` (n bytes): MORE to go on to the
   * next header, or the entry of a PAX global header.
   */
  #meta(
    h: RawHeader,
    offset: number,
    text: Buffer,
    from: number,
    n: number,
    global = h.typeflag === TYPE.X_GLOBAL_HEADER ? toTarHeader(h, offset) : undefined,
  ): TarEntry | typeof MORE {
    this.#ext.read(h, offset, text, from, n)
    if (global === undefined) return MORE
    try {
      mergePaxAt(global, this.#ext.pax!, offset)
    } catch {
      // Go ignores errors in a global header's records.
    }
    global.size = 0
    global.typeflag = TYPE.X_GLOBAL_HEADER
    return { header: global, body: new EntryBody(this.#data) }
  }

  /** The entry's header (PAX records and long names applied), and its data to read. */
  #header(h: RawHeader, offset: number): TarHeader {
    const header = this.#ext.header(h, offset)
    // PAX records may have changed the size.
    this.#setData(header.typeflag, header.size, offset)
    return header
  }

  /** A header block; undefined at the end of the archive. */
  async #readHeaderBlock(): Promise<Buffer | undefined> {
    const offset = this.#br.offset
    const block = await this.#br.readFull(BLOCK_SIZE, this.#raw)
    if (block.length === 0) return this.#eofMissing(offset)
    if (block.length < BLOCK_SIZE)
      this.#fail(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar header: stream ends inside a header',
        offset,
      )
    if (blockSums(block, 0) !== 0) return block
    const second = await this.#br.readFull(BLOCK_SIZE, this.#raw)
    if (second.length === 0) return this.#eofMissing(offset)
    if (second.length < BLOCK_SIZE) {
      this.#fail(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar header: stream ends inside the end-of-archive marker',
        offset + BLOCK_SIZE,
      )
    }
    if (blockSums(second, 0) === 0) return undefined
    this.#fail(
      'TAR_INVALID_HEADER',
      'Cannot read tar header: zero block followed by a non-zero block',
      offset + BLOCK_SIZE,
    )
  }

  /** Go's handleRegularFile: how many physical data bytes follow the header. */
  #setData(typeflag: number, size: number, offset: number): void {
    const n = isHeaderOnlyType(typeflag) ? 0 : size
    if (n < 0) this.#fail('TAR_INVALID_HEADER', 'Cannot read tar header: negative size', offset)
    if (!Number.isSafeInteger(n))
      this.#fail('TAR_UNSAFE_NUMBER', 'Cannot read tar header: size beyond 2^53', offset)
    if (isHeaderOnlyType(typeflag) && size > 0) {
      this.#onWarning?.(
        'TAR_HEADER_ONLY_SIZE',
        'Header-only entry declares a size; its data is not read',
        offset,
      )
    }
    this.#data.remaining = n
    this.#pad = blockPadding(n)
  }

  /** The size of a meta entry's data, checked against the cap. */
  #special(offset: number, what: string): number {
    const n = this.#data.remaining
    if (n > this.#maxSpecial) {
      this.#fail(
        'TAR_FIELD_TOO_LONG',
        `Cannot read ${what}: ${n} bytes is over the limit of ${this.#maxSpecial}`,
        offset,
      )
    }
    return n
  }

  /** The whole data of a meta entry (a view until the next read). */
  async #readSpecial(n: number, what: string): Promise<Buffer> {
    const data = await this.#br.readFull(n, this.#raw)
    this.#data.remaining = 0
    if (data.length < n) this.#fail('TAR_UNEXPECTED_EOF', `Cannot read ${what}: stream ends early`)
    return data
  }

  /** Go's handleSparseFile: the sparse map, if the entry is a sparse file. */
  async #sparse(
    h: TarHeader,
    block: Uint8Array,
    offset: number,
  ): Promise<SparseFragment[] | undefined> {
    const data = this.#data
    const next = async (extension: boolean): Promise<Uint8Array> => {
      if (!extension && data.remaining < BLOCK_SIZE) {
        this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read sparse map: data ends early', offset)
      }
      // Extension blocks belong to the headers (raw bytes); a 1.0 map to the entry's data.
      const blk = await this.#br.readFull(BLOCK_SIZE, extension && this.#raw)
      if (blk.length < BLOCK_SIZE)
        this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read sparse map: stream ends early')
      if (!extension) data.remaining -= BLOCK_SIZE
      return blk
    }
    try {
      return await readSparseMap(
        h,
        block,
        { extension: () => next(true), data: () => next(false) },
        this.#maxSpecial,
      )
    } catch (err) {
      if (err instanceof SparseMapError)
        this.#fail(err.tarCode, `Cannot read sparse map: ${err.message}`, offset)
      throw err
    }
  }

  #entry(header: TarHeader, sparse: SparseFragment[] | undefined, offset: number): TarEntry {
    if (sparse !== undefined) {
      if (isHeaderOnlyType(header.typeflag) || !validSparse(sparse, header.size)) {
        this.#fail('TAR_INVALID_SPARSE', 'Cannot read sparse file: invalid sparse map', offset)
      }
      header.sparse = sparse
    }
    if (!Number.isSafeInteger(header.size)) {
      this.#fail('TAR_UNSAFE_NUMBER', 'Cannot read tar header: size beyond 2^53', offset)
    }
    // The body reads only while this is the current entry; most bodies are never iterated.
    return {
      header,
      body: new EntryBody(this.#data, sparse === undefined ? undefined : header, sparse),
    }
  }
}

/** Iterates a tar stream's entries (see TarReader for raw access and trailing bytes). */
export function readTar(
  source: AsyncIterable<Uint8Array>,
  options?: ReadTarOptions,
): AsyncGenerator<TarEntry> {
  return new TarReader(source, options)[Symbol.asyncIterator]()
}
