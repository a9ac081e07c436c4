/**
 * Something that takes a tar's entries one at a time from a caller that reads the tar itself
 * (an applier, fed by the layer store's one pass that also splits and hashes the tar).
 */
import type { TarHeader } from './types.js'

/** Writes one regular file's data; an {@link EntryTarget} hands it out for the entry's body. */
export interface FileSink {
  write(chunk: Uint8Array): void
  /** Finishes the file (owner, mode, times). */
  close(): void
}

/**
 * For a regular file, `entry` returns the sink its data must be written to, then closed,
 * before the next entry; otherwise undefined. A promise means the entry must wait for work in
 * flight: await it, then offer the same header again. The target may keep the data chunks it
 * is given: their memory must not be reused.
 */
export interface EntryTarget {
  entry(header: TarHeader): FileSink | undefined | Promise<void>
}

/** Hands `header` to `target`, again after each wait it asks for (no promise if none). */
export function offer(
  target: EntryTarget,
  header: TarHeader,
): FileSink | undefined | Promise<FileSink | undefined> {
  const sink = target.entry(header)
  return sink instanceof Promise ? sink.then(() => offer(target, header)) : sink
}
