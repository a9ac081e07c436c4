/**
 * Moving an unreadable record aside (SPEC.md §8.1 item 6, §8.3). Docker skips such records
 * with a debug log and leaves them in place, where they block every re-registration of the
 * same ChainID. Here they go to `<layerdb>/quarantine/<kind>-<name>-<time>` (outside `sha256/`
 * and `mounts/`, where Docker never looks), with a `.reason` file beside them saying why.
 */
import { randomBytes } from 'node:crypto'
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import { crashPoint } from './crash-points.js'
import { InvalidNameError, MetadataNotFoundError, type RecordKind } from './errors.js'
import { ensureDir, errnoOf, fsyncPath, pathComponentProblem, writeExact } from './files.js'
import type { Layout } from './layout.js'
import type { Quarantined } from './types.js'

export async function quarantineRecord(
  layout: Layout,
  kind: RecordKind,
  name: string,
  reason: string,
): Promise<Quarantined> {
  if (kind === 'layer' && name.startsWith('sha256:')) name = name.slice('sha256:'.length)
  const why = pathComponentProblem(name)
  if (why !== undefined) throw new InvalidNameError(`${kind} record name`, name, why)
  const parent = kind === 'layer' ? layout.sha256 : layout.mounts
  const src = join(parent, name)
  await ensureDir(layout.quarantine, 0o700)
  const stamp = new Date().toISOString().replace(/[-:.]/g, '')
  const base = `${kind}-${truncateUtf8(name, 200)}-${stamp}`
  let movedTo: string
  for (let attempt = 0; ; attempt++) {
    movedTo = join(
      layout.quarantine,
      attempt === 0 ? base : `${base}-${randomBytes(4).toString('hex')}`,
    )
    try {
      await rename(src, movedTo)
      break
    } catch (err) {
      const code = errnoOf(err)
      if (code === 'ENOENT') throw new MetadataNotFoundError(kind, name, src, { cause: err })
      if ((code === 'EEXIST' || code === 'ENOTEMPTY') && attempt < 100) continue
      throw err
    }
  }
  crashPoint('quarantine:moved')
  await fsyncPath(parent)
  // Best effort: the move is what matters; the note is for whoever looks later.
  await writeExact(`${movedTo}.reason`, `${kind} ${name}\n${reason}\n`).catch(() => undefined)
  await fsyncPath(layout.quarantine)
  return { kind, name, movedTo, reason }
}

/** The longest prefix of `s` of at most `max` UTF-8 bytes, cut between code points. */
function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s
  let out = ''
  let bytes = 0
  for (const ch of s) {
    bytes += Buffer.byteLength(ch)
    if (bytes > max) break
    out += ch
  }
  return out
}
