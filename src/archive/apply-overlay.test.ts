/**
 * The corpus chains applied in overlay form, one directory per layer as overlay2 keeps them
 * (whiteouts as 0/0 character devices, opaque directories by xattr), then mounted with the
 * kernel's overlayfs: the merged tree equals the tree of the plain apply (nlink aside,
 * overlayfs reports the lower inode's count). This includes the chains where Docker's own
 * overlay2 fails or diverges: layers are resolved in the merged view, so the driver does not
 * change what an image means.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { apply } from './apply.js'
import { chains, layerStream } from '../testing/chains.js'
import { hasCorpus, scratch } from '../testing/corpus.js'
import { compareTrees, snapshot, type TreeEntry } from '../testing/tree.js'
import { mountLayers, overlayUnsupported } from '../testing/overlay-mount.js'

function withoutWhiteoutTimes(tree: readonly TreeEntry[]): TreeEntry[] {
  return tree.map((e) => {
    if (e.type !== 'char' || e.rdev?.[0] !== 0 || e.rdev[1] !== 0) return e
    const { mtime: _m, mtime_nsec: _n, ...rest } = e
    return rest
  })
}

const unsupported = hasCorpus() ? overlayUnsupported() : 'no corpus'

test(
  'corpus chains in overlay form, mounted, give the expected trees',
  { skip: unsupported ?? false },
  async (t) => {
    for (const chain of chains()) {
      await t.test(chain.chain, async () => {
        const { dir, remove } = await scratch('layerstore-ovl-chain-')
        try {
          const layers: string[] = [] // top first
          for (const [i, layer] of chain.layers.entries()) {
            const d = join(dir, `layer${i + 1}`)
            mkdirSync(d)
            await apply(layerStream(layer.file), d, { whiteoutFormat: 'overlay', lowers: layers })
            layers.unshift(d)
            // Where Docker's overlay2 gets the chain right, each layer directory holds exactly
            // what Docker's holds (a whiteout device's time is its creation time in both).
            const docker = chain.overlay_diffs?.[i]
            if (chain.cross_checks?.['overlay2']?.result === 'match' && docker !== undefined) {
              const mine = withoutWhiteoutTimes(snapshot(d))
              const diffs = compareTrees(withoutWhiteoutTimes(docker), mine, { ignoreNlink: true })
              assert.deepEqual(diffs, [], `layer ${i + 1} differs from Docker's overlay2 layer`)
            }
          }
          const mount = mountLayers(layers, dir)
          try {
            const diffs = compareTrees(chain.expected.tree!, snapshot(mount.dir), {
              unspecifiedMtime: chain.unspecified_dir_mtime ?? [],
              ignoreNlink: true,
            })
            assert.deepEqual(diffs, [])
          } finally {
            mount.unmount()
          }
        } finally {
          await remove()
        }
      })
    }
  },
)
