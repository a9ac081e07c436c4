/**
 * The streaming tar reader: Go's archive/tar `Reader.Next` loop, in TypeScript. Meta entries
 * (PAX 'x', GNU 'L'/'K') are folded into the entry they describe; a PAX global header 'g' is
 * returned as an entry of its own, as Go does. With `rawAccounting`, every byte that is not
 * file data is kept for tar-split (the vbatts/tar-split fork's RawAccounting).
 */
import { ByteReader, type ByteSource } from './byte-reader.js'
import { TarError } from './errors.js'
import { blockPadding, decodeHeader, isHeaderOnlyType, isZeroBlock } from './header.js'
import { MAX_SPECIAL_FILE_SIZE } from './limits.js'
import { PaxError, parsePaxRecords } from './pax.js'
import { mergePax, setLink, setName, toTarHeader } from './header-fields.js'
import { readSparseMap, SparseMapError } from './sparse-map.js'
import { sparseHoles, validSparse } from './sparse.js'
import {
  BLOCK_SIZE,
  TYPE,
  type ReadTarOptions,
  type SparseFragment,
  type TarEntry,
  type TarHeader,
} from './types.js'

const ZEROS = new Uint8Array(1 << 20) // sparse holes are handed out as views of this

export class TarReader implements AsyncIterable<TarEntry> {
  readonly #br: ByteReader
  readonly #raw: boolean
  readonly #maxSpecial: number
  readonly #onWarning: ReadTarOptions['onWarning']
  /** Physical data bytes of the current entry not consumed yet, and the padding after them. */
  #remaining = 0
  #pad = 0
  #generation = 0
  #ended = false
  #failed: Error | undefined = undefined

  constructor(source: ByteSource, options: ReadTarOptions = {}) {
    this.#br = new ByteReader(source, options.signal)
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
  async next(): Promise<TarEntry | undefined> {
    if (this.#failed !== undefined) throw this.#failed
    if (this.#ended) return undefined
    try {
      const e = await this.#next()
      if (e === undefined) this.#ended = true
      return e
    } catch (err) {
      this.#failed = err instanceof Error ? err : new Error(String(err))
      throw this.#failed
    }
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

  async #next(): Promise<TarEntry | undefined> {
    this.#generation++
    let pax: Map<string, Buffer> | undefined
    let longName: Buffer | undefined
    let longLink: Buffer | undefined
    for (;;) {
      // Skip what is left of the previous entry's data, then its padding.
      if (this.#remaining > 0) {
        const want = this.#remaining
        const skipped = await this.#br.skip(want, this.#raw)
        this.#remaining = 0
        if (skipped < want)
          this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read tar entry data: stream ends early')
      }
      if (this.#pad > 0) {
        const want = this.#pad
        this.#pad = 0
        const got = await this.#br.readFull(want, this.#raw)
        // Go treats a stream cut inside the padding like a clean end of the archive.
        if (got.length < want) return this.#eofMissing(this.#br.offset)
      }

      const offset = this.#br.offset
      const block = await this.#readHeaderBlock()
      if (block === undefined) return undefined
      const raw = decodeHeader(block, offset)
      this.#setData(raw.typeflag, raw.size, offset)

      switch (raw.typeflag) {
        case TYPE.X_HEADER:
        case TYPE.X_GLOBAL_HEADER: {
          const data = await this.#readSpecial(offset, 'PAX header')
          try {
            pax = parsePaxRecords(data)
          } catch (err) {
            if (err instanceof PaxError)
              this.#fail('TAR_INVALID_PAX', `Cannot read PAX header: ${err.message}`, offset)
            throw err
          }
          if (raw.typeflag === TYPE.X_GLOBAL_HEADER) {
            const header = toTarHeader(raw, offset)
            try {
              this.#mergePax(header, pax, offset)
            } catch {
              // Go ignores errors in a global header's records.
            }
            header.size = 0
            header.typeflag = TYPE.X_GLOBAL_HEADER
            return this.#entry(header, undefined)
          }
          continue
        }
        case TYPE.GNU_LONGNAME:
        case TYPE.GNU_LONGLINK: {
          const data = await this.#readSpecial(offset, 'GNU long name')
          const nul = data.indexOf(0)
          const value = Buffer.from(nul >= 0 ? data.subarray(0, nul) : data)
          if (raw.typeflag === TYPE.GNU_LONGNAME) longName = value
          else longLink = value
          continue
        }
        default: {
          const header = toTarHeader(raw, offset)
          if (pax !== undefined) this.#mergePax(header, pax, offset)
          if (longName !== undefined && longName.length > 0) setName(header, longName)
          if (longLink !== undefined && longLink.length > 0) setLink(header, longLink)
          if (header.typeflag === TYPE.REG_A) {
            header.typeflag = header.nameRaw.at(-1) === 0x2f ? TYPE.DIR : TYPE.REG
          }
          // PAX records may have changed the size.
          this.#setData(header.typeflag, header.size, offset)
          const sparse = await this.#sparse(header, block, offset)
          if (sparse !== undefined) {
            if (isHeaderOnlyType(header.typeflag) || !validSparse(sparse, header.size)) {
              this.#fail(
                'TAR_INVALID_SPARSE',
                'Cannot read sparse file: invalid sparse map',
                offset,
              )
            }
            header.sparse = sparse
          }
          if (!Number.isSafeInteger(header.size)) {
            this.#fail('TAR_UNSAFE_NUMBER', 'Cannot read tar header: size beyond 2^53', offset)
          }
          return this.#entry(header, sparse)
        }
      }
    }
  }

  /** A header block; undefined at the end of the archive. */
  async #readHeaderBlock(): Promise<Uint8Array | undefined> {
    const offset = this.#br.offset
    const block = await this.#br.readFull(BLOCK_SIZE, this.#raw)
    if (block.length === 0) return this.#eofMissing(offset)
    if (block.length < BLOCK_SIZE)
      this.#fail(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar header: stream ends inside a header',
        offset,
      )
    if (!isZeroBlock(block)) return block
    const second = await this.#br.readFull(BLOCK_SIZE, this.#raw)
    if (second.length === 0) return this.#eofMissing(offset)
    if (second.length < BLOCK_SIZE) {
      this.#fail(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar header: stream ends inside the end-of-archive marker',
        offset + BLOCK_SIZE,
      )
    }
    if (isZeroBlock(second)) return undefined
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
    this.#remaining = n
    this.#pad = blockPadding(n)
  }

  /** The whole data of a meta entry, capped. */
  async #readSpecial(offset: number, what: string): Promise<Buffer> {
    if (this.#remaining > this.#maxSpecial) {
      this.#fail(
        'TAR_FIELD_TOO_LONG',
        `Cannot read ${what}: ${this.#remaining} bytes is over the limit of ${this.#maxSpecial}`,
        offset,
      )
    }
    const n = this.#remaining
    const data = await this.#br.readFull(n, this.#raw)
    this.#remaining = 0
    if (data.length < n) this.#fail('TAR_UNEXPECTED_EOF', `Cannot read ${what}: stream ends early`)
    return Buffer.from(data)
  }

  /** Go's mergePAX, with its errors as TAR_INVALID_PAX at the header's offset. */
  #mergePax(h: TarHeader, pax: Map<string, Buffer>, offset: number): void {
    try {
      mergePax(h, pax)
    } catch (err) {
      if (err instanceof PaxError)
        this.#fail('TAR_INVALID_PAX', `Cannot apply PAX records: ${err.message}`, offset)
      throw err
    }
  }

  /** Go's handleSparseFile: the sparse map, if the entry is a sparse file. */
  async #sparse(
    h: TarHeader,
    block: Uint8Array,
    offset: number,
  ): Promise<SparseFragment[] | undefined> {
    const next = async (extension: boolean): Promise<Uint8Array> => {
      if (!extension && this.#remaining < BLOCK_SIZE) {
        this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read sparse map: data ends early', offset)
      }
      // Extension blocks belong to the headers (raw bytes); a 1.0 map to the entry's data.
      const blk = await this.#br.readFull(BLOCK_SIZE, extension && this.#raw)
      if (blk.length < BLOCK_SIZE)
        this.#fail('TAR_UNEXPECTED_EOF', 'Cannot read sparse map: stream ends early')
      if (!extension) this.#remaining -= BLOCK_SIZE
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

  #entry(header: TarHeader, sparse: SparseFragment[] | undefined): TarEntry {
    const gen = this.#generation
    // The generator is made only if the body is read: most entries' bodies are empty.
    const body = {
      [Symbol.asyncIterator]: () =>
        sparse === undefined ? this.#plainBody(gen) : this.#sparseBody(gen, sparse, header.size),
    }
    return { header, body }
  }

  #checkGeneration(gen: number): void {
    if (gen !== this.#generation)
      throw new TypeError('Cannot read entry body: the reader has moved to another entry')
  }

  /** Reads physical data; the chunks are views into the source's chunks. */
  async #physical(max: number): Promise<Uint8Array> {
    const chunk = await this.#br.readSome(Math.min(max, this.#remaining))
    if (chunk.length === 0) {
      const err = new TarError(
        'TAR_UNEXPECTED_EOF',
        'Cannot read tar entry data: stream ends early',
        this.#br.offset,
      )
      this.#failed = err
      throw err
    }
    this.#remaining -= chunk.length
    return chunk
  }

  async *#plainBody(gen: number): AsyncGenerator<Uint8Array> {
    this.#checkGeneration(gen)
    while (this.#remaining > 0) {
      const chunk = await this.#physical(this.#remaining)
      yield chunk
      this.#checkGeneration(gen)
    }
  }

  async *#sparseBody(
    gen: number,
    fragments: readonly SparseFragment[],
    size: number,
  ): AsyncGenerator<Uint8Array> {
    this.#checkGeneration(gen)
    const holes = sparseHoles(fragments, size)
    let pos = 0
    for (const hole of holes) {
      // Data from pos up to the hole, then the hole.
      while (pos < hole.offset) {
        if (this.#remaining === 0)
          this.#sparseFail('Sparse file references data the archive does not hold')
        const chunk = await this.#physical(hole.offset - pos)
        pos += chunk.length
        yield chunk
        this.#checkGeneration(gen)
      }
      const holeEnd = hole.offset + hole.length
      while (pos < holeEnd) {
        const n = Math.min(ZEROS.length, holeEnd - pos)
        pos += n
        yield ZEROS.subarray(0, n)
        this.#checkGeneration(gen)
      }
    }
    if (this.#remaining > 0)
      this.#sparseFail('Sparse file contains data its map does not reference')
  }

  #sparseFail(message: string): never {
    const err = new TarError(
      'TAR_INVALID_SPARSE',
      `Cannot read sparse file: ${message}`,
      this.#br.offset,
    )
    this.#failed = err
    throw err
  }
}

/** Iterates a tar stream's entries (see TarReader for raw access and trailing bytes). */
export function readTar(
  source: AsyncIterable<Uint8Array>,
  options?: ReadTarOptions,
): AsyncGenerator<TarEntry> {
  return new TarReader(source, options)[Symbol.asyncIterator]()
}
