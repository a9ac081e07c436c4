/**
 * The driver conformance suite: what every Driver must do, whatever keeps its files (Docker's
 * graphtest, SPEC.md §7.7, plus the cases the layer store relies on). A driver's test file
 * runs it with a factory:
 *
 * ```ts
 * runDriverConformance('vfs', (root) => createVfsDriver(root))
 * ```
 *
 * Each test gets a fresh store root (a temporary directory) and driver, removed afterwards.
 * Tests see layers only through get(): they write into a layer before any child is created
 * on it (overlay2 mounts a layer with children read-only), and compare trees node by node.
 * What legitimately differs between drivers is an option, never a driver name.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { END_OF_ARCHIVE_SIZE } from '../tar/index.js'
import {
  IS_ROOT,
  chunksOf,
  inLayer,
  type DriverFactory,
  makeDir,
  readAll,
  rejectsWith,
  setup,
  snapshot,
  treeDiff,
  writeFile,
} from './conformance-helpers.js'
import { baseLayer, editChild } from './conformance-fixture.js'
import { diffTests } from './conformance-diff.js'
import { isDiffGetterDriver } from './types.js'

export type { DriverFactory }

export interface ConformanceOptions {
  /**
   * What applyDiff returns (SPEC.md §6.9): `headers`, the sum of the tar's header sizes (vfs
   * and every naive diff, the default); `directory`, the sizes of the non-directory inodes
   * the diff makes (overlay2's native diff).
   */
  readonly applySize?: 'headers' | 'directory'
  /**
   * Whether a file's link count drops when a layer deletes another name of its inode (default
   * true). Not on overlayfs: a lower file keeps the links its own layer gave it.
   */
  readonly layerNlink?: boolean
  /** Layers of the deep-chain test (default 20). */
  readonly depth?: number
  /** Files of the many-files test (default 2000). */
  readonly manyFiles?: number
  /** Skip the whole suite, with this reason (a kernel without overlayfs...). */
  readonly skip?: string
}

const emptyTar = (): AsyncIterable<Uint8Array> => chunksOf(Buffer.alloc(END_OF_ARCHIVE_SIZE))

function lifecycleTests(make: DriverFactory): void {
  void test('create() makes an empty layer: it exists, get() gives an empty 0755 root', async (t) => {
    const d = await setup(t, make)
    await d.create('empty', undefined)
    assert.equal(await d.exists('empty'), true)
    await inLayer(d, 'empty', (root) => {
      const st = lstatSync(root)
      assert.ok(st.isDirectory())
      assert.equal(st.mode & 0o7777, 0o755)
      if (IS_ROOT) assert.deepEqual([st.uid, st.gid], [0, 0])
      assert.deepEqual(readdirSync(root), [])
    })
    const meta = await d.getMetadata('empty')
    assert.ok(Object.keys(meta).length > 0)
    for (const v of Object.values(meta)) assert.equal(typeof v, 'string')
    for (const pair of d.status()) assert.deepEqual(typeof pair[0] + typeof pair[1], 'stringstring')
  })

  void test('createReadWrite() keeps modes, owners, setuid and sticky bits (graphtest CreateBase)', async (t) => {
    const d = await setup(t, make)
    await d.createReadWrite('Base', undefined)
    await inLayer(d, 'Base', (root) => {
      makeDir(root, 'a subdir', { mode: 0o1705, uid: 1, gid: 2 })
      writeFile(root, 'a file', 'Some data', { mode: 0o4222, uid: 0, gid: 0 })
    })
    await inLayer(d, 'Base', (root) => {
      assert.deepEqual(readdirSync(root).sort(), ['a file', 'a subdir'])
      const dir = lstatSync(join(root, 'a subdir'))
      const file = lstatSync(join(root, 'a file'))
      assert.ok(dir.isDirectory() && file.isFile())
      assert.equal(dir.mode & 0o7777, 0o1705)
      assert.equal(file.mode & 0o7777, 0o4222)
      if (IS_ROOT) {
        assert.deepEqual([dir.uid, dir.gid, file.uid, file.gid], [1, 2, 0, 0])
        assert.equal(readFileSync(join(root, 'a file'), 'utf8'), 'Some data')
      }
    })
  })

  void test("a child sees its parent's tree, node for node (graphtest CreateSnap)", async (t) => {
    const d = await setup(t, make)
    const base = await baseLayer(d)
    await d.create('snap', 'base')
    await d.createReadWrite('rw', 'base')
    for (const id of ['snap', 'rw']) {
      const tree = await inLayer(d, id, snapshot)
      assert.deepEqual(treeDiff(base, tree, { dirMtime: true }), [], id)
    }
    assert.deepEqual(treeDiff(base, await inLayer(d, 'base', snapshot), { dirMtime: true }), [])
  })

  void test('what a child writes, changes or deletes stays out of its parent', async (t) => {
    const d = await setup(t, make)
    const base = await baseLayer(d)
    await d.createReadWrite('child', 'base')
    await inLayer(d, 'child', editChild)
    const after = await inLayer(d, 'base', snapshot)
    assert.deepEqual(treeDiff(base, after, { dirMtime: true }), [])
    const child = await inLayer(d, 'child', snapshot)
    assert.ok(child.has('newdir/a') && !child.has('var/lib'))
  })

  void test('remove() deletes image and read-write layers; a missing id is no error', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    await d.createReadWrite('rw', 'base')
    await inLayer(d, 'rw', editChild)
    await d.remove('rw')
    assert.equal(await d.exists('rw'), false)
    await rejectsWith(d.get('rw'), 'DRIVER_LAYER_NOT_FOUND', 'get() of a removed layer')
    await d.remove('base')
    assert.equal(await d.exists('base'), false)
    await d.remove('base')
    await d.remove('never-created')
  })

  void test('ids that are not one path component are refused with DRIVER_INVALID_ID', async (t) => {
    const d = await setup(t, make)
    await d.create('ok', undefined)
    const home = readdirSync(join(d.home, '..')).sort()
    for (const bad of ['', '.', '..', 'a/b', '../x', '/abs', 'x\0y', 'x'.repeat(256)]) {
      const what = JSON.stringify(bad)
      const calls: [string, () => Promise<unknown>][] = [
        ['create', () => d.create(bad, undefined)],
        ['create (parent)', () => d.create('child', bad)],
        ['createReadWrite', () => d.createReadWrite(bad, undefined)],
        ['createReadWrite (parent)', () => d.createReadWrite('child', bad)],
        ['remove', () => d.remove(bad)],
        ['get', () => d.get(bad)],
        ['put', () => d.put(bad)],
        ['exists', () => d.exists(bad)],
        ['getMetadata', () => d.getMetadata(bad)],
        ['changes', () => d.changes(bad, undefined)],
        ['changes (parent)', () => d.changes('ok', bad)],
        ['diffSize', () => d.diffSize(bad, undefined)],
        ['diff', () => d.diff(bad, undefined)],
        ['applyDiff', () => d.applyDiff(bad, undefined, emptyTar())],
      ]
      for (const [name, call] of calls)
        await rejectsWith(call(), 'DRIVER_INVALID_ID', `${name}(${what})`)
    }
    assert.equal(await d.exists('child'), false)
    assert.deepEqual(readdirSync(join(d.home, '..')).sort(), home)
  })

  void test('create() refuses an existing id, a missing parent and storage options', async (t) => {
    const d = await setup(t, make)
    await d.create('a', undefined)
    await rejectsWith(d.create('a', undefined), 'DRIVER_LAYER_EXISTS', 'create() again')
    await rejectsWith(d.createReadWrite('a', undefined), 'DRIVER_LAYER_EXISTS', 'createReadWrite()')
    await rejectsWith(d.create('b', 'missing'), 'DRIVER_LAYER_NOT_FOUND', 'missing parent')
    assert.equal(await d.exists('b'), false)
    const storageOpt = { size: '10G' }
    await rejectsWith(d.create('c', undefined, { storageOpt }), 'DRIVER_INVALID_OPTION', 'size')
    assert.equal(await d.exists('c'), false)
    await rejectsWith(d.get('missing'), 'DRIVER_LAYER_NOT_FOUND', 'get()')
    await rejectsWith(d.getMetadata('missing'), 'DRIVER_LAYER_NOT_FOUND', 'getMetadata()')
    assert.equal(await d.exists('missing'), false)
  })

  void test('ids(), where the driver has it, lists exactly the layers it holds', async (t) => {
    const d = await setup(t, make)
    if (d.ids === undefined) {
      t.skip('the driver has no ids()')
      return
    }
    assert.deepEqual(await d.ids(), [])
    await d.create('a', undefined)
    await d.create('b', 'a')
    await d.createReadWrite('c', 'b')
    assert.deepEqual((await d.ids()).sort(), ['a', 'b', 'c'])
    await d.remove('b')
    assert.deepEqual((await d.ids()).sort(), ['a', 'c'])
  })

  void test('children created at once on one parent are independent', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    const ids = ['c0', 'c1', 'c2', 'c3']
    await Promise.all(ids.map((id) => d.createReadWrite(id, 'base')))
    for (const id of ids) await inLayer(d, id, (root) => writeFile(root, `own-${id}`, id))
    for (const id of ids) {
      const names = await inLayer(d, id, (root) =>
        readdirSync(root).filter((n) => n.startsWith('own-')),
      )
      assert.deepEqual(names, [`own-${id}`])
    }
  })

  void test('get() is counted: the root stays usable until the last put()', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    await d.createReadWrite('rw', 'base')
    const r1 = await d.get('rw')
    const r2 = await d.get('rw')
    assert.equal(r1, r2)
    writeFileSync(join(r1, 'written'), 'still here')
    await d.put('rw')
    assert.equal(readFileSync(join(r2, 'written'), 'utf8'), 'still here')
    assert.equal(readFileSync(join(r2, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n')
    await d.put('rw')
    await inLayer(d, 'rw', (root) =>
      assert.equal(readFileSync(join(root, 'written'), 'utf8'), 'still here'),
    )
  })

  void test("diffGetter(), where the driver has it, reads a layer's files by tar name", async (t) => {
    const d = await setup(t, make)
    if (!isDiffGetterDriver(d)) {
      t.skip('the driver has no diffGetter')
      return
    }
    await baseLayer(d)
    const getter = await d.diffGetter('base')
    try {
      const hosts = await readAll(getter.get(Buffer.from('etc/hosts'), 20))
      assert.equal(hosts.toString(), '127.0.0.1 localhost\n')
      const big = await readAll(getter.get(Buffer.from('./big'), 3 << 20))
      assert.equal(big.length, 3 << 20)
    } finally {
      await getter.close()
    }
    await rejectsWith(d.diffGetter('missing'), 'DRIVER_LAYER_NOT_FOUND', 'diffGetter()')
  })

  void test('a diff stream destroyed early releases the layers', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    await d.createReadWrite('child', 'base')
    await inLayer(d, 'child', editChild)
    const stream = await d.diff('child', 'base')
    for await (const _ of stream) break // destroys it
    assert.ok(stream.destroyed)
    assert.equal((await d.changes('child', 'base')).length > 0, true)
    await d.remove('child')
    await d.remove('base')
    assert.equal(await d.exists('base'), false)
  })
}

/** Registers the suite under `describe('<name> driver conformance')`. */
export function runDriverConformance(
  name: string,
  makeDriver: DriverFactory,
  options: ConformanceOptions = {},
): void {
  void describe(`${name} driver conformance`, { skip: options.skip ?? false }, () => {
    lifecycleTests(makeDriver)
    diffTests(makeDriver, options)
  })
}
