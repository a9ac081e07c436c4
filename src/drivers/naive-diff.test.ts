import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import { at, chunksOf, inLayer, readAll, setup, tarOf, writeFile } from './conformance-helpers.js'
import { baseLayer, editChild } from './conformance-fixture.js'
import { naiveDiff, settleTime, type ProtoDiffGetterDriver } from './naive-diff.js'
import { isDiffGetterDriver, type ProtoDriver } from './types.js'
import { VfsProtoDriver } from './vfs.js'

/** A vfs proto driver that counts get() minus put() per id. */
function counting(root: string): { proto: ProtoDriver; held: Map<string, number> } {
  const vfs = new VfsProtoDriver(root)
  const held = new Map<string, number>()
  const proto: ProtoDriver = {
    name: vfs.name,
    home: vfs.home,
    create: (id, parent, o) => vfs.create(id, parent, o),
    createReadWrite: (id, parent, o) => vfs.createReadWrite(id, parent, o),
    remove: (id) => vfs.remove(id),
    get: async (id) => {
      const root = await vfs.get(id)
      held.set(id, (held.get(id) ?? 0) + 1)
      return root
    },
    put: async (id) => {
      held.set(id, (held.get(id) ?? 0) - 1)
      await vfs.put(id)
    },
    exists: (id) => vfs.exists(id),
    status: () => vfs.status(),
    getMetadata: (id) => vfs.getMetadata(id),
    cleanup: () => vfs.cleanup(),
  }
  return { proto, held }
}

const balanced = (held: Map<string, number>): boolean => [...held.values()].every((n) => n === 0)

test('the naive diff puts every layer it gets, whether a stream ends, is destroyed or fails', async (t) => {
  let held = new Map<string, number>()
  const d = await setup(t, (root) => {
    const c = counting(root)
    held = c.held
    return Promise.resolve(naiveDiff(c.proto))
  })
  await baseLayer(d)
  await d.createReadWrite('child', 'base')
  await inLayer(d, 'child', editChild)
  await d.changes('child', 'base')
  await d.diffSize('child', 'base')
  assert.ok(balanced(held))

  const whole = await d.diff('child', 'base')
  assert.equal(held.get('child'), 1)
  assert.equal(held.get('base'), 1)
  await readAll(whole)
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(balanced(held), JSON.stringify([...held]))

  const early = await d.diff('base', undefined)
  for await (const _ of early) break
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(balanced(held), JSON.stringify([...held]))

  await d.create('applied', 'base')
  const bad = Buffer.from(await tarOf([{ header: { name: 'x' }, body: Buffer.from('x') }]))
  bad[0] = 0x7f // header checksum no longer matches
  await assert.rejects(d.applyDiff('applied', 'base', chunksOf(bad)))
  await assert.rejects(d.diff('child', 'missing'))
  assert.ok(balanced(held), JSON.stringify([...held]))
})

test('naiveDiff() has diffGetter exactly when its proto driver has it', async (t) => {
  const d = await setup(t, (root) => Promise.resolve(naiveDiff(counting(root).proto)))
  const c = { proto: d }
  assert.equal(isDiffGetterDriver(naiveDiff(c.proto)), false)
  const withGetter: ProtoDiffGetterDriver = {
    ...c.proto,
    diffGetter: () => Promise.reject(new Error('unused')),
  }
  assert.equal(isDiffGetterDriver(naiveDiff(withGetter)), true)
})

/**
 * Why diff() holds its end back: a committed layer has whole-second mtimes, and changes()
 * takes a same-second time without nanoseconds as equal (Docker's rule), so a same-size
 * rewrite within that second goes unseen.
 */
test('changes() cannot see a same-size rewrite in the second of a whole-second parent', async (t) => {
  const d = await setup(t, (root) => Promise.resolve(naiveDiff(new VfsProtoDriver(root))))
  await d.create('committed', undefined)
  await inLayer(d, 'committed', (root) => writeFile(root, 'f', 'v1', { mtimeNs: at(100) }))
  await d.createReadWrite('container', 'committed')
  await inLayer(d, 'container', (root) =>
    writeFile(root, 'f', 'v2', { mtimeNs: at(100, 700_000_000) }),
  )
  assert.deepEqual(await d.changes('container', 'committed'), [])
  await inLayer(d, 'container', (root) => writeFile(root, 'f', 'v3', { mtimeNs: at(101, 0) }))
  assert.equal((await d.changes('container', 'committed')).length, 1)
})

test('a diff ends no earlier than the second after its newest file, and at once for old files', async (t) => {
  const d = await setup(t, (root) => Promise.resolve(naiveDiff(new VfsProtoDriver(root))))
  await baseLayer(d)
  await d.createReadWrite('child', 'base')
  const root = await d.get('child')
  writeFileSync(join(root, 'fresh'), 'now')
  const mtime = lstatSync(join(root, 'fresh'), { bigint: true }).mtimeNs
  const list = await d.changes('child', 'base')
  assert.ok(settleTime(root, list) > Number(mtime / 1_000_000n))
  await readAll(await d.diff('child', 'base'))
  assert.ok(BigInt(Date.now()) * 1_000_000n >= (mtime / 1_000_000_000n + 1n) * 1_000_000_000n)

  sys.lutimens(join(root, 'fresh'), 1, 0, 1, 0)
  assert.ok(settleTime(root, await d.changes('child', 'base')) < Date.now())
  const year2100 = 4_102_444_800
  sys.lutimens(join(root, 'fresh'), year2100, 0, year2100, 0)
  assert.ok(settleTime(root, await d.changes('child', 'base')) <= Date.now() + 1100)
  await d.put('child')
})
