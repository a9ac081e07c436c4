/**
 * The images of an OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), as
 * containerd's importer reads them. Each entry of `index.json` is an image: an image manifest
 * (OCI or Docker schema 2), or an image index (OCI, or a Docker manifest list) from which the
 * manifest for the platform is chosen, recursively (indexes may nest, up to MAX_INDEX_DEPTH).
 *
 * Names come from the entry's annotations: `io.containerd.image.name` (the full name, as
 * `docker save` and containerd write it), else `org.opencontainers.image.ref.name` when it is a
 * full reference rather than a bare tag.
 *
 * Every manifest and index read is checked against the digest and size its descriptor
 * announces; layers are only listed, never read.
 */
import type { Digest } from '../digest/digest.js'
import { DigestMismatchError } from '../digest/errors.js'
import { sha256Digest } from '../digest/hash.js'
import {
  archiveImage,
  blobPath,
  digestField,
  invalid,
  isObject,
  MAX_MANIFEST_SIZE,
  parseJson,
  quote,
  readSmall,
  type FoundImage,
} from './archive-image.js'
import { NoMatchingPlatformError } from './errors.js'
import { formatPlatform, platformRank } from './platform.js'
import { normalizeRefName, normalizeTag } from './reference.js'
import type { ArchiveLayer, ArchiveSource, Platform } from './types.js'

export const OCI_INDEX = 'index.json'
export const OCI_LAYOUT = 'oci-layout'
/** Indexes inside indexes, at most (index.json is depth 0). */
export const MAX_INDEX_DEPTH = 8

export const MEDIA_TYPE = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const

const INDEX_TYPES = new Set<string>([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerList])
const MANIFEST_TYPES = new Set<string>([MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest])
const CONFIG_TYPES = new Set([
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
])
const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
])

export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name'
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'

interface Descriptor {
  readonly mediaType: string | undefined
  readonly digest: Digest
  readonly size: number
  readonly platform: Platform | undefined
  readonly annotations: Readonly<Record<string, string>>
}

function parseDescriptor(v: unknown, path: string, field: string): Descriptor {
  if (!isObject(v)) throw invalid(path, `has ${field} that is not a descriptor`)
  const digest = digestField(v['digest'], path, `${field}.digest`)
  const { mediaType, size, platform, annotations } = v
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw invalid(path, `has ${field}.size ${JSON.stringify(size)}, not a size`)
  if (mediaType !== undefined && typeof mediaType !== 'string')
    throw invalid(path, `has ${field}.mediaType that is not a string`)
  let p: Platform | undefined
  if (platform !== undefined && platform !== null) {
    const { os, architecture, variant } = isObject(platform) ? platform : {}
    if (typeof os !== 'string' || typeof architecture !== 'string')
      throw invalid(path, `has ${field}.platform without os and architecture`)
    p = { os, architecture, ...(typeof variant === 'string' && variant !== '' ? { variant } : {}) }
  }
  const notes: Record<string, string> = {}
  if (isObject(annotations))
    for (const [k, a] of Object.entries(annotations)) if (typeof a === 'string') notes[k] = a
  return { mediaType, digest, size, platform: p, annotations: notes }
}

/** A blob a descriptor names, checked against its digest and size. */
async function readBlob(source: ArchiveSource, d: Descriptor, namedBy: string): Promise<unknown> {
  const path = blobPath(d.digest)
  const bytes = await readSmall(source, path, MAX_MANIFEST_SIZE, namedBy)
  const actual = sha256Digest(bytes)
  if (actual !== d.digest)
    throw new DigestMismatchError(d.digest, actual, `manifest ${quote(path)}`)
  if (bytes.length !== d.size)
    throw invalid(path, `has ${bytes.length} bytes, ${quote(namedBy)} says ${d.size}`)
  return parseJson(bytes, path)
}

/** A blob's kind from its descriptor's media type; undefined when the descriptor has none. */
function kindOfType(type: unknown): 'index' | 'manifest' | 'other' | undefined {
  if (typeof type !== 'string') return undefined
  if (INDEX_TYPES.has(type)) return 'index'
  return MANIFEST_TYPES.has(type) ? 'manifest' : 'other'
}

/** What `d` is, and its blob when it is a manifest or an index (read and checked). */
async function resolve(
  source: ArchiveSource,
  d: Descriptor,
  namedBy: string,
): Promise<{ kind: 'index' | 'manifest'; blob: unknown } | undefined> {
  const declared = kindOfType(d.mediaType)
  if (declared === 'other') return undefined
  const blob = await readBlob(source, d, namedBy)
  // Media types are optional for old writers: the blob's own, else its shape.
  let kind = declared ?? kindOfType(isObject(blob) ? blob['mediaType'] : undefined)
  if (kind === undefined && isObject(blob))
    kind = Array.isArray(blob['manifests'])
      ? 'index'
      : isObject(blob['config'])
        ? 'manifest'
        : 'other'
  return kind === undefined || kind === 'other' ? undefined : { kind, blob }
}

function indexEntries(blob: unknown, path: string): Descriptor[] {
  if (!isObject(blob) || !Array.isArray(blob['manifests']))
    throw invalid(path, 'is not an image index (no manifests list)')
  return blob['manifests'].map((m, i) => parseDescriptor(m, path, `manifests[${i}]`))
}

/** An image manifest: where its chosen blob is, how well it suits the platform. */
interface Choice {
  readonly manifest: Descriptor
  readonly blob: unknown
  readonly rank: number
}

/**
 * The manifest of index `d` that suits `want` best (the first of equals), looking into nested
 * indexes; undefined when none does.
 */
async function choose(
  source: ArchiveSource,
  d: Descriptor,
  blob: unknown,
  want: Platform,
  depth: number,
): Promise<Choice | undefined> {
  const path = blobPath(d.digest)
  if (depth > MAX_INDEX_DEPTH)
    throw invalid(path, `nests image indexes deeper than ${MAX_INDEX_DEPTH}`)
  let best: Choice | undefined
  for (const child of indexEntries(blob, path)) {
    let rank = platformRank(want, child.platform)
    if (rank === undefined) continue
    // A nested index without a platform may hold a better match than its own rank says.
    const nested = kindOfType(child.mediaType) === 'index' && child.platform === undefined
    if (best !== undefined && rank >= best.rank && !nested) continue
    const r = await resolve(source, child, path)
    if (r === undefined) continue
    if (r.kind === 'index') {
      const inner = await choose(source, child, r.blob, want, depth + 1)
      if (inner === undefined) continue
      if (child.platform === undefined) rank = inner.rank
      if (best !== undefined && rank >= best.rank) continue
      best = { manifest: inner.manifest, blob: inner.blob, rank }
    } else if (best === undefined || rank < best.rank)
      best = { manifest: child, blob: r.blob, rank }
  }
  return best
}

/** The names an index.json entry gives its image, normalized. */
function names(d: Descriptor): string[] {
  const full = d.annotations[ANNOTATION_IMAGE_NAME]
  if (full !== undefined) {
    const name = normalizeTag(full)
    if (name === undefined)
      throw invalid(OCI_INDEX, `names an image ${JSON.stringify(full)}, not a name:tag`)
    return [name]
  }
  const ref = d.annotations[ANNOTATION_REF_NAME]
  const name = ref === undefined ? undefined : normalizeRefName(ref)
  return name === undefined ? [] : [name]
}

/** The image of one manifest; undefined when it is not an image (an artifact, a signature). */
async function manifestImage(
  source: ArchiveSource,
  d: Descriptor,
  blob: unknown,
  repoTags: readonly string[],
): Promise<FoundImage | undefined> {
  const path = blobPath(d.digest)
  if (!isObject(blob)) throw invalid(path, 'is not a JSON object')
  const config = parseDescriptor(blob['config'], path, 'config')
  if (config.mediaType !== undefined && !CONFIG_TYPES.has(config.mediaType)) return undefined
  const rawLayers = blob['layers'] ?? []
  if (!Array.isArray(rawLayers)) throw invalid(path, 'has layers that are not a list')
  const layers = rawLayers.map((l, i): ArchiveLayer => {
    const desc = parseDescriptor(l, path, `layers[${i}]`)
    if (desc.mediaType !== undefined && !LAYER_TYPES.has(desc.mediaType))
      throw invalid(path, `has layers[${i}] of media type ${quote(desc.mediaType)}, not a layer`)
    return {
      path: blobPath(desc.digest),
      digest: desc.digest,
      size: desc.size,
      ...(desc.mediaType === undefined ? {} : { mediaType: desc.mediaType }),
    }
  })
  return archiveImage(source, {
    configPath: blobPath(config.digest),
    configDigest: config.digest,
    configSize: config.size,
    layers,
    repoTags,
    manifestDigest: d.digest,
    namedBy: path,
  })
}

/**
 * The images `index.json` lists, for platform `want`. An entry that is a manifest with a
 * platform is kept only if that platform is the best among the entries' (an index.json that
 * lists `amd64` and `386` images gives the `amd64` one); one without a platform is always kept.
 */
export async function readOciLayout(source: ArchiveSource, want: Platform): Promise<FoundImage[]> {
  const layout = parseJson(
    await readSmall(source, OCI_LAYOUT, MAX_MANIFEST_SIZE, OCI_LAYOUT),
    OCI_LAYOUT,
  )
  if (!isObject(layout) || typeof layout['imageLayoutVersion'] !== 'string')
    throw invalid(OCI_LAYOUT, 'has no imageLayoutVersion')
  const index = parseJson(
    await readSmall(source, OCI_INDEX, MAX_MANIFEST_SIZE, OCI_INDEX),
    OCI_INDEX,
  )
  const entries = indexEntries(index, OCI_INDEX)
  const chosen: { choice: Choice; tags: string[] }[] = []
  let candidates = 0
  for (const entry of entries) {
    const r = await resolve(source, entry, OCI_INDEX)
    if (r === undefined) continue
    const { kind, blob } = r
    candidates++
    const tags = names(entry)
    if (kind === 'index') {
      const choice = await choose(source, entry, blob, want, 1)
      if (choice === undefined) {
        throw new NoMatchingPlatformError(
          `Cannot load image ${quote(tags[0] ?? entry.digest)}: its index ${quote(blobPath(entry.digest))} has no image for ${formatPlatform(want)}`,
        )
      }
      // The platform was chosen inside the index: the image is kept like one without platform.
      chosen.push({ choice: { ...choice, rank: -1 }, tags })
      continue
    }
    const rank = platformRank(want, entry.platform)
    if (rank !== undefined) {
      chosen.push({
        choice: { manifest: entry, blob, rank: entry.platform === undefined ? -1 : rank },
        tags,
      })
    }
  }
  if (candidates === 0) throw invalid(OCI_INDEX, 'lists no image manifest or index')
  const ranked = chosen.filter((c) => c.choice.rank >= 0).map((c) => c.choice.rank)
  const best = Math.min(...ranked)
  const kept = chosen.filter((c) => c.choice.rank < 0 || c.choice.rank === best)
  if (kept.length === 0) {
    throw new NoMatchingPlatformError(
      `Cannot load image archive: ${quote(OCI_INDEX)} has no image for ${formatPlatform(want)}`,
    )
  }
  const images: FoundImage[] = []
  for (const { choice, tags } of kept) {
    const image = await manifestImage(source, choice.manifest, choice.blob, tags)
    if (image !== undefined) images.push(image)
  }
  if (images.length === 0) throw invalid(OCI_INDEX, 'lists no image (only other artifacts)')
  return images
}
