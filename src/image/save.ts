/**
 * Saving images (Docker's `docker save`): as a docker-archive — the layout Docker 25 writes,
 * an OCI image layout plus `manifest.json`, so that both `docker load` (any version) and OCI
 * tools read it — or as a plain OCI image layout, in a tar or a directory.
 *
 * Layer blobs are the exact registered tars, reassembled from tar-split and verified against
 * their DiffIDs while written; their sizes come from the tar-split metadata, so nothing is
 * staged. A blob shared by several images is written once. The bytes are deterministic: same
 * images and names, same archive. A tar is written beside its destination and renamed into
 * place when complete, so an interrupted save leaves no partial archive under the name.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { Writable } from 'node:stream'
import { digestHex, type ChainId, type DiffId, type Digest } from '../digest/digest.js'
import { writeChunksToFile } from '../internal/chunk-file.js'
import type { LayerStore } from '../layer/layer-store.js'
import type { Layer } from '../layer/types.js'
import { TYPE } from '../tar/types.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import type { ImageRecord } from './image-store.js'
import { familiarString, parseReference } from './reference.js'
import type { ImageId, ProgressEvent, SaveOptions } from './types.js'

/** One image to save, with the name it was asked by (full form), if any. */
export interface SavePick {
  readonly record: ImageRecord
  readonly tag: string | undefined
}

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const

interface Descriptor {
  readonly mediaType: string
  readonly digest: Digest
  readonly size: number
  readonly annotations?: Record<string, string>
}

/** A file of the archive: small JSON in memory, or a layer read when written. */
interface ArchiveFile {
  readonly path: string
  readonly bytes?: Buffer
  readonly layer?: { readonly handle: Layer; readonly size: number; readonly diffId: DiffId }
}

/**
 * Writes `picks` to `out`: a file path (tar), a directory (OCI layout, format `oci` only, when
 * `out` ends with `/` or is a directory), or a stream.
 */
export async function saveArchive(
  picks: readonly SavePick[],
  out: string | Writable,
  options: SaveOptions,
  layers: LayerStore,
): Promise<void> {
  const format = options.format ?? 'docker'
  const handles = new Map<DiffId, Layer>()
  try {
    const files = await plan(picks, format, layers, handles)
    const progress = options.onProgress
    if (typeof out === 'string' && format === 'oci' && (out.endsWith('/') || (await isDir(out))))
      await writeDirectory(files, out, progress)
    else await writeTarFile(files, out, options)
  } finally {
    for (const h of handles.values()) layers.detach(h) // looking at a layer must not delete it
  }
}

/** The archive's files, in the order they are written: JSON first, then layers. */
async function plan(
  picks: readonly SavePick[],
  format: 'docker' | 'oci',
  layers: LayerStore,
  handles: Map<DiffId, Layer>,
): Promise<ArchiveFile[]> {
  const images = new Map<ImageId, { record: ImageRecord; tags: string[] }>()
  for (const { record, tag } of picks) {
    const entry = images.get(record.id) ?? { record, tags: [] }
    if (tag !== undefined && !entry.tags.includes(tag)) entry.tags.push(tag)
    images.set(record.id, entry)
  }
  const blobs = new Map<Digest, ArchiveFile>()
  const layerFiles = new Map<DiffId, ArchiveFile>()
  const index: Descriptor[] = []
  const dockerManifest: unknown[] = []
  for (const { record, tags } of images.values()) {
    const layerDescriptors: Descriptor[] = []
    for (const [i, diffId] of record.parsed.diffIds.entries()) {
      let file = layerFiles.get(diffId)
      if (file === undefined) {
        const handle = await layers.get(record.chainIds[i] as ChainId)
        handles.set(diffId, handle)
        file = { path: blobPath(diffId), layer: { handle, size: await handle.tarSize(), diffId } }
        layerFiles.set(diffId, file)
      }
      layerDescriptors.push({ mediaType: MEDIA_TYPE.layer, digest: diffId, size: file.layer!.size })
    }
    const config = json(record.config)
    blobs.set(config.digest, { path: blobPath(config.digest), bytes: record.config })
    const manifest = json(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPE.manifest,
          config: { mediaType: MEDIA_TYPE.config, digest: config.digest, size: config.size },
          layers: layerDescriptors,
        }),
      ),
    )
    blobs.set(manifest.digest, { path: blobPath(manifest.digest), bytes: manifest.bytes })
    const descriptor = {
      mediaType: MEDIA_TYPE.manifest,
      digest: manifest.digest,
      size: manifest.size,
    }
    if (tags.length === 0) index.push(descriptor)
    for (const t of tags) {
      const ref = parseReference(t)
      index.push({
        ...descriptor,
        annotations: {
          'io.containerd.image.name': t,
          'org.opencontainers.image.ref.name': ref.tag ?? 'latest',
        },
      })
    }
    dockerManifest.push({
      Config: blobPath(config.digest),
      RepoTags: tags.map((t) => familiarString(parseReference(t))),
      Layers: record.parsed.diffIds.map(blobPath),
    })
  }
  const files: ArchiveFile[] = [
    { path: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    {
      path: 'index.json',
      bytes: Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests: index }),
      ),
    },
  ]
  if (format === 'docker')
    files.push({ path: 'manifest.json', bytes: Buffer.from(JSON.stringify(dockerManifest)) })
  files.push(...blobs.values(), ...layerFiles.values())
  return files
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`
}

function json(bytes: Buffer): { bytes: Buffer; digest: Digest; size: number } {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
  return { bytes, digest, size: bytes.length }
}

/** A layer's bytes, verified, reporting progress. */
async function* layerBytes(
  file: ArchiveFile,
  progress: ((e: ProgressEvent) => void) | undefined,
): AsyncGenerator<Uint8Array> {
  const { handle, size, diffId } = file.layer!
  progress?.({ kind: 'layer-start', diffId, total: size })
  let bytes = 0
  // The DiffID check at the end fails the save (a file is renamed into place only when
  // complete), as Docker's does: the files' CRCs need not be checked on the way as well.
  for await (const chunk of handle.tarStream({ checkFiles: false }) as AsyncIterable<Uint8Array>) {
    bytes += chunk.length
    progress?.({ kind: 'layer-progress', diffId, bytes, total: size })
    yield chunk
  }
  progress?.({ kind: 'layer-done', diffId, bytes, skipped: false })
}

function* tarEntries(
  files: readonly ArchiveFile[],
  progress: ((e: ProgressEvent) => void) | undefined,
): Generator<TarWriteEntry> {
  const fixed = { mode: 0o644, uid: 0, gid: 0, mtime: 0 }
  yield { header: { ...fixed, name: 'blobs/', typeflag: TYPE.DIR, mode: 0o755 } }
  yield { header: { ...fixed, name: 'blobs/sha256/', typeflag: TYPE.DIR, mode: 0o755 } }
  for (const f of files) {
    if (f.bytes !== undefined)
      yield { header: { ...fixed, name: f.path, size: f.bytes.length }, body: f.bytes }
    else
      yield {
        header: { ...fixed, name: f.path, size: f.layer!.size },
        body: layerBytes(f, progress),
      }
  }
}

async function writeTarFile(
  files: readonly ArchiveFile[],
  out: string | Writable,
  options: SaveOptions,
): Promise<void> {
  const tar = writeTar(
    tarEntries(files, options.onProgress),
    options.signal !== undefined ? { signal: options.signal } : {},
  )
  if (typeof out !== 'string') {
    await pipeline(tar, out)
    return
  }
  const tmp = join(dirname(out), `.${randomBytes(6).toString('hex')}.layerstore-save.tmp`)
  try {
    await writeChunksToFile(tar, tmp, 0o644)
    await rename(tmp, out)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
}

/**
 * An OCI layout directory. Blobs already there are kept (they are content-addressed); an
 * existing index keeps its entries but those naming the images saved now, as skopeo does.
 */
async function writeDirectory(
  files: readonly ArchiveFile[],
  dir: string,
  progress: ((e: ProgressEvent) => void) | undefined,
): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
  // Blobs first, the index last: a reader never finds an index naming a missing blob.
  for (let f of [...files].reverse()) {
    if (f.path === 'index.json') f = { path: f.path, bytes: await mergedIndex(dir, f.bytes!) }
    const path = join(dir, f.path)
    if (f.path.startsWith('blobs/') && (await isFile(path))) continue
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
    try {
      if (f.bytes !== undefined) await writeFile(tmp, f.bytes, { mode: 0o644 })
      else await writeChunksToFile(layerBytes(f, progress), tmp, 0o644)
      await rename(tmp, path)
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw err
    }
  }
}

/** `ours` added to the index already in `dir`, replacing entries with the same names. */
async function mergedIndex(dir: string, ours: Buffer): Promise<Buffer> {
  let old: { manifests?: unknown }
  try {
    old = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: unknown }
  } catch {
    return ours // none, or not one we could keep
  }
  const mine = JSON.parse(ours.toString()) as { manifests: Descriptor[] }
  const name = (d: Descriptor): string | undefined => d.annotations?.['io.containerd.image.name']
  const taken = new Set(mine.manifests.map(name))
  const kept = (Array.isArray(old.manifests) ? (old.manifests as Descriptor[]) : []).filter((d) => {
    const n = name(d)
    return n === undefined ? !mine.manifests.some((m) => m.digest === d.digest) : !taken.has(n)
  })
  return Buffer.from(JSON.stringify({ ...mine, manifests: [...kept, ...mine.manifests] }))
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() === true
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() === true
}
