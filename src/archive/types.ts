/**
 * The archive contract: applying a layer diff (a tar) to a directory, comparing two trees,
 * and exporting a comparison as a layer diff. Docker's `pkg/archive` semantics (SPEC.md §6).
 *
 * Layer tars always carry AUFS whiteouts (`.wh.<name>`, `.wh..wh..opq`). A directory holds
 * them in one of two forms, chosen by the caller:
 * - `aufs`: whiteouts are applied by deleting what they hide (the directory is a full tree,
 *   as vfs keeps it); exporting writes `.wh.` entries for deletions found by comparison.
 * - `overlay`: the directory is one layer of an overlayfs stack (overlay2's `diff/`):
 *   whiteouts become 0/0 character devices, opaque markers `trusted.overlay.opaque=y` (at a
 *   layer's root, where overlayfs ignores that xattr, one whiteout per name below).
 *
 * Comparing: `changes(new, old)` walks two whole trees; `overlayChanges(upper, lowers)` gives
 * the same list for an overlayfs upper directory from that directory alone.
 *
 * Applying: `apply(tar, dir)` reads the tar itself; an `Applier` takes entries one at a time
 * (an {@link EntryTarget}) from a caller that reads it, as the layer store does to split, hash
 * and apply in one pass. Small files are created on the thread pool (small-files.ts).
 * Decompressing: `decompress(source)` by magic number (gzip on a thread of the addon's,
 * gunzip-thread.ts; xz, bzip2 and zstd through their programs).
 */

export type WhiteoutFormat = 'aufs' | 'overlay'

/** A container uid/gid range mapped to host ids (Docker's idtools.IDMap). */
export interface IdMapping {
  readonly containerId: number
  readonly hostId: number
  readonly size: number
}

export interface IdMappings {
  readonly uids: readonly IdMapping[]
  readonly gids: readonly IdMapping[]
}

export interface ApplyOptions {
  /** How whiteouts are represented on disk (default `aufs`). */
  readonly whiteoutFormat?: WhiteoutFormat
  /**
   * Overlay form: the directories of the layers below the target, top first. Names resolve in
   * their merged view (a lower layer's file is copied up for a hard link, its symlinks are
   * followed), as the kernel will show the stack.
   */
  readonly lowers?: readonly string[]
  /** Container → host id mapping (user namespaces); unmapped ids fail the apply. */
  readonly idMappings?: IdMappings
  /** Do not change ownership (unprivileged stores): files belong to the caller. */
  readonly noLchown?: boolean
  /**
   * Unsupported xattrs (ENOTSUP, or EPERM for `trusted.*` when not root) are skipped with a
   * warning instead of failing the apply.
   */
  readonly bestEffortXattrs?: boolean
  readonly onWarning?: (code: ArchiveWarningCode, message: string) => void
  readonly signal?: AbortSignal
}

export type ArchiveWarningCode =
  | 'ARCHIVE_XATTR_SKIPPED' // an xattr the filesystem or our privileges do not allow
  | 'ARCHIVE_DEVICE_SKIPPED' // a device node that cannot be created without privileges

export interface ApplyResult {
  /** Σ header sizes of every entry, as Docker's UnpackLayer reports (SPEC.md §6.9). */
  readonly size: number
  /** Entries read from the tar (all types, skipped ones included). */
  readonly entries: number
}

export type { EntryTarget, FileSink } from '../tar/entry-target.js'

/** SPEC.md §6.7: `C` modified, `A` added, `D` deleted (Docker's ChangeModify/Add/Delete). */
export type ChangeKind = 'A' | 'C' | 'D'

export interface Change {
  /** Absolute path inside the tree (`/etc/hosts`), as UTF-8 text (lossy for other bytes). */
  readonly path: string
  /** The same path as the exact bytes of the file name: what export writes. */
  readonly pathRaw: Buffer
  readonly kind: ChangeKind
}
