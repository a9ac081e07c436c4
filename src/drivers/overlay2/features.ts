/**
 * What the kernel and the backing filesystem let overlay2 do, found once when the driver
 * opens (SPEC.md §5.5): a test mount with two lowers must work, the backing filesystem must
 * report file types in directory entries (d_type), and the native diff is used only when the
 * kernel neither records renamed directories as redirects nor copies up metadata only
 * (metacopy): either way the upper directory alone would no longer say what changed.
 *
 * The test runs in a scratch directory inside the driver's home (the filesystem the layers
 * live on), removed afterwards, also after a failure.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  statfsSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { MNT_DETACH, sys } from '../../internal/sys.js'
import { DriverNotSupportedError } from '../errors.js'
import { removeAll } from '../remove-all.js'

export const OVERLAY2 = 'overlay2'

export interface OverlayFeatures {
  /** Docker's name of the backing filesystem (`extfs`, `xfs`...). */
  readonly backingFs: string
  /** `index=off,` when the kernel has the parameter (Docker does the same), else ''. */
  readonly optionPrefix: string
  /** Whether a layer's changes can be read from its upper directory alone. */
  readonly nativeDiff: boolean
  /** Why not, when not. */
  readonly naiveReason?: string
  readonly metacopy: boolean
}

/** statfs f_type → Docker's backing filesystem names (the ones overlay2 meets). */
const FS_NAMES = new Map<number, string>([
  [0xef53, 'extfs'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x2fc12fc1, 'zfs'],
  [0x794c7630, 'overlayfs'],
  [0x6969, 'nfs'],
  [0xf2f52010, 'f2fs'],
])

function backingFs(dir: string): string {
  const type = statfsSync(dir).type
  return FS_NAMES.get(type) ?? `<unknown 0x${type.toString(16)}>`
}

const hasXattr = (path: string, name: string): boolean => sys.lgetxattr(path, name) !== undefined

/** Runs the feature tests in `home` (which must exist); DRIVER_NOT_SUPPORTED when they fail. */
export async function checkFeatures(home: string): Promise<OverlayFeatures> {
  const fs = backingFs(home)
  if (fs === 'overlayfs')
    throw new DriverNotSupportedError(OVERLAY2, `${home} is on overlayfs itself (nested overlay)`)
  const optionPrefix = existsSync('/sys/module/overlay/parameters/index') ? 'index=off,' : ''
  const scratch = mkdtempSync(join(home, 'check-'))
  const [l1, l2, upper, work, merged] = ['l1', 'l2', 'upper', 'work', 'merged'].map((n) =>
    join(scratch, n),
  ) as [string, string, string, string, string]
  try {
    for (const d of [l1, l2, upper, work, merged, join(l2, 'd')]) mkdirSync(d, { recursive: true })
    writeFileSync(join(l2, 'd', 'f'), 'x')
    if (!sys.hasDirentTypes(l2))
      throw new DriverNotSupportedError(
        OVERLAY2,
        `the ${fs} filesystem of ${home} does not report file types (d_type); ` +
          'reformat it with ftype=1 (xfs) or -O filetype (ext4)',
      )
    const data = `${optionPrefix}lowerdir=${l1}:${l2},upperdir=${upper},workdir=${work}`
    try {
      await mountScratch(merged, data)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err)
      throw new DriverNotSupportedError(OVERLAY2, `a test overlay mount failed (${code})`, {
        cause: err,
      })
    }
    try {
      return { backingFs: fs, optionPrefix, ...probeDiff(merged, upper) }
    } finally {
      await sys.umount2(merged, MNT_DETACH)
    }
  } finally {
    chmodSync(scratch, 0o700)
    await removeAll(scratch)
  }
}

/**
 * The test mount, `volatile` where the kernel has it (5.10): unmounting an overlay syncs its
 * upper filesystem, so every store opened (every CLI command) waited for whatever other
 * programs had left dirty on it (0.5 s behind 450 MB written by a `tar -x`). A volatile
 * overlay skips that sync, and this one is thrown away.
 */
async function mountScratch(merged: string, data: string): Promise<void> {
  try {
    await sys.mount('overlay', merged, 'overlay', 0, `volatile,${data}`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
    await sys.mount('overlay', merged, 'overlay', 0, data) // a kernel without volatile
  }
}

/** Renames a lower directory and chmods a lower file through the mount, and looks at upper. */
function probeDiff(
  merged: string,
  upper: string,
): Pick<OverlayFeatures, 'nativeDiff' | 'naiveReason' | 'metacopy'> {
  chmodSync(join(merged, 'd', 'f'), 0o600) // copies f (and d) up
  const metacopy = hasXattr(join(upper, 'd', 'f'), 'trusted.overlay.metacopy')
  let redirect = false
  try {
    renameSync(join(merged, 'd'), join(merged, 'e'))
    redirect = hasXattr(join(upper, 'e'), 'trusted.overlay.redirect')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err // the kernel refused: fine
  }
  if (metacopy) return { nativeDiff: false, naiveReason: 'metacopy is enabled', metacopy }
  if (redirect) return { nativeDiff: false, naiveReason: 'redirect_dir is enabled', metacopy }
  return { nativeDiff: true, metacopy }
}
