/**
 * Reads a file as a sequence of chunks with several reads in flight, so that the disk (or the
 * page cache copy) works while the caller parses: `fs.createReadStream` keeps at most one
 * read ahead. Chunks are fresh buffers the caller may keep.
 */
import { open } from 'node:fs/promises'

export interface FileChunksOptions {
  /** Bytes per read (default 1 MiB). */
  readonly chunkSize?: number
  /** Reads kept in flight ahead of the consumer (default 3). */
  readonly ahead?: number
  readonly signal?: AbortSignal
}

export async function* fileChunks(
  path: string | Buffer,
  options: FileChunksOptions = {},
): AsyncGenerator<Buffer> {
  const size = options.chunkSize ?? 1 << 20
  const ahead = Math.max(1, options.ahead ?? 3)
  const fh = await open(path, 'r')
  let position = 0
  let eof = false
  const queue: Promise<Buffer>[] = []
  const issue = (): void => {
    const at = position
    position += size
    queue.push(
      fh
        .read(Buffer.allocUnsafe(size), 0, size, at)
        .then(({ bytesRead, buffer }) => buffer.subarray(0, bytesRead)),
    )
  }
  try {
    for (let i = 0; i < ahead; i++) issue()
    while (queue.length > 0) {
      options.signal?.throwIfAborted()
      const chunk = await queue.shift()!
      if (chunk.length === 0) break
      if (chunk.length < size) eof = true
      if (!eof) issue()
      yield chunk
      if (eof) break
    }
  } finally {
    // Let reads still in flight finish before closing the handle.
    await Promise.allSettled(queue)
    await fh.close()
  }
}
