/**
 * The fields of an image configuration (OCI image-spec `config.json`, Docker's image JSON) that
 * the store needs. The bytes themselves are kept as they are: the image ID is their hash.
 */
import { parseDiffId, type DiffId } from '../digest/digest.js'
import { ImageArchiveError } from './errors.js'

export interface ImageConfig {
  readonly diffIds: readonly DiffId[]
  readonly os: string
  readonly architecture: string
  readonly variant?: string
  readonly created?: string
  /** The whole configuration, parsed. */
  readonly json: Record<string, unknown>
}

/** Parses a configuration; IMAGE_ARCHIVE_INVALID names `where` when it is not one. */
export function parseImageConfig(bytes: Uint8Array, where: string): ImageConfig {
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (err) {
    throw new ImageArchiveError('IMAGE_ARCHIVE_INVALID', `${where}: configuration is not JSON`, {
      cause: err,
    })
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ImageArchiveError('IMAGE_ARCHIVE_INVALID', `${where}: configuration is not an object`)
  const c = json as Record<string, unknown>
  const rootfs = c['rootfs'] as { type?: unknown; diff_ids?: unknown } | null | undefined
  // Docker: "invalid image JSON, no RootFS key".
  if (rootfs === null || typeof rootfs !== 'object' || !Array.isArray(rootfs.diff_ids))
    throw new ImageArchiveError(
      'IMAGE_ARCHIVE_INVALID',
      `${where}: configuration has no rootfs.diff_ids`,
    )
  if (rootfs.type !== 'layers')
    throw new ImageArchiveError(
      'IMAGE_ARCHIVE_INVALID',
      `${where}: rootfs.type is ${JSON.stringify(rootfs.type)}, not "layers"`,
    )
  const diffIds = rootfs.diff_ids.map((d: unknown, i) => {
    try {
      return parseDiffId(String(d))
    } catch (err) {
      throw new ImageArchiveError(
        'IMAGE_ARCHIVE_INVALID',
        `${where}: rootfs.diff_ids[${i}] is not a sha256 digest`,
        { cause: err },
      )
    }
  })
  const str = (k: string): string | undefined => {
    const v = c[k]
    return typeof v === 'string' ? v : undefined
  }
  const variant = str('variant')
  const created = str('created')
  return {
    diffIds,
    os: str('os') ?? '',
    architecture: str('architecture') ?? '',
    ...(variant !== undefined ? { variant } : {}),
    ...(created !== undefined ? { created } : {}),
    json: c,
  }
}
