/**
 * The sha256 of a stream, computed beside whoever reads it. On the addon's hash thread
 * (native/sha256-thread.c) where the process has OpenSSL to hash with: each chunk is hashed
 * while the reader works on it, and the next chunk is only pulled once it is done, so no
 * source can reuse its buffer under the hash. Elsewhere, Node's hash on this thread.
 */
import { createHash } from 'node:crypto'
import { sys } from './sys.js'

/** Chunks of a fresh source that may wait for the hash (bounded: memory stays flat). */
const FRESH_LAG = 4

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
  const lag = options.fresh === true ? FRESH_LAG : 0
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
  try {
    for await (const chunk of source) {
      const seq = sys.sha256ThreadPush(thread, chunk)
      hashing.push(chunk)
      yield chunk
      // Chunk seq - lag is hashed before the source is asked for its next chunk.
      if (seq > lag) {
        sys.sha256ThreadWait(thread, seq - lag)
        hashing.splice(0, hashing.length - lag)
      }
    }
    ended = true
    done(sys.sha256ThreadEnd(thread, true)!.toString('hex'))
  } finally {
    if (!ended) sys.sha256ThreadEnd(thread, false) // waits for the chunk being hashed
    hashing.length = 0
  }
}
