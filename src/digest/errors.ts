import { StoreError } from '../errors.js'
import type { Digest } from './digest.js'

/** Bytes did not hash to the digest they were stored or announced under. */
export class DigestMismatchError extends StoreError {
  override name = 'DigestMismatchError'
  readonly code = 'DIGEST_MISMATCH'
  readonly kind = 'data-loss'
  readonly expected: Digest
  readonly actual: Digest
  constructor(expected: Digest, actual: Digest, what = 'data', options?: ErrorOptions) {
    super(`Cannot verify ${what}: expected "${expected}", got "${actual}"`, options)
    this.expected = expected
    this.actual = actual
  }
}
