/**
 * The graph driver a store root uses (Docker's graphdriver.New, SPEC.md §5.1): the one named;
 * else the one the root already holds layers of (its `image/<name>/layerdb` or a non-empty
 * `<name>/` directory; two of them is an error, as in Docker); else overlay2 where the kernel
 * supports it, else vfs. Unlike Docker, a root that holds only vfs layers stays on vfs.
 * `LAYERSTORE_OVERLAY2_NAIVE=1` in the environment makes overlay2 use the naive diff (compare
 * mounted trees, apply on a mount) where it would read upper directories: for benchmarks.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Driver } from '../drivers/types.js'
import { createVfsDriver, VFS_DRIVER_NAME } from '../drivers/vfs.js'
import {
  createOverlay2Driver,
  OVERLAY2_DRIVER_NAME,
  type Overlay2Options,
} from '../drivers/overlay2.js'
import { DriverError, DriverNotSupportedError } from '../drivers/errors.js'

export const DRIVERS = [OVERLAY2_DRIVER_NAME, VFS_DRIVER_NAME] as const

/** overlay2's options from the environment (see the file comment). */
const overlay2Options = (): Overlay2Options => ({
  naive: process.env['LAYERSTORE_OVERLAY2_NAIVE'] === '1',
})

function nonEmpty(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0
  } catch {
    return false
  }
}

/** Drivers the root holds layers of. */
export function driversInUse(root: string): string[] {
  return DRIVERS.filter(
    (name) =>
      nonEmpty(join(root, 'image', name, 'layerdb', 'sha256')) ||
      nonEmpty(join(root, 'image', name, 'layerdb', 'mounts')) ||
      (name === VFS_DRIVER_NAME
        ? nonEmpty(join(root, name, 'dir'))
        : nonEmpty(join(root, name)) && nonEmpty(join(root, name, 'l'))),
  )
}

export async function openDriver(root: string, name?: string): Promise<Driver> {
  if (name === VFS_DRIVER_NAME) return createVfsDriver(root)
  if (name === OVERLAY2_DRIVER_NAME) return createOverlay2Driver(root, overlay2Options())
  if (name !== undefined)
    throw new DriverNotSupportedError(name, `no such driver (available: ${DRIVERS.join(', ')})`)
  const used = driversInUse(root)
  if (used.length > 1)
    throw new DriverError(
      'DRIVER_INVALID_OPTION',
      `${root} contains several valid drivers: ${used.join(', ')}; choose one with --driver`,
    )
  if (used.length === 1) return openDriver(root, used[0])
  try {
    return await createOverlay2Driver(root, overlay2Options())
  } catch (err) {
    if (!(err instanceof DriverNotSupportedError)) throw err
    return createVfsDriver(root)
  }
}
