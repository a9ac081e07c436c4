import { StoreError } from '../errors.js'
import { ResolveError } from './layer-root.js'

/** Codes of layers that cannot be applied as they are: the input is at fault. */
export type ArchiveErrorCode =
  | 'ARCHIVE_BREAKOUT' // an entry name or hard-link target would resolve outside the target
  | 'ARCHIVE_INVALID_ENTRY' // an entry apply cannot create: unknown type, bad whiteout, bad device
  | 'ARCHIVE_UNMAPPED_ID' // a uid/gid outside the configured id mappings

/** A layer tar that cannot be applied. `entry` names the tar entry at fault. */
export class ArchiveError extends StoreError {
  override name = 'ArchiveError'
  readonly code: ArchiveErrorCode
  readonly kind = 'invalid-argument'
  readonly entry: string | undefined
  constructor(code: ArchiveErrorCode, message: string, entry?: string, options?: ErrorOptions) {
    super(entry === undefined ? message : `${message}: "${entry}"`, options)
    this.code = code
    this.entry = entry
  }
}

/** Codes of filesystem failures while working on a tree: the system is at fault. */
export type ArchiveIoErrorCode =
  | 'ARCHIVE_APPLY_FAILED' // the filesystem refused an operation of apply (errno in `cause`)
  | 'ARCHIVE_EXPORT_FAILED' // a file of the tree could not be read while comparing or exporting

/**
 * The filesystem refused an operation. `path` is the path inside the tree; `cause` holds the
 * fs error (its `code` is the errno name).
 */
export class ArchiveIoError extends StoreError {
  override name = 'ArchiveIoError'
  readonly code: ArchiveIoErrorCode
  readonly kind = 'unavailable'
  readonly path: string
  constructor(code: ArchiveIoErrorCode, message: string, path: string, options?: ErrorOptions) {
    super(`${message}: "${path}"`, options)
    this.code = code
    this.path = path
  }
}

/**
 * An apply failure as the error users see for `entry`: the input's fault (a name the resolver
 * refused, a name too long) an ArchiveError, a refused system call an ArchiveIoError.
 */
export function applyError(err: unknown, entry: string): Error {
  if (err instanceof ArchiveError || err instanceof ArchiveIoError) return err
  if (err instanceof ResolveError)
    return new ArchiveError('ARCHIVE_INVALID_ENTRY', err.message, entry, { cause: err })
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENAMETOOLONG')
    return new ArchiveError('ARCHIVE_INVALID_ENTRY', 'name too long for the file system', entry, {
      cause: err,
    })
  if (typeof code === 'string')
    return new ArchiveIoError(
      'ARCHIVE_APPLY_FAILED',
      `${(err as NodeJS.ErrnoException).syscall ?? 'apply'} failed (${code})`,
      entry,
      { cause: err },
    )
  return err instanceof Error ? err : new Error(String(err))
}
