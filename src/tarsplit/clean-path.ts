import { createHash } from 'node:crypto'

/** Anything Clean would change: `.` or `..` components, doubled or trailing slashes. */
const NOT_CLEAN = /(?:^|\/)\.{1,2}(?:\/|$)|\/\/|\/$/

/**
 * Go's path.Clean on a byte string held as latin1 text (one char a byte): the key under which
 * tar-split detects duplicate names, so `a`, `./a` and `a/` are one path.
 */
export function cleanPath(p: string): string {
  if (p === '') return '.'
  if (!NOT_CLEAN.test(p)) return p
  const rooted = p.startsWith('/')
  const out: string[] = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop()
      else if (!rooted) out.push('..')
      continue
    }
    out.push(part)
  }
  const s = out.join('/')
  if (rooted) return '/' + s
  return s === '' ? '.' : s
}

const LONG_NAME = 64

/** Tracks cleaned names and reports repeats. */
export class SeenPaths {
  readonly #seen = new Set<string>()
  /** False when the cleaned name was seen before. */
  add(name: Buffer): boolean {
    let key = cleanPath(name.toString('latin1'))
    // Long names are kept as their sha256: a stream of deep paths (10k levels) would otherwise
    // make this set grow with the square of the depth.
    if (key.length > LONG_NAME)
      key = '\0' + createHash('sha256').update(key, 'latin1').digest('base64') // no tar name has a NUL
    if (this.#seen.has(key)) return false
    this.#seen.add(key)
    return true
  }
}
