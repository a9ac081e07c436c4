/**
 * The sha256 of a stream, computed beside whoever reads it. On the addon's hash thread
 * (native/sha256-thread.c) where the process has OpenSSL to hash with: each chunk is hashed
 * while the reader works on it, and the next chunk is only pulled once it is done, so no
 * source can reuse its buffer under the hash. Elsewhere, Node's hash on this thread.
 */
import { createHash } from 'node:crypto'
import { holdChunk, releaseChunk } from './chunk-lease.js'
import { sys } from './sys.js'

/**
 * Bytes of a fresh source that may wait for the hash (bounded: memory stays flat). In bytes,
 * not chunks: 64 KiB chunks (a decompressor's pipe) must not leave the thread a short leash.
 */
const FRESH_LAG_BYTES = 8 << 20

/**
 * Passes `source` through; `done` gets the hex digest after the last chunk. `fresh`: the
 * source never reuses a chunk's memory, so chunks may still be hashing while the next ones
 * are produced (a producer that does the heavy work, as assembling a layer's tar, then
 * overlaps with the hash too; by default only the consumer's work does).
 */
export async function* sha256Through(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  done: (hex: string) => void,
  options: { readonly fresh?: boolean } = {},
): AsyncGenerator<Uint8Array> {
  const lagBytes = options.fresh === true ? FRESH_LAG_BYTES : 0
  const thread = sys.sha256ThreadStart()
  if (thread === undefined) {
    const hash = createHash('sha256')
    for await (const chunk of source) {
      hash.update(chunk)
      yield chunk
    }
    done(hash.digest('hex'))
    return
  }
  let ended = false
  // The chunks the thread may still read: referenced here so that the collector cannot free
  // their memory under it, whatever the consumer keeps.
  const hashing: Uint8Array[] = []
  let waiting = 0 // bytes in `hashing`
  try {
    for await (const chunk of source) {
      const seq = sys.sha256ThreadPush(thread, chunk)
      holdChunk(chunk) // a leased chunk is not reused under the thread (chunk-lease.ts)
      hashing.push(chunk)
      waiting += chunk.length
      yield chunk
      // At most lagBytes are left to hash when the source is asked for its next chunk.
      let release = 0
      while (waiting > lagBytes) waiting -= hashing[release++]!.length
      if (release > 0) {
        sys.sha256ThreadWait(thread, seq - (hashing.length - release))
        for (const done of hashing.splice(0, release)) releaseChunk(done)
      }
    }
    ended = true
    done(sys.sha256ThreadEnd(thread, true)!.toString('hex'))
  } finally {
    if (!ended) sys.sha256ThreadEnd(thread, false) // waits for the chunk being hashed
    for (const done of hashing) releaseChunk(done)
    hashing.length = 0
  }
}
