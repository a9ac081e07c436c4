import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { digestFromHex, type Digest } from './digest.js'
import { DigestMismatchError } from './errors.js'

/**
 * A pass-through that hashes every byte and fails at the end of the stream with
 * DIGEST_MISMATCH when the bytes do not hash to `expected` (moby `verifiedReadCloser`).
 * Put it last before the sink: a consumer that sees the stream end cleanly has verified data.
 *
 * Unlike moby's, the last chunk is held back until the digest is checked, so a consumer never
 * receives the complete (wrong) data: a file written from a failed stream is always short.
 */
export class VerifyDigest extends Transform {
  readonly expected: Digest
  readonly #what: string
  #hash: Hash = createHash('sha256')
  #size = 0
  /** The latest chunk, passed on when the next one arrives or once verified. */
  #held: Buffer | undefined

  constructor(expected: Digest, what = 'data') {
    super()
    this.expected = expected
    this.#what = what
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    const previous = this.#held
    this.#held = chunk
    done(null, previous)
  }

  override _flush(done: TransformCallback): void {
    const actual = digestFromHex(this.#hash.digest('hex'))
    if (actual !== this.expected) done(new DigestMismatchError(this.expected, actual, this.#what))
    else done(null, this.#held)
  }
}
