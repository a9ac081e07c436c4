/**
 * The sha256 of a stream, computed beside whoever reads it. On the addon's hash thread
 * (native/sha256-thread.c) where the process has OpenSSL to hash with: each chunk is hashed
 * while the reader works on it, and the next chunk is only pulled once it is done, so no
 * source can reuse its buffer under the hash. Elsewhere, Node's hash on this thread.
 */
import { createHash } from 'node:crypto'
import { sys } from './sys.js'

/** Passes `source` through; `done` gets the hex digest after the last chunk. */
export async function* sha256Through(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  done: (hex: string) => void,
): AsyncGenerator<Uint8Array> {
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
  try {
    for await (const chunk of source) {
      const seq = sys.sha256ThreadPush(thread, chunk)
      yield chunk
      sys.sha256ThreadWait(thread, seq) // before the source is asked for its next chunk
    }
    ended = true
    done(sys.sha256ThreadEnd(thread, true)!.toString('hex'))
  } finally {
    if (!ended) sys.sha256ThreadEnd(thread, false) // waits for the chunk being hashed
  }
}
