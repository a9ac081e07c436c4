/**
 * Drives an {@link EntryTarget} with a tar stream: every entry up to the end-of-archive, its
 * body in chunks, waiting whenever the target asks to (backpressure from files in flight).
 */
import type { ByteSource } from './byte-reader.js'
import { offer, type EntryTarget } from './entry-target.js'
import { TarReader } from './reader.js'

/** Reads the tar `source` up to its end-of-archive and hands every entry to `target`. */
export async function feed(
  source: ByteSource,
  target: EntryTarget,
  signal?: AbortSignal,
): Promise<void> {
  const reader = new TarReader(source, signal ? { signal } : {})
  for (;;) {
    const entry = await reader.next()
    if (entry === undefined) return
    let sink = offer(target, entry.header)
    if (sink instanceof Promise) sink = await sink
    if (sink === undefined) continue
    for await (const chunk of entry.body) sink.write(chunk)
    sink.close()
  }
}
