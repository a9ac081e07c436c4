/**
 * Docker's `directory.Size` (SPEC.md §6.9): the bytes a directory's non-directory nodes take
 * by lstat size (a symlink counts its target's length, an overlay whiteout 0), an inode with
 * several links once. overlay2 records it as the size of a layer applied into its diff/. The
 * walk runs in the addon, on the thread pool (45k entries: ~0.3 s of main thread in
 * JavaScript).
 */
import { sys } from '../internal/sys.js'
import { DriverIoError } from './errors.js'

export async function directorySize(dir: string): Promise<number> {
  try {
    return await sys.directorySize(Buffer.from(dir))
  } catch (err) {
    const { code = 'error', path = dir } = err as NodeJS.ErrnoException
    throw new DriverIoError(`Cannot measure layer (${code})`, path, { cause: err })
  }
}
