/**
 * Every layer chain of the corpus (../shared/corpus/layers), applied in order to one plain
 * directory, gives the chain's expected tree: path, type, mode, owner, size, content, link
 * target, device numbers, hard-link groups, xattrs and times.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { createGunzip } from 'node:zlib'
import type { Readable } from 'node:stream'
import { apply } from './apply.js'
import { corpusDir, hasCorpus, scratch } from '../testing/corpus.js'
import { compareTrees, snapshot, type TreeEntry } from '../testing/tree.js'

export interface Chain {
  readonly chain: string
  readonly layers: readonly { readonly file: string }[]
  readonly expected: { readonly outcome: string; readonly tree?: TreeEntry[] }
  readonly unspecified_dir_mtime?: string[]
  readonly cross_checks?: Record<string, { result: string } | undefined>
}

export function chains(): Chain[] {
  const dir = join(corpusDir(), 'layers')
  return readdirSync(dir)
    .sort()
    .map((name) => JSON.parse(readFileSync(join(dir, name, 'expected.json'), 'utf8')) as Chain)
}

export function layerStream(file: string): Readable {
  const s = createReadStream(join(corpusDir(), file))
  return file.endsWith('.gz') ? s.pipe(createGunzip()) : s
}

const isRoot = process.getuid?.() === 0

test(
  'corpus layer chains applied to one directory give the expected trees',
  { skip: !hasCorpus() && 'no corpus' },
  async (t) => {
    for (const chain of chains()) {
      await t.test(
        chain.chain,
        { skip: !isRoot && 'needs root (owners, devices, trusted xattrs)' },
        async () => {
          const { dir, remove } = await scratch('layerstore-chain-')
          try {
            for (const layer of chain.layers) await apply(layerStream(layer.file), dir)
            assert.equal(chain.expected.outcome, 'ok')
            const diffs = compareTrees(chain.expected.tree!, snapshot(dir), {
              unspecifiedMtime: chain.unspecified_dir_mtime ?? [],
            })
            assert.deepEqual(diffs, [])
          } finally {
            await remove()
          }
        },
      )
    }
  },
)
