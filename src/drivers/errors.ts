import { StoreError } from '../errors.js'

/** Codes of requests a driver refuses as they are: the caller is at fault. */
export type DriverErrorCode =
  | 'DRIVER_INVALID_ID' // an id that is not one path component (empty, `.`, `..`, `/`, NUL)
  | 'DRIVER_INVALID_OPTION' // a storage option the driver does not know or refuses here

/** A driver id or option that cannot be used. */
export class DriverError extends StoreError {
  override name = 'DriverError'
  readonly code: DriverErrorCode
  readonly kind = 'invalid-argument'
  constructor(code: DriverErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/**
 * The driver cannot work here: the kernel or the backing filesystem lacks a feature (overlay
 * mounts, d_type, quotas). Docker's graphdriver.ErrNotSupported; driver selection skips to the
 * next driver on it.
 */
export class DriverNotSupportedError extends StoreError {
  override name = 'DriverNotSupportedError'
  readonly code = 'DRIVER_NOT_SUPPORTED'
  readonly kind = 'failed-precondition'
  readonly driver: string
  constructor(driver: string, reason: string, options?: ErrorOptions) {
    super(`Cannot use driver "${driver}": ${reason}`, options)
    this.driver = driver
  }
}

/** A layer (or the parent named to create one) has no data in the driver. */
export class DriverLayerNotFoundError extends StoreError {
  override name = 'DriverLayerNotFoundError'
  readonly code = 'DRIVER_LAYER_NOT_FOUND'
  readonly kind = 'not-found'
  readonly id: string
  constructor(id: string, detail = 'does not exist', options?: ErrorOptions) {
    super(`Cannot find driver layer "${id}": ${detail}`, options)
    this.id = id
  }
}

/** create() of an id the driver already holds. */
export class DriverLayerExistsError extends StoreError {
  override name = 'DriverLayerExistsError'
  readonly code = 'DRIVER_LAYER_EXISTS'
  readonly kind = 'already-exists'
  readonly id: string
  constructor(id: string, options?: ErrorOptions) {
    super(`Cannot create driver layer "${id}": it exists already`, options)
    this.id = id
  }
}

/**
 * The filesystem refused an operation on a layer's directory (out of space, permission, a file
 * that vanished while it was copied). `cause` is the fs error; `path` the host path.
 */
export class DriverIoError extends StoreError {
  override name = 'DriverIoError'
  readonly code = 'DRIVER_IO_FAILED'
  readonly kind = 'unavailable'
  readonly path: string
  constructor(message: string, path: string, options?: ErrorOptions) {
    super(`${message}: "${path}"`, options)
    this.path = path
  }
}
