/** A layer's tar size: recorded at register, computed from tar-split when the entry is gone or unreadable. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { scratch } from '../testing/corpus.js'
import { makeLayerTar } from '../testing/image-archive.js'
import { LayerStore } from './layer-store.js'

test('tarSize: from the cache, and computed again without it', async (t) => {
  const { dir, remove } = await scratch('layerstore-tar-size-')
  t.after(remove)
  const tar = Buffer.concat([
    await makeLayerTar({ 'a/b.txt': 'hello\n', 'c.bin': Buffer.alloc(70000, 7) }),
    Buffer.from('trailing bytes are part of the DiffID'),
  ])
  const store = await LayerStore.open({ root: join(dir, 'root'), driver: 'vfs' })
  const layer = await store.register(Readable.from([tar]))
  const cacheDir = join(dir, 'root', 'layerstore', 'tar-size')
  assert.deepEqual(readdirSync(cacheDir), [layer.diffId.slice(7)])
  assert.equal(await layer.tarSize(), tar.length)
  writeFileSync(join(cacheDir, layer.diffId.slice(7)), 'not a number')
  assert.equal(await layer.tarSize(), tar.length)
  rmSync(cacheDir, { recursive: true })
  assert.equal(await layer.tarSize(), tar.length)
  assert.deepEqual(readdirSync(cacheDir), [layer.diffId.slice(7)], 'written again')
})

test('tarSize entries go with the last layer that has their DiffID; open prunes what a crash left', async (t) => {
  const { dir, remove } = await scratch('layerstore-tar-size-')
  t.after(remove)
  const root = join(dir, 'root')
  const cacheDir = join(root, 'layerstore', 'tar-size')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const base = await store.register(Readable.from([await makeLayerTar({ base: 'b\n' })]))
  const topTar = await makeLayerTar({ top: 't\n' })
  // The same tar on two parents: two layers, one DiffID.
  const onBase = await store.register(Readable.from([topTar]), base.chainId)
  const alone = await store.register(Readable.from([topTar]))
  const hex = (l: { diffId: string }): string => l.diffId.slice(7)
  assert.deepEqual(readdirSync(cacheDir).sort(), [hex(base), hex(alone)].sort())
  await store.release(alone)
  assert.deepEqual(readdirSync(cacheDir).sort(), [hex(base), hex(onBase)].sort(), 'held by onBase')
  await store.release(onBase)
  assert.deepEqual(readdirSync(cacheDir), [hex(base)], 'gone with the last layer that had it')
  writeFileSync(join(cacheDir, 'f'.repeat(64)), '12') // left by a crash, say
  await LayerStore.open({ root, driver: 'vfs' })
  assert.deepEqual(readdirSync(cacheDir), [hex(base)])
})
