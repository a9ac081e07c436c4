export * from './types.js'
export {
  InvalidNameError,
  MetadataCorruptError,
  MetadataExistsError,
  MetadataIoError,
  MetadataNotFoundError,
  type MetadataErrorCode,
  type RecordKind,
} from './errors.js'
export { LayerDb } from './layer-db.js'
export { LayerTransaction, TAR_SPLIT_FILE, type CommitOptions } from './transaction.js'
export type { WriteMountOptions } from './mounts.js'
export { isValidId, syncFilesystem } from './files.js'
