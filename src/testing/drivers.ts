/** The drivers store-level tests run on: vfs everywhere, overlay2 where overlayfs mounts. */
import { overlayUnsupported } from './overlay-mount.js'

export interface DriverUnderTest {
  readonly name: 'vfs' | 'overlay2'
  /** Why the driver's tests are skipped here, if they are. */
  readonly skip?: string
}

let cached: DriverUnderTest[] | undefined

export function driversUnderTest(): DriverUnderTest[] {
  if (cached !== undefined) return cached
  const why = overlayUnsupported()
  cached = [
    { name: 'vfs' },
    why === undefined ? { name: 'overlay2' } : { name: 'overlay2', skip: why },
  ]
  return cached
}
