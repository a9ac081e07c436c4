import { StoreError } from '../errors.js'

/** Which kind of record an error or a quarantine is about. */
export type RecordKind = 'layer' | 'mount'

/**
 * A record on disk that cannot be read as it is: a required file is missing, a value does not
 * parse, `descriptor.json` is not JSON. The caller decides whether to quarantine it
 * (`LayerDb.quarantine(err.recordKind, err.name, err.reason)`).
 */
export class MetadataCorruptError extends StoreError {
  override name = 'MetadataCorruptError'
  readonly code = 'METADATA_CORRUPT'
  readonly kind = 'data-loss'
  readonly recordKind: RecordKind
  /** The record's directory name (`<hex>` under `sha256/`, the mount name under `mounts/`). */
  readonly recordName: string
  /** The file (or directory) at fault. */
  readonly path: string
  /** What is wrong with it, without the path. */
  readonly reason: string
  constructor(
    recordKind: RecordKind,
    recordName: string,
    path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot read ${recordKind} record "${recordName}": ${reason} ("${path}")`, options)
    this.recordKind = recordKind
    this.recordName = recordName
    this.path = path
    this.reason = reason
  }
}

/** A layer record (or a mount record written exclusively) exists already where one is created. */
export class MetadataExistsError extends StoreError {
  override name = 'MetadataExistsError'
  readonly code = 'METADATA_EXISTS'
  readonly kind = 'already-exists'
  readonly recordKind: RecordKind
  readonly recordName: string
  readonly path: string
  constructor(recordKind: RecordKind, recordName: string, path: string, options?: ErrorOptions) {
    super(`Cannot write ${recordKind} record "${recordName}": it exists ("${path}")`, options)
    this.recordKind = recordKind
    this.recordName = recordName
    this.path = path
  }
}

/** No record of that name: `readLayer`, `readMount`, `beginRemove`, `removeMount`, `quarantine`. */
export class MetadataNotFoundError extends StoreError {
  override name = 'MetadataNotFoundError'
  readonly code = 'METADATA_NOT_FOUND'
  readonly kind = 'not-found'
  readonly recordKind: RecordKind
  readonly recordName: string
  readonly path: string
  constructor(recordKind: RecordKind, recordName: string, path: string, options?: ErrorOptions) {
    super(`Cannot find ${recordKind} record "${recordName}" ("${path}")`, options)
    this.recordKind = recordKind
    this.recordName = recordName
    this.path = path
  }
}

/**
 * A name that cannot be a path component: empty, `.`, `..`, with a `/` or a NUL, or longer than
 * 255 bytes. Read-write layer names become directory names under `mounts/` (SPEC.md §8.3).
 */
export class InvalidNameError extends StoreError {
  override name = 'InvalidNameError'
  readonly code = 'METADATA_INVALID_NAME'
  readonly kind = 'invalid-argument'
  readonly value: string
  constructor(what: string, value: string, reason: string, options?: ErrorOptions) {
    super(`Cannot use ${what} "${value.slice(0, 300)}": ${reason}`, options)
    this.value = value
  }
}

/**
 * The filesystem refused an operation on the layerdb (permissions, no space, a file where a
 * directory should be). `cause` is the fs error; its `code` is the errno name (`ENOTDIR`).
 */
export class MetadataIoError extends StoreError {
  override name = 'MetadataIoError'
  readonly code = 'METADATA_IO_FAILED'
  readonly kind = 'unavailable'
  /** The errno name of the cause (`ENOTDIR`, `EACCES`), when it has one. */
  readonly errno: string | undefined
  constructor(action: string, cause: unknown) {
    super(`Cannot ${action}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    const code = (cause as { code?: unknown } | null)?.code
    this.errno = typeof code === 'string' ? code : undefined
  }
}

/** Every code this folder raises. */
export type MetadataErrorCode =
  | MetadataCorruptError['code']
  | MetadataExistsError['code']
  | MetadataNotFoundError['code']
  | InvalidNameError['code']
  | MetadataIoError['code']

/**
 * Runs `fn`; an fs error it throws becomes a {@link MetadataIoError} ("Cannot <action>: …").
 * Domain errors and programmer errors (TypeError, RangeError) pass through unchanged.
 */
export async function withIo<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw asIoError(action, err)
  }
}

export function asIoError(action: string, err: unknown): unknown {
  if (err instanceof StoreError || err instanceof TypeError || err instanceof RangeError) return err
  return new MetadataIoError(action, err)
}
