/**
 * Storage options of create/createReadWrite (Docker's CreateOpts.StorageOpt), checked alike by
 * every driver: image layers take none; read-write layers know only `size`, which needs
 * quotas that neither vfs nor overlay2 implements here (Docker: xfs project quotas).
 */
import { DriverError, DriverNotSupportedError } from './errors.js'
import type { CreateOptions } from './types.js'

export function checkStorageOptions(
  driver: string,
  id: string,
  options: CreateOptions,
  readWrite: boolean,
): void {
  const keys = Object.keys(options.storageOpt ?? {})
  if (keys.length === 0) return
  if (!readWrite)
    throw new DriverError(
      'DRIVER_INVALID_OPTION',
      `Cannot create layer "${id}": storage options are not supported for image layers`,
    )
  const key = keys[0]!
  if (key.toLowerCase() === 'size')
    throw new DriverNotSupportedError(driver, 'a size limit needs quotas, not implemented')
  throw new DriverError(
    'DRIVER_INVALID_OPTION',
    `Cannot create layer "${id}": unknown storage option "${key}"`,
  )
}
