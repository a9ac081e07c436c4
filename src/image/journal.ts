/**
 * Journals of image loads and removals in progress, under `<root>/layerstore/loads/`: a file
 * per operation, flock'ed for its lifetime (an in-flight marker), one line per layer: `+ ID`
 * for a layer the operation registers (a load lists them all before it starts) or is deleting
 * (a removal), `= ID` for one it holds. A journal nobody holds belongs to a process that died; rollBackJournals then deletes
 * its `+` layers that no image and no live operation uses.
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { ChainId } from '../digest/digest.js'
import { hasCode } from '../errors.js'
import { InflightMarker, isInflight } from '../internal/inflight.js'
import type { LayerStore } from '../layer/layer-store.js'

/** Where the journals live, under a store root. */
export const JOURNALS_DIR = join('layerstore', 'loads')

/** Starts the journal of a load or a removal; release() it when the operation is over. */
export function openJournal(root: string, kind: 'load' | 'rm'): InflightMarker {
  return InflightMarker.hold(join(root, JOURNALS_DIR), `${kind}-${randomBytes(8).toString('hex')}`)
}

/**
 * Finishes the operations whose process died: their `+` layers that are not in `used` (the
 * images' chains) and that no live journal names are removed, top first. A journal with
 * layers a live operation uses stays for a later call: should that one die too, nothing else
 * lists them. Call it under the image records' lock.
 */
export async function rollBackJournals(
  layers: LayerStore,
  used: ReadonlySet<string>,
): Promise<void> {
  const dir = join(layers.root, JOURNALS_DIR)
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return
  }
  const live = new Set<string>()
  const dead: { name: string; registered: ChainId[] }[] = []
  for (const name of names) {
    const lines = readFileSync(join(dir, name), 'utf8').split('\n')
    if (isInflight(dir, name)) {
      for (const l of lines) if (l.length > 2) live.add(l.slice(2))
      continue
    }
    const registered = lines.filter((l) => l.startsWith('+ ')).map((l) => l.slice(2) as ChainId)
    dead.push({ name, registered })
  }
  for (const { name, registered } of dead) {
    let keep = false
    for (const c of registered.reverse()) {
      if (used.has(c) || !layers.map().has(c)) continue
      if (live.has(c)) {
        keep = true
        continue
      }
      try {
        await layers.remove(c)
      } catch (err) {
        if (!hasCode(err, 'LAYER_IN_USE') && !hasCode(err, 'LAYER_DOES_NOT_EXIST')) throw err
      }
    }
    if (!keep) rmSync(join(dir, name), { force: true })
  }
}
