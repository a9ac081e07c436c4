/** The graph driver a store root uses, by Docker's name. */
import type { Driver } from '../drivers/types.js'
import { createVfsDriver } from '../drivers/vfs.js'
import { DriverNotSupportedError } from '../drivers/errors.js'

export async function openDriver(root: string, name: string): Promise<Driver> {
  if (name === 'vfs') return createVfsDriver(root)
  throw new DriverNotSupportedError(name, 'no such driver here (available: vfs)')
}
