/** The corpus's layer chains (../shared/corpus/layers/<chain>/expected.json). */
import { createReadStream, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createGunzip } from 'node:zlib'
import type { Readable } from 'node:stream'
import { corpusDir } from './corpus.js'
import type { TreeEntry } from './tree.js'

export interface Chain {
  readonly chain: string
  readonly layers: readonly { readonly file: string }[]
  readonly expected: { readonly outcome: string; readonly tree?: TreeEntry[] }
  readonly unspecified_dir_mtime?: string[]
  /** Each layer extracted the way Docker's overlay2 does it (one tree per layer). */
  readonly overlay_diffs?: TreeEntry[][]
  readonly cross_checks?: Record<string, { result: string } | undefined>
}

export function chains(): Chain[] {
  const dir = join(corpusDir(), 'layers')
  return readdirSync(dir)
    .sort()
    .map((name) => JSON.parse(readFileSync(join(dir, name, 'expected.json'), 'utf8')) as Chain)
}

/** A layer's uncompressed stream. */
export function layerStream(file: string): Readable {
  const s = createReadStream(join(corpusDir(), file))
  return file.endsWith('.gz') ? s.pipe(createGunzip()) : s
}
