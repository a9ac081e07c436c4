import type { ErrorKind } from '../errors.js'

/**
 * Exit status by error kind, so that scripts can branch without parsing messages.
 * 1 is left for unexpected failures, 2 for usage errors.
 */
export const EXIT: Readonly<Record<ErrorKind | 'usage' | 'unexpected', number>> = {
  unexpected: 1,
  usage: 2,
  'invalid-argument': 3,
  'not-found': 4,
  'already-exists': 5,
  conflict: 6,
  'failed-precondition': 7,
  'data-loss': 8,
  unavailable: 9,
  internal: 10,
}
