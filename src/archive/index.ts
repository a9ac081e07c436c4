export * from './types.js'
export * from './errors.js'
export * from './decompress-errors.js'
export { apply, Applier } from './apply.js'
export { feed } from '../tar/feed.js'
export { offer } from '../tar/entry-target.js'
export { changes, changesSize, type ChangesOptions } from './changes.js'
export { exportChanges, exportTree, type ExportOptions } from './export-changes.js'
export {
  decompress,
  detectCompression,
  type Compression,
  type Decompressed,
  type DecompressOptions,
} from './decompress.js'
export { overlayChanges } from './overlay-changes.js'
