/**
 * A layer's tar as it is read back, checked against its DiffID with the hash on the addon's
 * thread (internal/stream-sha256.ts) instead of this one: an export or a save spends its
 * main thread on reading files, not on SHA-256. As digest/verify.ts's VerifyDigest, the last
 * chunk is held back until the digest matches, so a consumer never gets the complete bytes
 * of a layer that fails the check. `source` must hand out chunks it does not reuse (they
 * are hashed while the next ones are made).
 */
import { digestFromHex, type DiffId } from '../digest/digest.js'
import { DigestMismatchError } from '../digest/errors.js'
import { sha256Through } from '../internal/stream-sha256.js'

export async function* verifiedTar(
  source: AsyncIterable<Uint8Array>,
  diffId: DiffId,
): AsyncGenerator<Uint8Array> {
  let hex = ''
  let held: Uint8Array | undefined
  for await (const chunk of sha256Through(source, (h) => (hex = h), { fresh: true })) {
    if (held !== undefined) yield held
    held = chunk
  }
  const actual = digestFromHex(hex)
  if (actual !== diffId) throw new DigestMismatchError(diffId, actual, 'layer')
  if (held !== undefined) yield held
}
