/**
 * The images of a docker-archive, from its `manifest.json` (moby `tarexport` load): one entry per
 * image, `{Config, RepoTags, Layers}`, paths relative to the archive's root. Docker ≤24 writes
 * `<id>.json` and `<layer>/layer.tar` (no digests); Docker 25+ writes `blobs/sha256/<hex>` for
 * both, so the path announces the blob's digest (`sha256:<hex>`), which is then checked.
 */
import {
  archiveImage,
  blobPathDigest,
  invalid,
  isObject,
  MAX_MANIFEST_SIZE,
  parseJson,
  readSmall,
  type FoundImage,
} from './archive-image.js'
import { normalizeTag } from './reference.js'
import type { ArchiveLayer, ArchiveSource } from './types.js'

export const DOCKER_MANIFEST = 'manifest.json'

function stringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string')
}

/** Every image `manifest.json` lists, in its order (duplicates included). */
export async function readDockerArchive(source: ArchiveSource): Promise<FoundImage[]> {
  const path = DOCKER_MANIFEST
  const bytes = await readSmall(source, path, MAX_MANIFEST_SIZE, path)
  const manifest = parseJson(bytes, path)
  if (!Array.isArray(manifest)) throw invalid(path, 'is not a JSON array')
  const images: FoundImage[] = []
  for (const [i, entry] of manifest.entries()) {
    const at = `entry ${i}`
    if (!isObject(entry)) throw invalid(path, `${at} is not a JSON object`)
    const { Config: config, Layers: layers, RepoTags: repoTags } = entry
    if (typeof config !== 'string' || config === '') throw invalid(path, `${at} has no Config`)
    if (!stringList(layers)) throw invalid(path, `${at} has no Layers list of paths`)
    if (repoTags !== undefined && repoTags !== null && !stringList(repoTags))
      throw invalid(path, `${at} has RepoTags that are not a list of names`)
    const tags = (repoTags ?? []).map((tag) => {
      const name = normalizeTag(tag)
      if (name === undefined)
        throw invalid(path, `${at} has RepoTag ${JSON.stringify(tag)}, not a name:tag`)
      return name
    })
    images.push(
      await archiveImage(source, {
        configPath: config,
        configDigest: blobPathDigest(config),
        layers: layers.map((p): ArchiveLayer => {
          const digest = blobPathDigest(p)
          return digest === undefined ? { path: p } : { path: p, digest }
        }),
        repoTags: [...new Set(tags)],
        namedBy: path,
      }),
    )
  }
  return images
}
