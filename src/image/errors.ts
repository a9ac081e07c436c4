import { StoreError } from '../errors.js'

/** No image matches the reference (Docker's "No such image"). */
export class ImageDoesNotExistError extends StoreError {
  override name = 'ImageDoesNotExistError'
  readonly code = 'IMAGE_DOES_NOT_EXIST'
  readonly kind = 'not-found'
}

/** A reference that is not a valid image name, tag, digest or ID (Docker's ErrReferenceInvalidFormat). */
export class ReferenceInvalidError extends StoreError {
  override name = 'ReferenceInvalidError'
  readonly code = 'REFERENCE_INVALID'
  readonly kind = 'invalid-argument'
}

/** An image ID prefix that matches more than one image. */
export class ReferenceAmbiguousError extends StoreError {
  override name = 'ReferenceAmbiguousError'
  readonly code = 'REFERENCE_AMBIGUOUS'
  readonly kind = 'invalid-argument'
}

/** `image rm ID` of an image that several names point at (Docker refuses it without `-f`). */
export class ImageConflictError extends StoreError {
  override name = 'ImageConflictError'
  readonly code = 'IMAGE_CONFLICT'
  readonly kind = 'conflict'
}

/** A layer whose uncompressed bytes do not hash to the configuration's `rootfs.diff_ids` entry. */
export class DiffIdMismatchError extends StoreError {
  override name = 'DiffIdMismatchError'
  readonly code = 'IMAGE_DIFF_ID_MISMATCH'
  readonly kind = 'invalid-argument'
}

/** Codes of archives (docker-archive, OCI layout) that cannot be loaded as they are. */
export type ImageArchiveErrorCode =
  | 'IMAGE_ARCHIVE_INVALID' // bad JSON, missing fields, layer counts that disagree
  | 'IMAGE_BLOB_MISSING' // a manifest names a blob the archive does not hold
  | 'IMAGE_FILE_TOO_LARGE' // a manifest, index or configuration over its cap

/** A docker-archive or OCI layout that is malformed. */
export class ImageArchiveError extends StoreError {
  override name = 'ImageArchiveError'
  readonly code: ImageArchiveErrorCode
  readonly kind = 'invalid-argument'
  constructor(code: ImageArchiveErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** An OCI index with no image for the requested platform. */
export class NoMatchingPlatformError extends StoreError {
  override name = 'NoMatchingPlatformError'
  readonly code = 'IMAGE_NO_MATCHING_PLATFORM'
  readonly kind = 'not-found'
}
