import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, mkdirSync, readdirSync, writeFileSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import { runDriverConformance } from './conformance.js'
import {
  IS_ROOT,
  at,
  inLayer,
  makeDir,
  rejectsWith,
  setMeta,
  setup,
  snapshot,
  treeDiff,
  userXattrs,
  writeFile,
} from './conformance-helpers.js'
import { CAP_NET_RAW, baseLayer } from './conformance-fixture.js'
import { createVfsDriver } from './vfs.js'

runDriverConformance('vfs', (root) => createVfsDriver(root))

const vfs = (root: string) => createVfsDriver(root)

test("vfs keeps Docker's layout: <root>/vfs (0710), dir/ (0710), dir/<id> (0755)", async (t) => {
  const d = await setup(t, vfs)
  await d.create('layer', undefined)
  assert.equal(lstatSync(d.home).mode & 0o7777, 0o710)
  assert.equal(lstatSync(join(d.home, 'dir')).mode & 0o7777, 0o710)
  const dir = join(d.home, 'dir', 'layer')
  assert.equal(lstatSync(dir).mode & 0o7777, 0o755)
  assert.equal(await d.get('layer'), dir)
  assert.deepEqual(await d.getMetadata('layer'), { SourceDir: dir })
  assert.deepEqual(d.status(), [])
  assert.equal(d.name, 'vfs')
  // A layer directory Docker made is a layer; a file where a layer would be is none.
  mkdirSync(join(d.home, 'dir', 'by-docker'))
  assert.equal(await d.exists('by-docker'), true)
  writeFileSync(join(d.home, 'dir', 'not-a-dir'), '')
  assert.equal(await d.exists('not-a-dir'), false)
  await rejectsWith(d.get('not-a-dir'), 'DRIVER_LAYER_NOT_FOUND', 'get() of a file')
  await d.remove('not-a-dir')
  assert.equal(readdirSync(join(d.home, 'dir')).includes('not-a-dir'), false)
})

test('a vfs child copies what Docker copies and more: every xattr, sockets, raw names, the root', async (t) => {
  const d = await setup(t, vfs)
  await d.create('base', undefined)
  const before = await inLayer(d, 'base', (root) => {
    const raw = Buffer.concat([Buffer.from(root), Buffer.from('/bytes-\xff\xfe', 'latin1')])
    writeFileSync(raw, 'not utf-8')
    sys.mknod(join(root, 'sock'), 0o140755, 0, 0)
    writeFile(root, 'suid', 'x', { mode: 0o4755, uid: 1, gid: 2 })
    if (IS_ROOT) {
      sys.lsetxattr(join(root, 'suid'), 'security.capability', CAP_NET_RAW)
      sys.lsetxattr(join(root, 'suid'), 'trusted.layerstore', Buffer.from('t'))
    }
    if (userXattrs(root)) {
      sys.lsetxattr(join(root, 'suid'), 'user.a', Buffer.from([0, 1, 2]))
      makeDir(root, 'xdir')
      sys.lsetxattr(join(root, 'xdir'), 'user.dir', Buffer.from('d'))
    }
    makeDir(root, 'deep/er/still')
    writeFile(root, 'deep/er/still/f', 'f')
    for (const p of ['deep/er/still/f', 'deep/er/still', 'deep/er', 'deep'])
      setMeta(join(root, p), { mtimeNs: at(5, 123_456_789) }, false)
    setMeta(root, { mode: 0o751, mtimeNs: at(7, 987_654_321) })
    return { tree: snapshot(root), root: lstatSync(root, { bigint: true }) }
  })
  await d.createReadWrite('child', 'base')
  await inLayer(d, 'child', (root) => {
    assert.deepEqual(treeDiff(before.tree, snapshot(root), { dirMtime: true }), [])
    const st = lstatSync(root, { bigint: true })
    assert.equal(st.mode, before.root.mode)
    assert.equal(st.mtimeNs, before.root.mtimeNs)
    assert.ok(lstatSync(join(root, 'sock')).isSocket())
    if (IS_ROOT)
      assert.deepEqual(sys.lgetxattr(join(root, 'suid'), 'security.capability'), CAP_NET_RAW)
  })
})

test('vfs storage options: size is not supported, others are invalid, none is fine', async (t) => {
  const d = await setup(t, vfs)
  await rejectsWith(
    d.createReadWrite('a', undefined, { storageOpt: { size: '1G' } }),
    'DRIVER_NOT_SUPPORTED',
    'size',
  )
  await rejectsWith(
    d.createReadWrite('a', undefined, { storageOpt: { 'overlay2.x': 'y' } }),
    'DRIVER_INVALID_OPTION',
    'unknown option',
  )
  await d.create('a', undefined, { storageOpt: {}, mountLabel: 'ignored' })
  assert.equal(await d.exists('a'), true)
})

test('vfs remove() deletes directories it may not write or read into', async (t) => {
  const d = await setup(t, vfs)
  await d.createReadWrite('rw', undefined)
  await inLayer(d, 'rw', (root) => {
    makeDir(root, 'ro/sub')
    writeFile(root, 'ro/sub/f', 'f')
    writeFile(root, 'ro/g', 'g', { mode: 0 })
    chmodSync(join(root, 'ro/sub'), 0o555)
    chmodSync(join(root, 'ro'), 0)
  })
  await d.remove('rw')
  assert.equal(await d.exists('rw'), false)
})

test('a vfs copy that fails leaves no half-made child', async (t) => {
  const d = await setup(t, vfs)
  await d.create('p', undefined)
  // Deep enough to fit under the parent's path but not under a child's with a longer id.
  const longId = 'c'.repeat(250)
  await inLayer(d, 'p', (root) => {
    const room = 4000 - root.length
    let rel = ''
    while (rel.length + 101 < room) rel += `/${'d'.repeat(100)}`
    mkdirSync(root + rel, { recursive: true })
    writeFileSync(join(root + rel, 'f'.repeat(Math.max(1, room - rel.length - 1))), '')
  })
  await rejectsWith(d.createReadWrite(longId, 'p'), 'DRIVER_IO_FAILED', 'copy past PATH_MAX')
  assert.equal(await d.exists(longId), false)
  assert.deepEqual(readdirSync(join(d.home, 'dir')), ['p'])
})

test('vfs get() and put() need no balance; base layers copy in full', async (t) => {
  const d = await setup(t, vfs)
  const base = await baseLayer(d)
  await d.put('base')
  await d.put('base')
  await d.create('copy', 'base')
  assert.deepEqual(treeDiff(base, await inLayer(d, 'copy', snapshot), { dirMtime: true }), [])
})
