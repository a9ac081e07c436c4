/**
 * A new driver layer filled from a layer tar in one pass: the tar is applied into the layer,
 * split into the transaction's tar-split metadata and hashed at once. Then, as a second step
 * that may overlap the filling of the next layer on this one, its files are made durable, so
 * the record committed after never names data a crash could lose (DESIGN.md, crash model).
 */
import { StoreError } from '../errors.js'
import { DigestMismatchError } from '../digest/errors.js'
import type { DiffId } from '../digest/digest.js'
import type { Driver } from '../drivers/types.js'
import { startWriteback } from '../internal/writeback.js'
import { MetadataIoError } from '../metadata/errors.js'
import { syncFilesystem } from '../metadata/files.js'
import type { LayerTransaction } from '../metadata/transaction.js'
import { disassembleTo } from '../tarsplit/disassemble.js'
import { JsonPacker } from '../tarsplit/packer.js'
import type { RegisterOptions } from './types.js'

export interface FilledLayer {
  readonly diffId: DiffId
  /** Length of the tar. */
  readonly tarSize: number
  /**
   * Brings the layer's files to the disk; resolves to Σ of the entries' sizes (Docker's layer
   * size) once they are. Its record may be committed then.
   */
  durable(): Promise<number>
}

/**
 * Applies `tar` into the driver layer `cacheId` (created on `parentCacheId`) and writes its
 * tar-split metadata into `txn`. When it resolves, the layer's files are complete (a layer on
 * it may be made) but maybe not on disk: see FilledLayer.durable. A DiffID other than
 * `options.expectDiffId` is a DigestMismatchError. On failure the caller removes the layer.
 */
export async function fillLayer(
  driver: Driver,
  cacheId: string,
  parentCacheId: string | undefined,
  tar: AsyncIterable<Uint8Array>,
  txn: LayerTransaction,
  options: RegisterOptions,
): Promise<FilledLayer> {
  const packer = new JsonPacker(txn.tarSplitStream())
  const applier = await driver.applier(cacheId, parentCacheId)
  const writeback = startWriteback(driver.home)
  let diffId: DiffId
  let tarSize: number
  try {
    const { signal } = options
    const how = { target: applier, digest: true, ...(signal === undefined ? {} : { signal }) }
    const result = await disassembleTo(tar, packer, how).catch(async (err: unknown) => {
      await applier.abort()
      throw asMetadataError(err, 'write tar-split.json.gz')
    })
    diffId = result.diffId!
    tarSize = result.size
    await applier.finish()
  } finally {
    await writeback.stop()
  }
  await packer.close().catch((err: unknown) => {
    throw asMetadataError(err, 'write tar-split.json.gz')
  })
  if (options.expectDiffId !== undefined && diffId !== options.expectDiffId)
    throw new DigestMismatchError(options.expectDiffId, diffId, 'layer')
  return {
    diffId,
    tarSize,
    async durable() {
      const size = await applier.size()
      await syncFilesystem(driver.home) // the layer's files reach the disk before its record
      return size
    },
  }
}

/** A file-system failure while writing metadata, as a coded error (others pass unchanged). */
function asMetadataError(err: unknown, action: string): unknown {
  if (err instanceof StoreError) return err
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? new MetadataIoError(action, err) : err
}
