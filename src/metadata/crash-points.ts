/**
 * Named points between the steps of every multi-step change of the layerdb, for the
 * crash-consistency tests: a test child process installs a hook that kills itself (SIGKILL) at
 * one point, then the test reopens the layerdb and checks that what is visible is complete.
 * Not exported from the package; a no-op unless a hook is installed.
 */

/** Every crash point, in the order a commit, a removal or a mount change reaches them. */
export const CRASH_POINTS = [
  'tmp:created', // a directory created under tmp/, not yet locked
  'commit:written', // small files written, nothing synced
  'commit:synced', // files and write set synced, not renamed
  'commit:renamed', // record visible, sha256/ not synced
  'remove:renamed', // record renamed -removing, sha256/ not synced
  'finish-remove:done', // -removing directory gone
  'mount:synced', // mount write set synced, not renamed
  'mount:aside', // replacing: aside directory ready, old record still in place
  'mount:old-moved', // replacing: old record moved aside, new one not yet renamed in
  'mount:renamed', // new record visible, aside not yet removed
  'mount-remove:moved', // removed record moved aside, not yet deleted
  'quarantine:moved', // record moved under quarantine/, directories not synced
] as const

export type CrashPoint = (typeof CRASH_POINTS)[number]

let hook: ((point: CrashPoint) => void) | undefined

/** Installs (or, with undefined, removes) the hook called at every crash point. */
export function setCrashHook(fn: ((point: CrashPoint) => void) | undefined): void {
  hook = fn
}

export function crashPoint(point: CrashPoint): void {
  hook?.(point)
}
