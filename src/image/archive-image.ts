/**
 * What docker-archives and OCI layouts have in common once their manifests are read: small JSON
 * files read under a cap, and an image put together from its configuration and its layer blobs,
 * checked before any layer is read (configuration digest, `rootfs.diff_ids` against the layer
 * count, every blob present).
 */
import { isDigest, type Digest } from '../digest/digest.js'
import { DigestMismatchError } from '../digest/errors.js'
import { sha256Digest } from '../digest/hash.js'
import { hasCode } from '../errors.js'
import { ImageArchiveError } from './errors.js'
import { parseImageConfig } from './image-config.js'
import type { ArchiveImage, ArchiveLayer, ArchiveSource, Platform } from './types.js'

/** Cap on `manifest.json`, `index.json`, manifests and indexes (containerd's manifest limit). */
export const MAX_MANIFEST_SIZE = 4 << 20
/** Cap on an image configuration (configurations with long histories reach a few MiB). */
export const MAX_CONFIG_SIZE = 8 << 20

/** An image of the archive with the platform its configuration names. */
export interface FoundImage extends ArchiveImage {
  readonly platform: Platform | undefined
}

export const quote = (path: string): string => JSON.stringify(path.slice(0, 200))

export function invalid(path: string, detail: string, options?: ErrorOptions): ImageArchiveError {
  return new ImageArchiveError(
    'IMAGE_ARCHIVE_INVALID',
    `Cannot read image archive: ${quote(path)} ${detail}`,
    options,
  )
}

export function missingBlob(path: string, namedBy: string): ImageArchiveError {
  return new ImageArchiveError(
    'IMAGE_BLOB_MISSING',
    `Cannot read image archive: ${quote(path)}, named by ${quote(namedBy)}, is not in the archive`,
  )
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** The size of the file at `path`; IMAGE_BLOB_MISSING names `namedBy` when there is none. */
export function blobSize(source: ArchiveSource, path: string, namedBy: string): number {
  try {
    return source.size(path)
  } catch (err) {
    if (hasCode(err, 'IMAGE_BLOB_MISSING')) throw missingBlob(path, namedBy)
    throw err
  }
}

/** A file's bytes, at most `limit` of them; IMAGE_BLOB_MISSING names `namedBy`. */
export async function readSmall(
  source: ArchiveSource,
  path: string,
  limit: number,
  namedBy: string,
): Promise<Buffer> {
  blobSize(source, path, namedBy)
  return source.read(path, limit)
}

export function parseJson(bytes: Buffer, path: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw invalid(path, `is not JSON: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    })
  }
}

/** `sha256:<hex>` for a path `blobs/sha256/<hex>` (optionally `./`-prefixed), else undefined. */
export function blobPathDigest(path: string): Digest | undefined {
  const m = /^(?:\.\/)?blobs\/sha256\/([0-9a-f]{64})$/.exec(path)
  return m?.[1] === undefined ? undefined : (`sha256:${m[1]}` as Digest)
}

export function blobPath(digest: Digest): string {
  return `blobs/${digest.replace(':', '/')}`
}

/** A checked digest field, or IMAGE_ARCHIVE_INVALID naming `path` and `field`. */
export function digestField(v: unknown, path: string, field: string): Digest {
  if (!isDigest(v)) {
    const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 100)) : typeof v
    throw invalid(path, `has ${field} ${shown}, not a sha256 digest`)
  }
  return v
}

export interface ImageParts {
  /** Path of the configuration in the archive. */
  readonly configPath: string
  /** Its digest as announced (a descriptor, or a `blobs/sha256/<hex>` path), if any. */
  readonly configDigest?: Digest | undefined
  readonly configSize?: number | undefined
  readonly layers: readonly ArchiveLayer[]
  readonly repoTags: readonly string[]
  readonly manifestDigest?: Digest | undefined
  /** The file that lists the image (`manifest.json`, a manifest blob), for messages. */
  readonly namedBy: string
}

/**
 * The image `parts` describe: its configuration read (at most MAX_CONFIG_SIZE) and checked
 * against the announced digest and size, its DiffIDs against the layers, every layer present.
 * No layer is read.
 */
export async function archiveImage(source: ArchiveSource, parts: ImageParts): Promise<FoundImage> {
  const { configPath, namedBy } = parts
  const config = await readSmall(source, configPath, MAX_CONFIG_SIZE, namedBy)
  const id = sha256Digest(config)
  if (parts.configDigest !== undefined && id !== parts.configDigest) {
    throw new DigestMismatchError(parts.configDigest, id, `configuration ${quote(configPath)}`)
  }
  if (parts.configSize !== undefined && parts.configSize !== config.length) {
    throw invalid(
      configPath,
      `has ${config.length} bytes, ${quote(namedBy)} says ${parts.configSize}`,
    )
  }
  const parsed = parseImageConfig(config, quote(configPath))
  const diffIds = parsed.diffIds
  if (diffIds.length !== parts.layers.length) {
    throw invalid(
      configPath,
      `lists ${diffIds.length} DiffIDs in rootfs.diff_ids, but ${quote(namedBy)} names ` +
        `${parts.layers.length} layers`,
    )
  }
  for (const layer of parts.layers) {
    const size = blobSize(source, layer.path, namedBy)
    if (layer.size !== undefined && size !== layer.size)
      throw invalid(layer.path, `has ${size} bytes, ${quote(namedBy)} says ${layer.size}`)
  }
  const { os, architecture, variant } = parsed
  const platform =
    os !== '' && architecture !== ''
      ? { os, architecture, ...(variant !== undefined && variant !== '' ? { variant } : {}) }
      : undefined
  return {
    id,
    config,
    diffIds,
    layers: parts.layers,
    repoTags: parts.repoTags,
    ...(parts.manifestDigest === undefined ? {} : { manifestDigest: parts.manifestDigest }),
    platform,
  }
}
