export * from './types.js'
export * from './errors.js'
export * from './limits.js'
export { TarReader, readTar } from './reader.js'
