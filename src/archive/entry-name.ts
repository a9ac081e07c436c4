/**
 * Names of tar entries as the applier resolves them inside its target: Docker's cleaning rule,
 * split into the parent directory and the last component, latin1 text (one char a byte).
 */
import type { TarHeader } from '../tar/types.js'
import { cleanPath } from '../tarsplit/clean-path.js'
import { ArchiveError } from './errors.js'

/** An entry's cleaned name: `dir` and `base` as latin1 text (one char a byte). */
export interface Name {
  readonly full: string
  readonly dir: string
  readonly base: string
}

/**
 * Docker's name rule: strip leading `/`, clean; `.` is the root (skipped); a name that climbs
 * out of the root is a breakout.
 */
export function cleanName(header: TarHeader): Name | undefined {
  let raw = header.nameRaw.toString('latin1')
  let i = 0
  while (i < raw.length && raw.charCodeAt(i) === 0x2f) i++
  raw = cleanPath(raw.slice(i))
  if (raw === '.') return undefined
  if (raw === '..' || raw.startsWith('../'))
    throw new ArchiveError(
      'ARCHIVE_BREAKOUT',
      'invalid entry name (escapes the target)',
      header.name,
    )
  return { full: raw, ...splitName(raw) }
}

/** A hard link's target inside the root: absolute targets are root-relative (kaniko). */
export function cleanLinkTarget(header: TarHeader): string | undefined {
  let t = header.linknameRaw.toString('latin1')
  let i = 0
  while (i < t.length && t.charCodeAt(i) === 0x2f) i++
  t = cleanPath(t.slice(i))
  if (t === '.' || t === '..' || t.startsWith('../')) return undefined
  return t
}

export function splitName(name: string): { dir: string; base: string } {
  const slash = name.lastIndexOf('/')
  return slash < 0
    ? { dir: '', base: name }
    : { dir: name.slice(0, slash), base: name.slice(slash + 1) }
}
