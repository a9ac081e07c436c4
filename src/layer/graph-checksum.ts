/**
 * tar-split metadata for a driver layer that has none (a layer of a pre-layerdb graph, Docker's
 * ChecksumForGraphID, SPEC.md §2.4): the driver's diff against the parent is split into a
 * tar-split file while hashed, which gives the layer's DiffID.
 */
import { createWriteStream } from 'node:fs'
import type { DiffId } from '../digest/digest.js'
import type { Driver } from '../drivers/types.js'
import { disassembleTo } from '../tarsplit/disassemble.js'
import { ENTRY_TYPE } from '../tarsplit/entry.js'
import { JsonPacker } from '../tarsplit/packer.js'

/**
 * Splits the diff of driver layer `graphId` against `parentGraphId` into `outPath` (gzip'd
 * JSON lines); returns its DiffID and the sum of its entries' sizes.
 */
export async function checksumDriverLayer(
  driver: Driver,
  graphId: string,
  parentGraphId: string | undefined,
  outPath: string,
): Promise<{ diffId: DiffId; size: number }> {
  const diff = await driver.diff(graphId, parentGraphId)
  const packer = new JsonPacker(createWriteStream(outPath, { mode: 0o644 }))
  let size = 0
  const sink = {
    add: (entry: Parameters<JsonPacker['add']>[0]) => {
      if (entry.type === ENTRY_TYPE.FILE) size += entry.size
      return packer.add(entry)
    },
  }
  try {
    const result = await disassembleTo(diff, sink, { digest: true })
    await packer.close()
    return { diffId: result.diffId!, size }
  } catch (err) {
    packer.destroy()
    diff.destroy()
    throw err
  }
}
