import { join } from 'node:path'

/** The directories of a layerdb (SPEC.md §3.1), plus our `quarantine/`. */
export interface Layout {
  /** `<root>/image/<driver>/layerdb` */
  readonly root: string
  /** Layer records: `sha256/<hex>/`, and `sha256/<hex>-<random>-removing/` while deleted. */
  readonly sha256: string
  /** Read-write layer records: `mounts/<name>/`. */
  readonly mounts: string
  /** Work in flight: `write-set-*` (Docker's name), `mount-replaced-*`, `removing-*`. */
  readonly tmp: string
  /** Records that could not be read, moved aside (Docker never looks here). */
  readonly quarantine: string
}

export function layoutOf(root: string): Layout {
  return {
    root,
    sha256: join(root, 'sha256'),
    mounts: join(root, 'mounts'),
    tmp: join(root, 'tmp'),
    quarantine: join(root, 'quarantine'),
  }
}

/** Prefix of transaction directories under `tmp/`, as Docker names them. */
export const WRITE_SET_PREFIX = 'write-set-'
/** Prefix of the directory holding a mount record while it is replaced (with its name). */
export const MOUNT_REPLACED_PREFIX = 'mount-replaced-'
/** Prefix of the directory holding a mount record while it is removed. */
export const REMOVING_PREFIX = 'removing-'
