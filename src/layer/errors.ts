import { StoreError } from '../errors.js'

/** No layer with that ChainID (Docker's ErrLayerDoesNotExist). */
export class LayerDoesNotExistError extends StoreError {
  override name = 'LayerDoesNotExistError'
  readonly code = 'LAYER_DOES_NOT_EXIST'
  readonly kind = 'not-found'
}

/** A release of something this store did not hand out, or released twice (ErrLayerNotRetained). */
export class LayerNotRetainedError extends StoreError {
  override name = 'LayerNotRetainedError'
  readonly code = 'LAYER_NOT_RETAINED'
  readonly kind = 'failed-precondition'
}

/** No read-write layer with that name (ErrMountDoesNotExist). */
export class MountDoesNotExistError extends StoreError {
  override name = 'MountDoesNotExistError'
  readonly code = 'MOUNT_DOES_NOT_EXIST'
  readonly kind = 'not-found'
}

/** A read-write layer with that name exists already (ErrMountNameConflict). */
export class MountNameConflictError extends StoreError {
  override name = 'MountNameConflictError'
  readonly code = 'MOUNT_NAME_CONFLICT'
  readonly kind = 'already-exists'
}

/** The chain would be deeper than 125 layers (ErrMaxDepthExceeded). */
export class MaxDepthExceededError extends StoreError {
  override name = 'MaxDepthExceededError'
  readonly code = 'MAX_DEPTH_EXCEEDED'
  readonly kind = 'failed-precondition'
}

/** A layer's parent chain loops back on itself (a damaged store; Docker overflows its stack). */
export class LayerCycleError extends StoreError {
  override name = 'LayerCycleError'
  readonly code = 'LAYER_CYCLE'
  readonly kind = 'data-loss'
}

/** A layer removal while other layers or read-write layers still hold it. */
export class LayerInUseError extends StoreError {
  override name = 'LayerInUseError'
  readonly code = 'LAYER_IN_USE'
  readonly kind = 'conflict'
}
