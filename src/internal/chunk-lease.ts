/**
 * Leased chunks: output buffers of a pipeline that come back for reuse once its last stage
 * is done with them. A layer's tar reassembled into fresh 2 MiB buffers first-touches every
 * page of them (a 205 MB save: ~25k page faults, most of its 140 MiB of RSS); leased ones
 * are touched once per process.
 *
 * A leased chunk carries one reference, which travels with it down the pipeline. A stage
 * that keeps a chunk after handing it on (a hash on another thread) holds one more and
 * releases it when done; the stage that consumes chunks for good (a file writer, once the
 * write has completed) releases the travelling one. At zero the buffer is idle again. A
 * consumer that never releases is always safe: its chunks are simply left to the collector.
 * Subarrays count as their buffer.
 */
import { borrowBuffers, returnBuffers } from './buffer-pool.js'

interface Lease {
  readonly buffer: Buffer
  refs: number
}

const leases = new WeakMap<ArrayBufferLike, Lease>()

/** A buffer of `size` bytes with one reference, recycled where one is idle. */
export function leaseChunk(size: number): Buffer {
  const [buffer] = borrowBuffers(1, size) as [Buffer]
  leases.set(buffer.buffer, { buffer, refs: 1 })
  return buffer
}

/** One more reference to `chunk`'s buffer (nothing for a chunk that is not leased). */
export function holdChunk(chunk: Uint8Array): void {
  const lease = leases.get(chunk.buffer)
  if (lease !== undefined) lease.refs++
}

/** Drops a reference; the last one makes the buffer idle. The caller must not touch it after. */
export function releaseChunk(chunk: Uint8Array): void {
  const lease = leases.get(chunk.buffer)
  if (lease === undefined || --lease.refs > 0) return
  leases.delete(chunk.buffer)
  returnBuffers([lease.buffer])
}
