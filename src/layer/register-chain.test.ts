/**
 * LayerStore.registerChain, which seals each layer while the next one is filled: the same
 * layers as register() one by one, on every driver, also for every corpus chain (hard links
 * to a lower layer's file, a symlinked parent in a lower layer...); a layer below that was
 * recorded before ours (the next one is made again on it); a failure in the middle; the
 * depth cap.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { LayerStore, MAX_LAYER_DEPTH } from './layer-store.js'
import type { ChainLayer, Layer } from './types.js'
import type { DiffId } from '../digest/digest.js'
import { chains, layerStream } from '../testing/chains.js'
import { hasCorpus } from '../testing/corpus.js'
import { driversUnderTest } from '../testing/drivers.js'
import { makeLayerTar } from '../testing/image-archive.js'
import { listing, sha, tempDir } from '../testing/image-test-kit.js'
import { compareTrees, snapshot } from '../testing/tree.js'

async function* once(data: Buffer): AsyncGenerator<Uint8Array> {
  yield data
}

/** A chain layer over `tar`, counting how often its tar is asked for. */
function chainLayer(tar: Buffer, expectDiffId?: string): ChainLayer & { asked: number } {
  const layer = {
    asked: 0,
    tar: () => {
      layer.asked++
      return once(tar)
    },
    ...(expectDiffId !== undefined ? { options: { expectDiffId: expectDiffId as DiffId } } : {}),
  }
  return layer
}

/** The driver layers on disk (vfs keeps them in `dir/`). */
function driverLayers(store: LayerStore): string[] {
  const home = store.driver.home
  return readdirSync(store.driver.name === 'vfs' ? join(home, 'dir') : home)
    .filter((n) => /^[0-9a-f]{64}$/.test(n))
    .sort()
}

/** Four layers: files, a replaced file, a whiteout, a new directory. */
async function fourTars(): Promise<Buffer[]> {
  return [
    await makeLayerTar({ 'etc/hostname': 'one\n', 'etc/passwd': 'root:x:0:0\n', 'bin/sh': 'sh' }),
    await makeLayerTar({ 'etc/hostname': 'two\n', 'usr/lib/a': Buffer.alloc(300_000, 7) }),
    await makeLayerTar({ 'etc/.wh.passwd': '', 'usr/lib/b': 'b' }),
    await makeLayerTar({ 'srv/data/x': 'x', 'usr/lib/a': 'small now' }),
  ]
}

for (const d of driversUnderTest()) {
  describe(`LayerStore.registerChain on ${d.name}`, { skip: d.skip ?? false }, () => {
    test('gives the layers register() gives one by one, reports each in order, exports exact tars', async (t) => {
      const dir = await tempDir(t, 'chain')
      const tars = await fourTars()
      const one = await LayerStore.open({ root: join(dir, 'one'), driver: d.name })
      let below: Layer | undefined
      const expected: Layer[] = []
      for (const tar of tars) {
        below = await one.register(once(tar), below?.chainId)
        expected.push(below)
      }

      const store = await LayerStore.open({ root: join(dir, 'chain'), driver: d.name })
      const seen: [number, string][] = []
      const top = await store.registerChain(
        tars.map((tar) => chainLayer(tar)),
        undefined,
        (i, layer) => seen.push([i, layer.chainId]),
      )
      assert.deepEqual(
        seen,
        expected.map((l, i) => [i, l.chainId]),
      )
      assert.equal(top.chainId, expected.at(-1)!.chainId)
      let layer: Layer['parent'] = top
      for (const want of [...expected].reverse()) {
        assert.ok(layer !== undefined)
        assert.deepEqual(
          [layer.chainId, layer.diffId, layer.diffSize, layer.size],
          [want.chainId, want.diffId, want.diffSize, want.size],
        )
        layer = layer.parent
      }
      assert.equal(layer, undefined)
      for (const [i, want] of expected.entries()) {
        const held = await store.get(want.chainId)
        assert.equal(sha(await buffer(held.tarStream())), sha(tars[i]!), `layer ${i}'s tar`)
        await store.release(held)
      }
      assert.equal(driverLayers(store).length, 4)
      await store.release(top) // the chain holds nothing else: every layer goes
      assert.equal(store.map().size, 0)
      assert.deepEqual(driverLayers(store), [])
    })

    test(
      'every corpus chain as one chain: the ChainID of one by one, the expected tree',
      { skip: hasCorpus() ? false : 'no corpus' },
      async (t) => {
        const dir = await tempDir(t, 'chain-corpus')
        for (const [n, c] of chains().entries()) {
          const one = await LayerStore.open({ root: join(dir, `one-${n}`), driver: d.name })
          let below: Layer | undefined
          for (const l of c.layers) below = await one.register(layerStream(l.file), below?.chainId)
          const store = await LayerStore.open({ root: join(dir, `chain-${n}`), driver: d.name })
          const top = await store.registerChain(
            c.layers.map((l) => ({ tar: () => layerStream(l.file) })),
          )
          assert.equal(top.chainId, below!.chainId, c.chain)
          const rw = await store.createRwLayer('c', top.chainId)
          try {
            const tree = snapshot(await rw.mount())
            const options = { unspecifiedMtime: c.unspecified_dir_mtime ?? [], ignoreNlink: true }
            assert.deepEqual(compareTrees(c.expected.tree!, tree, options), [], c.chain)
            await rw.unmount()
          } finally {
            await store.releaseRwLayer(rw)
          }
        }
      },
    )

    test('a layer below that is recorded before ours: ours goes, the next is made again on it', async (t) => {
      const dir = await tempDir(t, 'chain-dup')
      const [a, b] = await fourTars()
      const store = await LayerStore.open({ root: join(dir, 'root'), driver: d.name })
      // Recorded first, as another registration racing with the chain's would be: the chain
      // fills its own copy of `a` and `b` on it before it finds `a` recorded.
      const first = await store.register(once(a!))
      const layerB = chainLayer(b!)
      const top = await store.registerChain([chainLayer(a!), layerB])
      assert.equal(layerB.asked, 2, "b's tar is read again")
      const parent = top.parent
      assert.ok(parent !== undefined)
      assert.deepEqual([parent.chainId, parent.cacheId], [first.chainId, first.cacheId])
      assert.deepEqual(driverLayers(store), [first.cacheId, top.cacheId].sort())
      assert.equal(sha(await buffer(top.tarStream())), sha(b!))
      await store.release(top)
      await store.release(first)
      assert.deepEqual(driverLayers(store), [])
    })

    test('a layer that fails in the middle leaves the store exactly as before', async (t) => {
      const dir = await tempDir(t, 'chain-fail')
      const [base, a, b, c] = await fourTars()
      const root = join(dir, 'root')
      const store = await LayerStore.open({ root, driver: d.name })
      const held = await store.register(once(base!))
      const before = listing(root)
      const last = chainLayer(c!)
      const wrong = sha(Buffer.from('not this layer'))
      await assert.rejects(
        store.registerChain([chainLayer(a!), chainLayer(b!, wrong), last], held.chainId),
        (err: Error & { code?: string }) => err.code === 'DIGEST_MISMATCH',
      )
      assert.equal(last.asked, 0, 'nothing is read after the failed layer')
      assert.deepEqual(listing(root), before)
      assert.deepEqual([...store.map().keys()], [held.chainId])
    })
  })
}

test('a chain that would pass the depth cap registers nothing', async (t) => {
  const dir = await tempDir(t, 'chain-depth')
  const root = join(dir, 'root')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const base = await store.register(once(await makeLayerTar({ f: 'base' })))
  const before = listing(root)
  const layers = Array.from({ length: MAX_LAYER_DEPTH }, (_, i) => i).map(async (i) =>
    chainLayer(await makeLayerTar({ [`f${i}`]: String(i) })),
  )
  const chain = await Promise.all(layers) // with base: one more than the cap
  await assert.rejects(
    store.registerChain(chain, base.chainId),
    (err: Error & { code?: string }) => err.code === 'MAX_DEPTH_EXCEEDED',
  )
  assert.ok(chain.every((l) => l.asked === 0))
  assert.deepEqual(listing(root), before)
  const fits = await store.registerChain(chain.slice(1), base.chainId)
  let depth = 0
  for (let l: Layer['parent'] = fits; l !== undefined; l = l.parent) depth++
  assert.equal(depth, MAX_LAYER_DEPTH)
})
