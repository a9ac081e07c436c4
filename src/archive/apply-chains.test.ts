/**
 * Every layer chain of the corpus (../shared/corpus/layers), applied in order to one plain
 * directory, gives the chain's expected tree: path, type, mode, owner, size, content, link
 * target, device numbers, hard-link groups, xattrs and times.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { apply } from './apply.js'
import { hasCorpus, scratch } from '../testing/corpus.js'
import { chains, layerStream } from '../testing/chains.js'
import { compareTrees, snapshot } from '../testing/tree.js'

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
