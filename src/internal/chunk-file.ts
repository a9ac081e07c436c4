/**
 * Writes a stream of chunks into a file: each at its own position, a few writes in flight on
 * the thread pool while the next chunks are made (the pull is the backpressure), and each
 * leased chunk released once its write has completed (chunk-lease.ts), so that a producer
 * of leased chunks (tarsplit/assemble.ts) reuses the same few buffers for a whole file.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { releaseChunk } from './chunk-lease.js'

/** Writes in flight at most. */
const IN_FLIGHT = 2

/** Writes `chunks` from the start of `fh`; returns the number of bytes written. */
export async function writeChunks(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fh: FileHandle,
): Promise<number> {
  const inflight: Promise<void>[] = []
  let position = 0
  try {
    for await (const chunk of chunks) {
      if (inflight.length === IN_FLIGHT) await inflight.shift()
      const write = writeAll(fh, chunk, position).then(() => releaseChunk(chunk))
      write.catch(() => undefined) // observed when its turn comes
      inflight.push(write)
      position += chunk.length
    }
    await Promise.all(inflight)
    return position
  } finally {
    await Promise.allSettled(inflight) // the file is not closed under a write
  }
}

/** Creates (or truncates) `path` with `mode` and writes `chunks` into it. */
export async function writeChunksToFile(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  path: string,
  mode = 0o666,
): Promise<number> {
  const fh = await open(path, 'w', mode)
  try {
    return await writeChunks(chunks, fh)
  } finally {
    await fh.close()
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let off = 0; off < chunk.length;) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, position + off)
    off += bytesWritten
  }
}
