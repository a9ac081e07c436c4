import { StoreError } from '../errors.js'

/** Two file entries clean to the same path: tar-split cannot tell their files apart. */
export class DuplicatePathError extends StoreError {
  override name = 'DuplicatePathError'
  readonly code = 'TARSPLIT_DUPLICATE_PATH'
  readonly kind = 'invalid-argument'
  readonly path: string
  constructor(path: string, options?: ErrorOptions) {
    super(
      `Cannot record tar-split entry: duplicates of file paths not supported ("${path}")`,
      options,
    )
    this.path = path
  }
}

/** tar-split metadata that cannot be decoded (not gzip, not JSON, bad field). */
export class InvalidMetadataError extends StoreError {
  override name = 'InvalidMetadataError'
  readonly code = 'TARSPLIT_INVALID_METADATA'
  readonly kind = 'invalid-argument'
}

/** A file's bytes no longer match what was recorded when the tar was split. */
export class FileIntegrityError extends StoreError {
  override name = 'FileIntegrityError'
  readonly code = 'TARSPLIT_FILE_INTEGRITY'
  readonly kind = 'data-loss'
  readonly path: string
  constructor(path: string, detail: string, options?: ErrorOptions) {
    super(`Cannot assemble tar: file integrity checksum failed for "${path}": ${detail}`, options)
    this.path = path
  }
}

/** A file named by the metadata is missing, or is not a regular file inside the root. */
export class FileMissingError extends StoreError {
  override name = 'FileMissingError'
  readonly code = 'TARSPLIT_FILE_MISSING'
  readonly kind = 'data-loss'
  readonly path: string
  constructor(path: string, detail: string, options?: ErrorOptions) {
    super(`Cannot assemble tar: cannot open "${path}": ${detail}`, options)
    this.path = path
  }
}
