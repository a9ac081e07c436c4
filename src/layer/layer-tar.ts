/**
 * A registered layer's tar, put back together from its tar-split metadata and the driver's
 * files (exact bytes, verified against the DiffID as they stream), and the tar's length.
 */
import { Readable } from 'node:stream'
import { isDiffGetterDriver, type Driver } from '../drivers/types.js'
import type { LayerDb } from '../metadata/layer-db.js'
import { assemble } from '../tarsplit/assemble.js'
import { ENTRY_TYPE, type FileEntry, type SegmentEntry } from '../tarsplit/entry.js'
import { unpack } from '../tarsplit/unpacker.js'
import type { RoLayer } from './ro-layer.js'
import type { TarSizeCache } from './tar-size-cache.js'
import type { TarStreamOptions } from './types.js'
import { verifiedTar } from './verified-tar.js'

/** The exact registered bytes of `layer`; a DiffID mismatch fails the stream at its end. */
export function layerTarStream(
  driver: Driver,
  db: LayerDb,
  layer: RoLayer,
  options: TarStreamOptions = {},
): Readable {
  async function* bytes(): AsyncGenerator<Uint8Array> {
    if (!isDiffGetterDriver(driver))
      throw new TypeError(`driver ${driver.name} cannot read layer files`)
    const getter = await driver.diffGetter(layer.cacheId)
    try {
      yield* assemble(unpack(db.openTarSplit(layer.chainId)), getter, {
        checkCrc: options.checkFiles !== false,
      })
    } finally {
      await getter.close()
    }
  }
  return Readable.from(verifiedTar(bytes(), layer.diffId), { objectMode: false })
}

/** Length of the registered tar: cached, else summed from its tar-split metadata. */
export async function layerTarSize(
  db: LayerDb,
  sizes: TarSizeCache,
  layer: RoLayer,
): Promise<number> {
  const cached = sizes.get(layer.diffId)
  if (cached !== undefined) return cached
  let size = 0
  for await (const e of unpack(db.openTarSplit(layer.chainId))) {
    if (e.type === ENTRY_TYPE.SEGMENT) size += (e as SegmentEntry).payload.length
    else if (e.type === ENTRY_TYPE.FILE) size += (e as FileEntry).size
  }
  sizes.set(layer.diffId, size)
  return size
}
