/**
 * The error model shared by every layer of layerstore.
 *
 * Three layers, lowest that fits:
 * 1. Programmer errors (bad arguments) throw built-ins: `TypeError`, `RangeError`.
 * 2. Domain errors are {@link StoreError} subclasses with a stable `code` that mirrors
 *    Docker's sentinel (`LAYER_DOES_NOT_EXIST` for `ErrLayerDoesNotExist`) and a `kind`
 *    that mirrors containerd's errdefs classes. Callers branch on `kind`, tests on `code`,
 *    the CLI maps `kind` to an exit status.
 * 3. Recoverable anomalies are warnings delivered through an `onWarning` option.
 *
 * Every code is listed in docs/errors.md; a test keeps the two in step.
 */

/** What went wrong, in containerd's errdefs vocabulary. */
export type ErrorKind =
  | 'not-found'
  | 'already-exists'
  | 'conflict'
  | 'invalid-argument'
  | 'failed-precondition'
  | 'data-loss'
  | 'unavailable'
  | 'internal'

/** Base of every domain error. Match on `code` with {@link hasCode}, not `instanceof`. */
export abstract class StoreError extends Error {
  abstract readonly code: string
  abstract readonly kind: ErrorKind
}

/**
 * True when `err` is a domain error with the given code. Codes are compared, not classes,
 * because two copies of this package may be loaded in one process.
 */
export function hasCode(err: unknown, code: string): err is StoreError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as { code?: unknown }).code === code &&
    err instanceof Error
  )
}

/** The `kind` of a domain error, or undefined for anything else. */
export function kindOf(err: unknown): ErrorKind | undefined {
  if (err instanceof StoreError) return err.kind
  return undefined
}

/** A broken invariant: a bug in layerstore, never caught (moby panics here). */
export class InternalError extends StoreError {
  override name = 'InternalError'
  readonly code = 'INTERNAL'
  readonly kind = 'internal'
}
