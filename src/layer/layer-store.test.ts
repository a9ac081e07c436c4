/**
 * Docker's layer store tests (SPEC.md §7.1 to §7.4: layer_test.go, layer_unix_test.go,
 * mount_test.go, empty_test.go), with the same assertions, on every driver (overlay2 where the
 * kernel mounts overlayfs here).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { LayerStore } from './layer-store.js'
import type { Layer, LayerMetadata } from './types.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { scratch } from '../testing/corpus.js'
import { EMPTY_TAR_DIFF_ID, type ChainId } from '../digest/digest.js'
import { LayerDb } from '../metadata/layer-db.js'
import { driversUnderTest } from '../testing/drivers.js'

type Init = (root: string) => void

/** newTestFile: writes a file, creating parents 0755. */
function file(name: string, content: string, mode = 0o644): Init {
  return (root) => {
    const p = join(root, name)
    mkdirSync(dirname(p), { recursive: true, mode: 0o755 })
    writeFileSync(p, content)
    chmodSync(p, mode)
  }
}

/** tarFromFiles: a tar of the files (as Docker's archive.Tar of a temp dir would hold them). */
async function tarOf(entries: [string, string, number][]): Promise<Buffer> {
  const list: TarWriteEntry[] = entries.map(([name, content, mode]) => ({
    header: { name: name.replace(/^\//, ''), mode, mtime: 1_600_000_000 },
    body: Buffer.from(content),
  }))
  const chunks: Uint8Array[] = []
  for await (const c of writeTar(list)) chunks.push(c)
  return Buffer.concat(chunks)
}

function source(data: Buffer): AsyncIterable<Uint8Array> {
  return (async function* () {
    yield data
  })()
}

/** createLayer: RW layer on parent, init run in its mount, its diff registered, RW released. */
async function createLayer(
  store: LayerStore,
  parent: ChainId | undefined,
  init: Init,
): Promise<Layer> {
  const rw = await store.createRwLayer(randomBytes(8).toString('hex'), parent)
  const root = await rw.mount()
  init(root)
  const layer = await store.register(await rw.tarStream(), parent)
  await rw.unmount()
  await store.releaseRwLayer(rw)
  return layer
}

async function releaseAndCheckDeleted(
  store: LayerStore,
  layer: Layer,
  ...removed: Layer[]
): Promise<void> {
  const before = store.map().size
  const expected: LayerMetadata[] = removed.map((l) => ({
    chainId: l.chainId,
    diffId: l.diffId,
    size: l.size,
    diffSize: l.diffSize,
  }))
  const metadata = await store.release(layer)
  assert.deepEqual(metadata, expected)
  assert.equal(store.map().size, before - removed.length)
}

/** Where a layer's own files are: vfs's directory, overlay2's diff/. */
function layerDir(meta: Record<string, string>): string {
  const dir = meta['SourceDir'] ?? meta['UpperDir']
  assert.ok(dir !== undefined, 'the driver names the layer directory')
  return dir
}

function storeSuite(driver: string): void {
  async function withStore(fn: (store: LayerStore, root: string) => Promise<void>): Promise<void> {
    const { dir, remove } = await scratch('layerstore-store-')
    try {
      await fn(await LayerStore.open({ root: dir, driver }), dir)
    } finally {
      await remove()
    }
  }

  const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

  test('TestMountAndRegister', () =>
    withStore(async (store) => {
      const layer = await createLayer(store, undefined, file('testfile.txt', 'some test data'))
      const rw = await store.createRwLayer('new-test-mount', layer.chainId)
      const root = await rw.mount()
      assert.equal(readFileSync(join(root, 'testfile.txt'), 'utf8'), 'some test data')
      await rw.unmount()
      assert.deepEqual(await store.releaseRwLayer(rw), [])
    }))

  test('TestLayerRelease', () =>
    withStore(async (store) => {
      const l1 = await createLayer(store, undefined, file('layer1.txt', 'layer 1 file'))
      const l2 = await createLayer(store, l1.chainId, file('layer2.txt', 'layer 2 file'))
      assert.deepEqual(await store.release(l1), [])
      const l3a = await createLayer(store, l2.chainId, file('layer3.txt', 'layer 3a file'))
      const l3b = await createLayer(store, l2.chainId, file('layer3.txt', 'layer 3b file'))
      assert.deepEqual(await store.release(l2), [])
      assert.equal(store.map().size, 4)
      await releaseAndCheckDeleted(store, l3b, l3b)
      await releaseAndCheckDeleted(store, l3a, l3a, l2, l1)
    }))

  test('TestStoreRestore', () =>
    withStore(async (store, root) => {
      const l1 = await createLayer(store, undefined, file('layer1.txt', 'layer 1 file'))
      const l2 = await createLayer(store, l1.chainId, file('layer2.txt', 'layer 2 file'))
      await store.release(l1)
      const l3 = await createLayer(store, l2.chainId, file('layer3.txt', 'layer 3 file'))
      await store.release(l2)
      const m = await store.createRwLayer('some-mount_name', l3.chainId)
      const path = await m.mount()
      file('testfile.txt', 'nothing here')(path)
      await m.unmount()

      const store2 = await LayerStore.open({ root, driver })
      const l3b = await store2.get(l3.chainId)
      for (
        let a: typeof l3.parent = l3, b: typeof l3.parent = l3b;
        a || b;
        a = a?.parent, b = b?.parent
      ) {
        assert.deepEqual(
          [b?.chainId, b?.diffId, b?.size, b?.cacheId],
          [a?.chainId, a?.diffId, a?.size, a?.cacheId],
        )
      }
      await assert.rejects(store2.createRwLayer('some-mount_name', l3b.chainId), {
        code: 'MOUNT_NAME_CONFLICT',
      })
      const m2 = await store2.getRwLayer('some-mount_name')
      assert.equal(await m2.mount(), path)
      assert.equal(await m2.mount(), path)
      await m2.unmount()
      assert.equal(readFileSync(join(path, 'testfile.txt'), 'utf8'), 'nothing here')
      await m2.unmount()
      assert.deepEqual(await store2.releaseRwLayer(m2), [])
      assert.deepEqual(await store2.releaseRwLayer(m2), [])
      await releaseAndCheckDeleted(
        store2,
        l3b,
        l3b,
        l3b.parent as Layer,
        l3b.parent!.parent as Layer,
      )
    }))

  test('TestTarStreamStability', () =>
    withStore(async (store) => {
      const tar1 = await tarOf([
        ['/etc/hosts', 'mydomain 10.0.0.1', 0o644],
        ['/etc/profile', 'PATH=/usr/bin', 0o644],
      ])
      const tar2 = await tarOf([
        ['/etc/hosts', 'mydomain 10.0.0.2', 0o644],
        ['/etc/profile', 'PATH=/usr/bin', 0o664],
        ['/root/.bashrc', 'PATH=/usr/sbin:/usr/bin', 0o644],
      ])
      const l1 = await store.register(source(tar1))
      // Tamper: a file the tar does not have, straight into the layer's directory.
      const dir = layerDir(await l1.metadata())
      writeFileSync(join(dir, 'etc', 'shadow'), 'root:::::::')
      const l2 = await store.register(source(tar2), l1.chainId)
      await store.release(l1)
      assert.equal(l2.diffId, sha256(tar2))
      assert.deepEqual(await buffer(l2.tarStream()), tar2)
      const l1b = await store.get(l1.chainId)
      await store.release(l2)
      assert.equal(l1b.diffId, sha256(tar1))
      assert.deepEqual(await buffer(l1b.tarStream()), tar1) // the extra file does not leak in
      await store.release(l1b)
    }))

  test('TestRegisterExistingLayer', () =>
    withStore(async (store) => {
      const l1 = await createLayer(store, undefined, file('/etc/profile', '# Base configuration'))
      const tar1 = await tarOf([['/root/.bashrc', '# Root configuration', 0o644]])
      const [a, b] = await Promise.all([
        store.register(source(tar1), l1.chainId),
        store.register(source(tar1), l1.chainId),
      ])
      assert.notEqual(a, b)
      assert.equal(a.chainId, b.chainId)
      assert.equal(a.cacheId, b.cacheId) // one layer, two holds
      assert.equal(store.map().size, 2)
      assert.deepEqual(await store.release(a), [])
      assert.equal((await store.release(b)).length, 1)
    }))

  test('TestTarStreamVerification', () =>
    withStore(async (store, root) => {
      const tar1 = await tarOf([
        ['/foo', 'abc', 0o644],
        ['/bar', 'def', 0o644],
      ])
      const tar2 = await tarOf([
        ['/foo', 'abc', 0o644],
        ['/bar', 'def', 0o600],
      ])
      const l1 = await store.register(source(tar1))
      const l2 = await store.register(source(tar2))
      const db = await LayerDb.open(root, driver)
      copyFileSync(db.tarSplitPath(l1.chainId), db.tarSplitPath(l2.chainId))
      await assert.rejects(buffer(l2.tarStream()), { code: 'DIGEST_MISMATCH' })
    }))

  test('TestLayerSize', () =>
    withStore(async (store) => {
      const l1 = await createLayer(store, undefined, file('file1', 'Base contents'))
      assert.equal(await store.driver.diffSize(l1.cacheId, undefined), 13)
      assert.equal(l1.size, 13)
      const l2 = await createLayer(store, l1.chainId, file('file2', 'Added contents'))
      assert.equal(await store.driver.diffSize(l2.cacheId, l1.cacheId), 14)
      assert.equal(l2.size, 27)
    }))

  test('TestMountInit', () =>
    withStore(async (store) => {
      const base = await store.register(
        source(await tarOf([['testfile.txt', 'base data!', 0o644]])),
      )
      const rw = await store.createRwLayer('fun-mount', base.chainId, {
        initFunc: file('testfile.txt', 'init data!', 0o777),
      })
      const root = await rw.mount()
      assert.equal(readFileSync(join(root, 'testfile.txt'), 'utf8'), 'init data!')
      assert.equal(statSync(join(root, 'testfile.txt')).mode & 0o777, 0o777)
      await rw.unmount()
    }))

  test('TestMountSize', () =>
    withStore(async (store) => {
      const base = await store.register(source(await tarOf([['file1', 'Base contents', 0o644]])))
      const rw = await store.createRwLayer('mount-size', base.chainId, {
        initFunc: file('file-init', 'why am I excluded from the size ☹', 0o777),
      })
      const root = await rw.mount()
      file('file2', 'Mutable contents', 0o755)(root)
      assert.equal(await rw.size(), 16)
      await rw.unmount()
    }))

  test('TestMountChanges', () =>
    withStore(async (store) => {
      const base = await store.register(
        source(
          await tarOf([
            ['testfile1.txt', 'base data!', 0o644],
            ['testfile2.txt', 'base data!', 0o644],
            ['testfile3.txt', 'base data!', 0o644],
          ]),
        ),
      )
      const rw = await store.createRwLayer('mount-changes', base.chainId, {
        initFunc: file('testfile1.txt', 'init data!', 0o777),
      })
      const root = await rw.mount()
      chmodSync(join(root, 'testfile1.txt'), 0o755)
      writeFileSync(join(root, 'testfile1.txt'), 'mount data!')
      rmSync(join(root, 'testfile2.txt'))
      chmodSync(join(root, 'testfile3.txt'), 0o755)
      file('testfile4.txt', 'mount data!')(root)
      const changes = (await rw.changes()).map((c) => [c.path, c.kind])
      assert.deepEqual(changes, [
        ['/testfile1.txt', 'C'],
        ['/testfile2.txt', 'D'],
        ['/testfile3.txt', 'C'],
        ['/testfile4.txt', 'A'],
      ])
      await rw.unmount()
    }))

  test('TestMountApply', () =>
    withStore(async (store) => {
      const base = await store.register(
        source(await tarOf([['testfile.txt', 'base data!', 0o644]])),
      )
      const d = await store.register(source(await tarOf([['newfile.txt', 'new data!', 0o755]])))
      const rw = await store.createRwLayer('fun-mount', base.chainId)
      await rw.applyDiff(d.tarStream())
      const root = await rw.mount()
      assert.equal(readFileSync(join(root, 'newfile.txt'), 'utf8'), 'new data!')
      await rw.unmount()
    }))

  test('TestEmptyLayer', () =>
    withStore(async (store) => {
      const empty = await store.register(source(Buffer.alloc(1024)))
      assert.equal(empty.chainId, EMPTY_TAR_DIFF_ID)
      assert.equal(empty.diffId, EMPTY_TAR_DIFF_ID)
      assert.equal(empty.parent, undefined)
      assert.equal(empty.size, 0)
      assert.equal(empty.diffSize, 0)
      assert.equal(sha256(await buffer(empty.tarStream())), EMPTY_TAR_DIFF_ID)
    }))

  test('errors: unknown layers, double releases, depth', () =>
    withStore(async (store) => {
      const unknown = `sha256:${'0'.repeat(64)}` as ChainId
      await assert.rejects(store.get(unknown), { code: 'LAYER_DOES_NOT_EXIST' })
      await assert.rejects(store.register(source(Buffer.alloc(1024)), unknown), {
        code: 'LAYER_DOES_NOT_EXIST',
      })
      await assert.rejects(store.getRwLayer('nope'), { code: 'MOUNT_DOES_NOT_EXIST' })
      const l = await store.register(source(await tarOf([['a', 'a', 0o644]])))
      const again = await store.get(l.chainId)
      await store.release(again)
      await assert.rejects(store.release(again), { code: 'LAYER_NOT_RETAINED' })
      assert.equal((await store.release(l)).length, 1)
      assert.deepEqual(await store.release(l), []) // the layer is gone: Docker returns nothing
    }))

  test('a damaged layer is quarantined and reported; registering it again repairs it and its child', () =>
    withStore(async (store, root) => {
      const tar1 = await tarOf([['a', 'a', 0o644]])
      const tar2 = await tarOf([['b', 'b', 0o644]])
      const l1 = await store.register(source(tar1))
      const l2 = await store.register(source(tar2), l1.chainId)
      const db = await LayerDb.open(root, driver)
      writeFileSync(join(db.layerPath(l1.chainId), 'diff'), 'garbage')
      const warnings: string[] = []
      const reopened = await LayerStore.open({
        root,
        driver,
        onWarning: (code) => warnings.push(code),
      })
      assert.deepEqual(warnings.sort(), ['LAYER_PARENT_MISSING', 'LAYER_QUARANTINED'])
      assert.equal(reopened.map().size, 0)
      // Docker fails every re-registration here (a stale directory blocks the commit).
      const again = await reopened.register(source(tar1))
      assert.equal(again.chainId, l1.chainId)
      const fresh = await LayerStore.open({ root, driver })
      assert.deepEqual([...fresh.map().keys()].sort(), [l1.chainId, l2.chainId].sort())
      const child = await fresh.get(l2.chainId)
      assert.deepEqual(await buffer(child.tarStream()), tar2)
    }))

  test('a parent loop on disk is reported, not followed forever', () =>
    withStore(async (store, root) => {
      const l1 = await store.register(source(await tarOf([['a', 'a', 0o644]])))
      const l2 = await store.register(source(await tarOf([['b', 'b', 0o644]])), l1.chainId)
      const db = await LayerDb.open(root, driver)
      writeFileSync(join(db.layerPath(l1.chainId), 'parent'), l2.chainId) // l1 -> l2 -> l1
      const warnings: string[] = []
      const reopened = await LayerStore.open({
        root,
        driver,
        onWarning: (c) => warnings.push(c),
      })
      assert.equal(reopened.map().size, 0)
      assert.ok(warnings.includes('LAYER_PARENT_MISSING'), warnings.join())
    }))

  test('a failed registration leaves the store as it was', () =>
    withStore(async (store, root) => {
      const base = await store.register(source(await tarOf([['a', 'a', 0o644]])))
      const before = snapshotDirs(root)
      const hostile = Buffer.concat([
        await tarOf([['ok', 'fine', 0o644]]).then((b) => b.subarray(0, 1024)), // one entry, no end
        await tarOf([['../escape', 'x', 0o644]]),
      ])
      await assert.rejects(store.register(source(hostile), base.chainId), {
        code: 'ARCHIVE_BREAKOUT',
      })
      // overlay2 marks a layer that was given a child `committed` (mounted read-only from
      // then on, as an image layer always may be), and the mark stays, as in Docker.
      const marks = (p: string): boolean => !p.endsWith('/committed')
      assert.deepEqual(snapshotDirs(root).filter(marks), before.filter(marks))
      assert.equal(store.map().size, 1)
    }))

  /** Every directory and file name under the store's layer and driver directories. */
  function snapshotDirs(root: string): string[] {
    const out: string[] = []
    const walk = (d: string, rel: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (rel === '' && e.name === 'layerstore') continue // the lock file
        out.push(`${rel}/${e.name}`)
        if (e.isDirectory()) walk(join(d, e.name), `${rel}/${e.name}`)
      }
    }
    walk(root, '')
    return out.sort()
  }

  test('TestLayerMigrationNoTarsplit', () =>
    withStore(async (store, root) => {
      // Graph layers made straight on the driver, as a pre-layerdb graph had them.
      const driver = store.driver
      await driver.create('g1', undefined)
      await driver.applyDiff(
        'g1',
        undefined,
        source(
          await tarOf([
            ['/root/.bashrc', '# Boring configuration', 0o644],
            ['/etc/profile', '# Base configuration', 0o644],
          ]),
        ),
      )
      const tar1 = await buffer(await driver.diff('g1', undefined))
      await driver.create('g2', 'g1')
      await driver.applyDiff(
        'g2',
        'g1',
        source(await tarOf([['/root/.bashrc', '# Updated configuration', 0o644]])),
      )
      const tar2 = await buffer(await driver.diff('g2', 'g1'))

      const c1 = await store.checksumForGraphId('g1', undefined, join(root, 'g1.json.gz'))
      assert.equal(c1.diffId, sha256(tar1))
      const l1a = await store.registerByGraphId(
        'g1',
        undefined,
        c1.diffId,
        join(root, 'g1.json.gz'),
        c1.size,
      )
      const l1b = await store.register(source(tar1))
      assert.notEqual(l1a, l1b) // assertReferences: one layer, two handles
      assert.deepEqual([l1b.chainId, l1b.cacheId], [l1a.chainId, 'g1'])
      assert.deepEqual(await buffer(l1a.tarStream()), tar1)

      const l2a = await store.register(source(tar2), l1a.chainId)
      const c2 = await store.checksumForGraphId('g2', 'g1', join(root, 'g2.json.gz'))
      assert.equal(c2.diffId, l2a.diffId)
      const l2b = await store.registerByGraphId(
        'g2',
        l1a.chainId,
        c2.diffId,
        join(root, 'g2.json.gz'),
        c2.size,
      )
      assert.notEqual(l2a, l2b)
      assert.equal(l2b.chainId, l2a.chainId)
      assert.equal(l2b.cacheId, l2a.cacheId)
      assert.deepEqual(await store.release(l2a), [])
      await releaseAndCheckDeleted(store, l2b, l2a)
    }))
}

for (const { name, skip } of driversUnderTest())
  describe(name, { skip: skip ?? false }, () => storeSuite(name))
