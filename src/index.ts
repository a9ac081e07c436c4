// The public API: re-exports only.
export * from './errors.js'
export * from './digest/index.js'
export * from './tar/index.js'
export * from './tarsplit/index.js'
export * from './archive/index.js'
export * from './drivers/types.js'
export * from './drivers/errors.js'
export { createVfsDriver } from './drivers/vfs.js'
export * from './metadata/types.js'
export * from './metadata/errors.js'
export * from './layer/types.js'
export * from './layer/errors.js'
export { LayerStore, MAX_LAYER_DEPTH } from './layer/layer-store.js'
export * from './image/types.js'
export * from './image/errors.js'
export { ImageStore, type ImageStoreOptions, type RemoveResult } from './image/image-store.js'
export {
  parseReference,
  formatReference,
  familiarString,
  withDefaultTag,
  normalizeTag,
} from './image/reference.js'
