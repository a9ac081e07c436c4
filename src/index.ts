// The public API: re-exports only.
export * from './errors.js'
export * from './digest/index.js'
export * from './tar/index.js'
export * from './tarsplit/index.js'
export * from './archive/index.js'
