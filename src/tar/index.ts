export * from './types.js'
export * from './errors.js'
export * from './limits.js'
export { TarReader, readTar } from './reader.js'
export type { ByteSource } from './byte-reader.js'
export { offer, type EntryTarget, type FileSink } from './entry-target.js'
export { feed } from './feed.js'
export {
  encodeHeader,
  formatPaxTime,
  type EncodedHeader,
  type EncodeHeaderOptions,
  type TarHeaderInput,
  type TarTime,
} from './encode.js'
export {
  TarWriter,
  writeTar,
  writeTarStream,
  END_OF_ARCHIVE_SIZE,
  type TarBody,
  type TarWriteEntry,
  type WriteTarOptions,
} from './writer.js'
