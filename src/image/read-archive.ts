/**
 * The images of an archive, as `docker load` finds them, before any layer is read: a
 * docker-archive when `manifest.json` is there (Docker ≤24 and 25+ layouts; 25+ tars are OCI
 * layouts too, and Docker reads their `manifest.json`), else an OCI image layout (`oci-layout`
 * and `index.json`).
 *
 * The platform: an OCI index gives the image for `options.platform`, by default the host's
 * (containerd's `platforms.Only`). A docker-archive's images are all loaded, whatever platform
 * their configurations name, unless a platform is asked for: then only those that match.
 *
 * An image listed twice (two entries, two tags) is returned once, with the tags of both.
 *
 * ```ts
 * await using source = await openArchiveSource('busybox.tar')
 * const [image] = await readArchive(source, {})
 * image.layers[0].path  // 'blobs/sha256/…': read it with source.open(), check image.diffIds[0]
 * ```
 */
import type { FoundImage } from './archive-image.js'
import { DOCKER_MANIFEST, readDockerArchive } from './docker-archive.js'
import { ImageArchiveError, NoMatchingPlatformError } from './errors.js'
import { OCI_INDEX, OCI_LAYOUT, readOciLayout } from './oci-layout.js'
import { formatPlatform, hostPlatform, platformRank } from './platform.js'
import type { ArchiveImage, ArchiveSource, Platform } from './types.js'

export interface ReadArchiveOptions {
  /** The platform to pick from OCI indexes (default: the host's), and to require if given. */
  readonly platform?: Platform
}

export async function readArchive(
  source: ArchiveSource,
  options: ReadArchiveOptions = {},
): Promise<ArchiveImage[]> {
  let found: FoundImage[]
  if (source.has(DOCKER_MANIFEST)) {
    found = await readDockerArchive(source)
    const want = options.platform
    if (want !== undefined) {
      found = found.filter((img) => platformRank(want, img.platform) !== undefined)
      if (found.length === 0) {
        throw new NoMatchingPlatformError(
          `Cannot load image archive: ${JSON.stringify(DOCKER_MANIFEST)} has no image for ${formatPlatform(want)}`,
        )
      }
    }
  } else if (source.has(OCI_INDEX) && source.has(OCI_LAYOUT)) {
    found = await readOciLayout(source, options.platform ?? hostPlatform())
  } else {
    throw new ImageArchiveError(
      'IMAGE_ARCHIVE_INVALID',
      `Cannot read image archive: it has neither ${DOCKER_MANIFEST} (docker-archive) nor ` +
        `${OCI_INDEX} and ${OCI_LAYOUT} (OCI image layout)`,
    )
  }
  return merge(found)
}

/** One image per ID, in first-seen order, with every tag it was listed under. */
function merge(found: readonly FoundImage[]): ArchiveImage[] {
  const byId = new Map<string, { image: FoundImage; tags: Set<string> }>()
  for (const image of found) {
    const seen = byId.get(image.id)
    if (seen === undefined) byId.set(image.id, { image, tags: new Set(image.repoTags) })
    else for (const tag of image.repoTags) seen.tags.add(tag)
  }
  return [...byId.values()].map(({ image, tags }) => ({
    id: image.id,
    config: image.config,
    diffIds: image.diffIds,
    layers: image.layers,
    repoTags: [...tags],
    ...(image.manifestDigest === undefined ? {} : { manifestDigest: image.manifestDigest }),
  }))
}
