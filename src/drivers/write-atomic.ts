import { renameSync, writeFileSync } from 'node:fs'

/**
 * A small file replaced whole (written beside it, then renamed over it): a reader sees the
 * old or the new content, never a part.
 */
export function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, data, { mode })
  renameSync(tmp, path)
}
