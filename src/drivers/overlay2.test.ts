/**
 * The overlay2 driver against the real kernel: the conformance suite (native and naive
 * diff), Docker's on-disk layout, mounts counted across processes, deep chains mounted with
 * relative paths, remove() and cleanup() leaving no mount behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sys } from '../internal/sys.js'
import { TYPE } from '../tar/index.js'
import { overlayUnsupported } from '../testing/overlay-mount.js'
import { runDriverConformance } from './conformance.js'
import { chunksOf, inLayer, rejectsWith, setup, snapshot, tarOf } from './conformance-helpers.js'
import { isMountpoint } from './overlay2/mounts.js'
import { createOverlay2Driver, MAX_LOWERS, Overlay2Driver } from './overlay2.js'
import { removeAll } from './remove-all.js'

const skip = overlayUnsupported()
const overlay2 = (root: string): Promise<Overlay2Driver> => createOverlay2Driver(root)

runDriverConformance('overlay2', overlay2, {
  applySize: 'directory',
  layerNlink: false,
  ...(skip ? { skip } : {}),
})
runDriverConformance(
  'overlay2 (naive diff)',
  (root) => createOverlay2Driver(root, { naive: true }),
  { layerNlink: false, ...(skip ? { skip } : {}) },
)

const T = 1_650_000_000
const file = (name: string, data = name, mode = 0o644) => ({
  header: { name, mode, mtime: T },
  body: Buffer.from(data),
})
const dir = (name: string) => ({ header: { name, typeflag: TYPE.DIR, mode: 0o755, mtime: T } })
const mode = (path: string): number => lstatSync(path).mode & 0o7777

test(
  "overlay2 keeps Docker's layout: link, lower, l/ links, work, committed, whiteouts",
  { skip },
  async (t) => {
    const d = await setup(t, overlay2)
    const home = d.home
    assert.equal(mode(home), 0o710)
    assert.equal(mode(join(home, 'l')), 0o700)
    await d.create('base', undefined)
    await d.applyDiff(
      'base',
      undefined,
      chunksOf(
        await tarOf([dir('etc/'), file('etc/a'), file('etc/b'), dir('opt/'), file('opt/x')]),
      ),
    )
    await d.create('top', 'base')
    const tar = await tarOf([
      file('etc/.wh.a', ''),
      dir('opt/'),
      file('opt/.wh..wh..opq', ''),
      file('opt/y'),
    ])
    await d.applyDiff('top', 'base', chunksOf(tar))

    for (const id of ['base', 'top']) {
      const layer = join(home, id)
      assert.equal(mode(layer), 0o710)
      assert.equal(mode(join(layer, 'diff')), 0o755)
      const link = readFileSync(join(layer, 'link'), 'latin1')
      assert.match(link, /^[A-Z2-7]{26}$/) // no newline
      assert.equal(readlinkSync(join(home, 'l', link)), `../${id}/diff`)
    }
    const baseLink = readFileSync(join(home, 'base', 'link'), 'latin1')
    assert.equal(readFileSync(join(home, 'top', 'lower'), 'latin1'), `l/${baseLink}`)
    assert.equal(lstatSync(join(home, 'base', 'lower'), { throwIfNoEntry: false }), undefined)
    assert.equal(mode(join(home, 'top', 'work')), 0o700)
    assert.equal(lstatSync(join(home, 'base', 'work'), { throwIfNoEntry: false }), undefined)
    const committed = lstatSync(join(home, 'base', 'committed'))
    assert.deepEqual([committed.size, committed.mode & 0o777], [0, 0o600])
    // Whiteouts as the kernel wants them, in diff/ itself.
    const wh = lstatSync(join(home, 'top', 'diff', 'etc', 'a'))
    assert.ok(wh.isCharacterDevice())
    assert.equal(wh.rdev, 0)
    assert.deepEqual(
      sys.lgetxattr(join(home, 'top', 'diff', 'opt'), 'trusted.overlay.opaque'),
      Buffer.from('y'),
    )
    // The layer mounted shows exactly what the layers mean.
    await d.createReadWrite('rw', 'top')
    const tree = await inLayer(d, 'rw', snapshot)
    assert.deepEqual([...tree.keys()].sort(), ['etc', 'etc/b', 'opt', 'opt/y'])
    const meta = await d.getMetadata('rw')
    assert.equal(meta['UpperDir'], join(home, 'rw', 'diff'))
    assert.equal(
      meta['LowerDir'],
      [join(home, 'top', 'diff'), join(home, 'base', 'diff')].join(':'),
    )
    const status = new Map(d.status())
    assert.equal(status.get('Backing Filesystem') !== undefined, true)
    assert.equal(status.get('Native Overlay Diff'), String(d.features.nativeDiff))
  },
)

test(
  'a mount is counted across processes: the last put() in any process unmounts',
  { skip },
  async (t) => {
    const d = await setup(t, overlay2)
    await d.create('base', undefined)
    await d.applyDiff('base', undefined, chunksOf(await tarOf([file('f', 'base')])))
    await d.createReadWrite('rw', 'base')
    const root = join(d.home, '..')
    const module = fileURLToPath(new URL('./overlay2.js', import.meta.url))
    const inChild = (op: 'get' | 'put'): string =>
      execFileSync(process.execPath, [
        '--input-type=module',
        '-e',
        `const { createOverlay2Driver } = await import(${JSON.stringify(module)})
       const d = await createOverlay2Driver(${JSON.stringify(root)})
       const r = await d.${op}('rw')
       process.stdout.write(String(r ?? ''))`,
      ]).toString()
    const merged = join(d.home, 'rw', 'merged')
    assert.equal(inChild('get'), merged)
    assert.ok(isMountpoint(merged))
    assert.equal(readFileSync(join(merged, 'f'), 'utf8'), 'base')
    assert.equal(await d.get('rw'), merged) // a second user, in this process
    inChild('put')
    assert.ok(isMountpoint(merged), 'one user is left')
    assert.equal(inChild('get'), merged)
    await d.put('rw')
    assert.ok(isMountpoint(merged))
    inChild('put')
    assert.equal(isMountpoint(merged), false)
    assert.equal(lstatSync(merged, { throwIfNoEntry: false }), undefined)
    // A mount found without a count (a crash right after mounting) counts one user.
    await d.get('rw')
    writeFileSync(join(d.home, 'rw', 'mounts'), 'garbage')
    await d.put('rw')
    assert.equal(isMountpoint(merged), false)
  },
)

test(
  `${MAX_LOWERS - 1} lowers under a long home path mount with relative paths`,
  { skip },
  async (t) => {
    // Absolute lower paths of this home would take ~127 * 200 bytes: far more than a page.
    const base = mkdtempSync(join(tmpdir(), 'layerstore-ovl-deep-'))
    const root = join(base, 'x'.repeat(120), 'y'.repeat(40))
    mkdirSync(root, { recursive: true })
    const d = await createOverlay2Driver(root)
    t.after(async () => {
      await d.cleanup() // unmount before deleting
      await removeAll(base)
    })
    let parent: string | undefined
    const depth = MAX_LOWERS - 1
    for (let i = 0; i < depth; i++) {
      const id = `layer-${i}`
      await d.create(id, parent)
      const entries = [file(`f${i}`, `layer ${i}`)]
      if (i > 0) entries.push(file(`.wh.f${i - 1}`, '')) // each layer deletes its parent's file
      if (i % 10 === 0) entries.push(file(`keep${i}`))
      await d.applyDiff(id, parent, chunksOf(await tarOf(entries)))
      parent = id
    }
    await d.createReadWrite('rw', parent)
    const tree = await inLayer(d, 'rw', (r) => {
      writeFileSync(join(r, 'written'), 'in the mount')
      return snapshot(r)
    })
    const keeps = Array.from({ length: Math.ceil(depth / 10) }, (_, k) => `keep${k * 10}`)
    assert.deepEqual([...tree.keys()].sort(), [`f${depth - 1}`, ...keeps, 'written'].sort())
    assert.equal(readFileSync(join(d.home, 'rw', 'diff', 'written'), 'utf8'), 'in the mount')
    await d.create('deepest', 'rw') // 128 lowers: Docker's limit (rw is read-only from now on)
    await rejectsWith(d.create('too-deep', 'deepest'), 'DRIVER_INVALID_OPTION', 'a 129th lower')
  },
)

test('remove() of a mounted layer and cleanup() leave no mount behind', { skip }, async (t) => {
  const d = await setup(t, overlay2)
  await d.create('base', undefined)
  await d.createReadWrite('a', 'base')
  await d.createReadWrite('b', 'base')
  const a = await d.get('a')
  const b = await d.get('b')
  await d.get('b')
  assert.ok(isMountpoint(a) && isMountpoint(b))
  const link = readFileSync(join(d.home, 'a', 'link'), 'latin1')
  await d.remove('a')
  assert.equal(lstatSync(join(d.home, 'a'), { throwIfNoEntry: false }), undefined)
  assert.equal(lstatSync(join(d.home, 'l', link), { throwIfNoEntry: false }), undefined)
  await d.cleanup()
  assert.equal(isMountpoint(b), false)
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
  assert.equal(mounts.includes(d.home), false, 'no mount under the home')
  assert.deepEqual(readdirSync(d.home).sort(), ['b', 'base', 'l'])
})

test(
  'a short link left by an interrupted remove() is pruned when the driver opens',
  { skip },
  async (t) => {
    const d = await setup(t, overlay2)
    await d.create('gone', undefined)
    const link = readFileSync(join(d.home, 'gone', 'link'), 'latin1')
    await removeAll(join(d.home, 'gone')) // the directory went, the link stayed
    assert.ok(lstatSync(join(d.home, 'l', link)).isSymbolicLink())
    await createOverlay2Driver(join(d.home, '..'))
    assert.equal(lstatSync(join(d.home, 'l', link), { throwIfNoEntry: false }), undefined)
  },
)

test(
  'an opaque marker at a layer root hides the lowers once mounted (overlayfs ignores a root xattr)',
  { skip },
  async (t) => {
    const d = await setup(t, overlay2)
    await d.create('base', undefined)
    const base = [dir('etc/'), file('etc/a'), file('b')]
    await d.applyDiff('base', undefined, chunksOf(await tarOf(base)))
    await d.create('top', 'base')
    const top = [file('kept-before'), file('.wh..wh..opq', ''), file('b', 'new b')]
    await d.applyDiff('top', 'base', chunksOf(await tarOf(top)))
    await d.createReadWrite('rw', 'top')
    const tree = await inLayer(d, 'rw', snapshot)
    assert.deepEqual([...tree.keys()].sort(), ['b', 'kept-before'])
    assert.equal(readFileSync(join(await d.get('rw'), 'b'), 'utf8'), 'new b')
    await d.put('rw')
    const changes = (await d.changes('top', 'base')).map((c) => `${c.kind} ${c.path}`)
    assert.deepEqual(changes, ['C /b', 'D /etc', 'A /kept-before'])
  },
)
