import { createHash } from 'node:crypto'
import { digestFromHex, type Digest } from './digest.js'

/** sha256 of a byte string or text, as a digest. */
export function sha256Digest(data: Uint8Array | string): Digest {
  return digestFromHex(createHash('sha256').update(data).digest('hex'))
}

/** sha256 of a whole byte stream, read chunk by chunk (memory stays flat). */
export async function sha256Stream(
  source: AsyncIterable<Uint8Array>,
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of source) {
    hash.update(chunk)
    size += chunk.length
  }
  return { digest: digestFromHex(hash.digest('hex')), size }
}
