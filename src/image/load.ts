/**
 * Loading the images of an archive (Docker's `tarexport` load): for each image, its layers
 * bottom up — a layer already in the store (by ChainID) is not read at all — each blob checked
 * against the digest the manifest announces and, decompressed, against the configuration's
 * DiffID before it is recorded; then the image record and its names, last. The missing layers
 * are registered as one chain (LayerStore.registerChain): a layer's data goes to the disk
 * while the next one is read.
 *
 * A crash never leaves an image record without its layers (the record is written after
 * them). Layers a load registered before it died are listed in its journal (journal.ts); the
 * next ImageStore.open removes those that no image and no running load uses.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { decompress } from '../archive/decompress.js'
import { chainIds } from '../digest/chain-id.js'
import type { DiffId } from '../digest/digest.js'
import { VerifyDigest } from '../digest/verify.js'
import { hasCode } from '../errors.js'
import type { InflightMarker } from '../internal/inflight.js'
import type { LayerStore } from '../layer/layer-store.js'
import type { Layer } from '../layer/types.js'
import { openArchiveSource } from './archive-source.js'
import { DiffIdMismatchError } from './errors.js'
import { openJournal } from './journal.js'
import { readArchive } from './read-archive.js'
import type { ArchiveImage, ArchiveLayer, ArchiveSource, ImageId, LoadOptions } from './types.js'

/** What a load needs of the image store. */
export interface LoadContext {
  readonly layers: LayerStore
  /** Records the image (holding `pin`, its top layer) and points `tags` at it. */
  commit(image: ArchiveImage, pin: Layer | undefined, tags: readonly string[]): Promise<void>
}

/** Loads every image of the archive at `input`; returns their IDs in archive order. */
export async function loadArchive(
  input: string,
  options: LoadOptions,
  ctx: LoadContext,
): Promise<ImageId[]> {
  const source = await openArchiveSource(input)
  try {
    const images = await readArchive(
      source,
      options.platform !== undefined ? { platform: options.platform } : {},
    )
    const journal = openJournal(ctx.layers.root, 'load')
    try {
      const ids: ImageId[] = []
      for (const image of images) {
        const pin = await loadLayers(image, source, journal, options, ctx.layers)
        await ctx.commit(image, pin, image.repoTags)
        options.onProgress?.({ kind: 'image-done', id: image.id, repoTags: image.repoTags })
        ids.push(image.id)
      }
      return ids
    } finally {
      journal.release()
    }
  } finally {
    await source.close()
  }
}

/** Registers the image's missing layers; returns a hold on its top layer. */
async function loadLayers(
  image: ArchiveImage,
  source: ArchiveSource,
  journal: InflightMarker,
  options: LoadOptions,
  layers: LayerStore,
): Promise<Layer | undefined> {
  const chain = chainIds(image.diffIds)
  // The highest layer already present, held so that nobody deletes it while we build on it.
  let held: Layer | undefined
  let start = 0
  for (let i = chain.length - 1; i >= 0 && held === undefined; i--) {
    if (!layers.map().has(chain[i]!)) continue
    journal.append(`= ${chain[i]!}`)
    try {
      held = await layers.get(chain[i]!)
      start = i + 1
    } catch (err) {
      if (!hasCode(err, 'LAYER_DOES_NOT_EXIST')) throw err // deleted meanwhile: look lower
    }
  }
  for (let i = 0; i < start; i++)
    options.onProgress?.({ kind: 'layer-done', diffId: image.diffIds[i]!, bytes: 0, skipped: true })
  if (start === chain.length) return held
  // The missing layers as one chain: each one's data goes to the disk while the next is read.
  // Journaled at once, before any is written (one sync, with no layer data yet to flush).
  journal.append(...chain.slice(start).map((c) => `+ ${c}`))
  const reads = new Map<number, LayerRead>()
  let current = start // the layer being read (a DiffID mismatch is its)
  const signal = options.signal !== undefined ? { signal: options.signal } : {}
  const missing = image.diffIds.slice(start).map((diffId, k) => ({
    tar: async () => {
      const i = (current = start + k)
      reads.get(i)?.stream.destroy() // made again (see ChainLayer.tar)
      const read = await openLayer(image, i, source, options)
      reads.set(i, read)
      return read.stream
    },
    options: { expectDiffId: diffId, ...signal },
  }))
  try {
    return await layers.registerChain(missing, held?.chainId, (k) => {
      const i = start + k
      options.onProgress?.({
        kind: 'layer-done',
        diffId: image.diffIds[i]!,
        bytes: reads.get(i)?.bytes() ?? 0,
        skipped: false,
      })
    })
  } catch (err) {
    for (const r of reads.values()) r.stream.destroy()
    const diffId = image.diffIds[current]!
    if (hasCode(err, 'DIGEST_MISMATCH') && (err as { expected?: unknown }).expected === diffId) {
      throw new DiffIdMismatchError(
        `invalid diffID for layer ${current} (${image.layers[current]!.path}): expected ${diffId}, got ${String((err as { actual?: DiffId }).actual)}`,
        { cause: err },
      )
    }
    throw err
  } finally {
    // Let go without deleting: the chain holds it now, or the load failed and the layer stays
    // as it was before (held by others, or by nothing, as a layer that `layer register` left).
    if (held !== undefined) layers.detach(held)
  }
}

/** A layer blob being read: its uncompressed tar, and the blob's bytes read so far. */
interface LayerRead {
  readonly stream: Readable
  bytes(): number
}

/**
 * The uncompressed tar of the image's layer `index`: its blob read from the archive (reporting
 * progress), checked against the digest the manifest announces, decompressed.
 */
async function openLayer(
  image: ArchiveImage,
  index: number,
  source: ArchiveSource,
  options: LoadOptions,
): Promise<LayerRead> {
  const blob = image.layers[index]!
  const diffId = image.diffIds[index]!
  const total = blobSize(source, blob)
  const progress = options.onProgress
  progress?.({ kind: 'layer-start', diffId, ...(total !== undefined ? { total } : {}) })
  let bytes = 0
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source.open(blob.path, options.signal)) {
      bytes += chunk.length
      progress?.({
        kind: 'layer-progress',
        diffId,
        bytes,
        ...(total !== undefined ? { total } : {}),
      })
      yield chunk
    }
  }
  let compressed: AsyncIterable<Uint8Array> = counted()
  // An uncompressed blob's digest is its DiffID, which the registration checks anyway.
  if (blob.digest !== undefined && blob.digest !== diffId) {
    const verify = new VerifyDigest(blob.digest, `layer blob ${blob.path}`)
    pipeline(Readable.from(compressed), verify).catch(() => undefined) // errors surface on verify
    compressed = verify
  }
  const { stream } = await decompress(
    compressed,
    options.signal !== undefined ? { signal: options.signal } : {},
  )
  return { stream, bytes: () => bytes }
}

function blobSize(source: ArchiveSource, blob: ArchiveLayer): number | undefined {
  try {
    return source.size(blob.path)
  } catch {
    return blob.size
  }
}
