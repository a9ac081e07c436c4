import { DriverError } from './errors.js'

/** NAME_MAX: a driver id is a directory name. */
const MAX_ID_BYTES = 255

/**
 * Throws DRIVER_INVALID_ID unless `id` can name a directory of its own: one path component,
 * not `.` or `..`, no NUL, at most 255 bytes. Docker takes the base name of whatever it is
 * given; refusing is safer, since `a/../../x` or `..` would name a directory outside the
 * driver's home.
 */
export function checkId(id: unknown, what = 'id'): asserts id is string {
  let reason: string | undefined
  if (typeof id !== 'string' || id === '') reason = 'it is empty'
  else if (id === '.' || id === '..') reason = 'it is "." or ".."'
  else if (id.includes('/')) reason = 'it contains "/"'
  else if (id.includes('\0')) reason = 'it contains a NUL byte'
  else if (Buffer.byteLength(id) > MAX_ID_BYTES) reason = `it is longer than ${MAX_ID_BYTES} bytes`
  if (reason !== undefined)
    throw new DriverError(
      'DRIVER_INVALID_ID',
      `Cannot use driver ${what} ${JSON.stringify(String(id)).slice(0, 300)}: ${reason}`,
    )
}
