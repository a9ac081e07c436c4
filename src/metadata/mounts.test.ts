/**
 * Read-write layer records: atomic write, replace and remove (SPEC.md §8.1 item 8, §8.3),
 * name validation, tolerant reads, and the states a crash can leave behind.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChainId } from '../digest/digest.js'
import { hasCode } from '../errors.js'
import { setCrashHook } from './crash-points.js'
import { MetadataCorruptError } from './errors.js'
import { LayerDb } from './layer-db.js'
import type { MountRecord } from './types.js'

process.umask(0o022)

const hex = (): string => randomBytes(32).toString('hex')
const chain = (): ChainId => `sha256:${hex()}` as ChainId
const mode = (p: string): number => statSync(p).mode & 0o7777

async function tempDb(t: TestContext): Promise<{ db: LayerDb; root: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-mounts-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const db = await LayerDb.open(dir, 'overlay2')
  return { db, root: db.root }
}

function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(dir).sort()) out[name] = readFileSync(join(dir, name), 'latin1')
  return out
}

test('a mount record reads back, with the bytes Docker writes', async (t) => {
  const { db, root } = await tempDb(t)
  const record: MountRecord = {
    name: 'some-mount_name',
    mountId: hex(),
    initId: `${hex()}-init`,
    parent: chain(),
  }
  await db.writeMount(record)
  assert.deepEqual(await db.readMount(record.name), record)
  const dir = join(root, 'mounts', record.name)
  assert.equal(db.mountPath(record.name), dir)
  assert.deepEqual(files(dir), {
    'init-id': record.initId,
    'mount-id': record.mountId,
    parent: record.parent,
  })
  assert.equal(mode(dir), 0o755)
  for (const f of ['init-id', 'mount-id', 'parent']) assert.equal(mode(join(dir, f)), 0o644)
  // Without init layer and parent: only mount-id.
  const bare = { name: 'bare', mountId: hex() }
  await db.writeMount(bare)
  assert.deepEqual(await db.readMount('bare'), bare)
  assert.deepEqual(Object.keys(files(join(root, 'mounts', 'bare'))), ['mount-id'])
  assert.deepEqual((await db.list()).mounts, ['bare', 'some-mount_name'])
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('writeMount replaces a record whole: no file of the old one survives', async (t) => {
  const { db, root } = await tempDb(t)
  const old = { name: 'c', mountId: hex(), initId: `${hex()}-init`, parent: chain() }
  await db.writeMount(old)
  const next = { name: 'c', mountId: hex() }
  await db.writeMount(next)
  assert.deepEqual(await db.readMount('c'), next)
  assert.deepEqual(Object.keys(files(join(root, 'mounts', 'c'))), ['mount-id'])
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('an exclusive writeMount does not replace: METADATA_EXISTS', async (t) => {
  const { db, root } = await tempDb(t)
  const first = { name: 'c', mountId: hex() }
  await db.writeMount(first, { exclusive: true })
  const err = await db
    .writeMount({ name: 'c', mountId: hex() }, { exclusive: true })
    .catch((e: unknown) => e)
  assert.ok(hasCode(err, 'METADATA_EXISTS'), String(err))
  assert.deepEqual(await db.readMount('c'), first)
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('removeMount removes the record; a missing one is METADATA_NOT_FOUND', async (t) => {
  const { db, root } = await tempDb(t)
  await db.writeMount({ name: 'gone', mountId: hex(), parent: chain() })
  await db.removeMount('gone')
  assert.deepEqual((await db.list()).mounts, [])
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
  await assert.rejects(db.removeMount('gone'), (e) => hasCode(e, 'METADATA_NOT_FOUND'))
  await assert.rejects(db.readMount('gone'), (e) => hasCode(e, 'METADATA_NOT_FOUND'))
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('names that are not one path component are METADATA_INVALID_NAME', async (t) => {
  const { db, root } = await tempDb(t)
  const bad = ['', '.', '..', 'a/b', '/', '../mounts', 'a\0b', 'x'.repeat(256), 'a\ud800']
  for (const name of bad) {
    for (const op of [
      () => db.writeMount({ name, mountId: hex() }),
      () => db.readMount(name),
      () => db.removeMount(name),
      () => db.quarantine('mount', name, 'x'),
    ]) {
      const err = await op().catch((e: unknown) => e)
      assert.ok(hasCode(err, 'METADATA_INVALID_NAME'), `${JSON.stringify(name)}: ${String(err)}`)
      assert.equal((err as { kind: string }).kind, 'invalid-argument')
    }
  }
  assert.throws(
    () => db.mountPath('..'),
    (e) => hasCode(e, 'METADATA_INVALID_NAME'),
  )
  await db.writeMount({ name: 'x'.repeat(255), mountId: hex() }) // NAME_MAX is fine
  assert.deepEqual(readdirSync(join(root, 'mounts')), ['x'.repeat(255)])
  assert.deepEqual(readdirSync(root).sort(), ['mounts', 'sha256', 'tmp'])
})

test('writeMount refuses ids it could not read back (programmer errors)', async (t) => {
  const { db, root } = await tempDb(t)
  await assert.rejects(db.writeMount({ name: 'a', mountId: 'short' }), TypeError)
  await assert.rejects(db.writeMount({ name: 'a', mountId: hex(), initId: 'x' }), TypeError)
  await assert.rejects(
    db.writeMount({ name: 'a', mountId: hex(), parent: 'sha256:1' as ChainId }),
    TypeError,
  )
  assert.deepEqual(readdirSync(join(root, 'mounts')), [])
})

test('mount files Docker wrote read tolerantly; bad ones are METADATA_CORRUPT', async (t) => {
  const { db, root } = await tempDb(t)
  const write = (name: string, f: Record<string, string>): string => {
    const dir = join(root, 'mounts', name)
    mkdirSync(dir)
    for (const [k, v] of Object.entries(f)) writeFileSync(join(dir, k), v)
    return dir
  }
  const id = hex()
  const parent = chain()
  write('docker', { 'mount-id': `${id}\n`, 'init-id': ` ${id}-init\n`, parent: `${parent}\n` })
  assert.deepEqual(await db.readMount('docker'), {
    name: 'docker',
    mountId: id,
    initId: `${id}-init`,
    parent,
  })
  // Docker writes the three files one by one: a crash can leave mount-id alone.
  write('half', { 'mount-id': id })
  assert.deepEqual(await db.readMount('half'), { name: 'half', mountId: id })
  // An -init suffix on mount-id is tolerated, as Docker's isValidID does.
  write('suffix', { 'mount-id': `${id}-init` })
  assert.equal((await db.readMount('suffix')).mountId, `${id}-init`)
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['no-mount-id', { parent }, 'mount-id', /^mount-id: missing$/],
    ['bad-mount-id', { 'mount-id': 'abc' }, 'mount-id', /invalid mount id value "abc"/],
    ['bad-init-id', { 'mount-id': id, 'init-id': id.toUpperCase() }, 'init-id', /invalid init/],
    ['bad-parent', { 'mount-id': id, parent: 'sha256:' }, 'parent', /^parent: /],
  ]
  for (const [name, f, file, reason] of cases) {
    const dir = write(name, f)
    const err = await db.readMount(name).catch((e: unknown) => e)
    assert.ok(err instanceof MetadataCorruptError, `${name}: ${String(err)}`)
    assert.equal(err.recordKind, 'mount')
    assert.equal(err.recordName, name)
    assert.equal(err.path, join(dir, file))
    assert.match(err.reason, reason, name)
  }
})

test('a damaged mount record can be quarantined and the name used again', async (t) => {
  const { db, root } = await tempDb(t)
  mkdirSync(join(root, 'mounts', 'broken'))
  const err = await db.readMount('broken').catch((e: unknown) => e)
  assert.ok(err instanceof MetadataCorruptError)
  const q = await db.quarantine('mount', 'broken', err.reason)
  assert.ok(q.movedTo.startsWith(join(root, 'quarantine', 'mount-broken-')))
  assert.deepEqual((await db.list()).mounts, [])
  const record = { name: 'broken', mountId: hex() }
  await db.writeMount(record, { exclusive: true })
  assert.deepEqual(await db.readMount('broken'), record)
})

// ---- what a crash leaves behind ---------------------------------------------------------------

test('a mount write set left by a crash is swept; nothing half-written becomes visible', async (t) => {
  const { root } = await tempDb(t)
  const ws = join(root, 'tmp', 'write-set-AbC123')
  mkdirSync(ws)
  writeFileSync(join(ws, 'mount-id'), hex())
  const db = await LayerDb.openAt(root)
  assert.deepEqual(db.swept.tmp, ['write-set-AbC123'])
  assert.deepEqual((await db.list()).mounts, [])
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('a replacement that died between its renames is rolled back to the old record', async (t) => {
  const { db, root } = await tempDb(t)
  const old = { name: 'ctr', mountId: hex(), parent: chain() }
  await db.writeMount(old)
  // The state after "mount:old-moved": the old record aside, the new one not yet renamed in.
  const aside = join(root, 'tmp', 'mount-replaced-Xy12Z3')
  mkdirSync(aside)
  writeFileSync(join(aside, 'name'), 'ctr')
  renameSync(join(root, 'mounts', 'ctr'), join(aside, 'old'))
  const ws = join(root, 'tmp', 'write-set-Q1w2E3')
  mkdirSync(ws)
  writeFileSync(join(ws, 'mount-id'), hex())
  const db2 = await LayerDb.openAt(root)
  assert.deepEqual(db2.swept.restoredMounts, ['ctr'])
  assert.deepEqual([...db2.swept.tmp].sort(), ['mount-replaced-Xy12Z3', 'write-set-Q1w2E3'])
  assert.deepEqual(await db2.readMount('ctr'), old)
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('a replacement that died after its second rename keeps the new record', async (t) => {
  const { db, root } = await tempDb(t)
  const next = { name: 'ctr', mountId: hex() }
  await db.writeMount(next)
  const aside = join(root, 'tmp', 'mount-replaced-AAAAAA')
  mkdirSync(join(aside, 'old'), { recursive: true })
  writeFileSync(join(aside, 'name'), 'ctr')
  writeFileSync(join(aside, 'old', 'mount-id'), hex())
  const db2 = await LayerDb.openAt(root)
  assert.deepEqual(db2.swept.restoredMounts, [])
  assert.deepEqual(await db2.readMount('ctr'), next)
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('a removal that died after its rename stays removed; bad aside names restore nothing', async (t) => {
  const { root } = await tempDb(t)
  mkdirSync(join(root, 'tmp', 'removing-BBBBBB', 'old'), { recursive: true })
  writeFileSync(join(root, 'tmp', 'removing-BBBBBB', 'old', 'mount-id'), hex())
  const evil = join(root, 'tmp', 'mount-replaced-CCCCCC')
  mkdirSync(join(evil, 'old'), { recursive: true })
  writeFileSync(join(evil, 'name'), '../sha256')
  const db = await LayerDb.openAt(root)
  assert.deepEqual(db.swept.restoredMounts, [])
  assert.deepEqual(db.swept.tmp, ['mount-replaced-CCCCCC', 'removing-BBBBBB'])
  assert.deepEqual((await db.list()).mounts, [])
  assert.ok(existsSync(join(root, 'sha256')))
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('a replacement that fails between its renames puts the old record back', async (t) => {
  const { db, root } = await tempDb(t)
  const old = { name: 'ctr', mountId: hex(), initId: `${hex()}-init` }
  await db.writeMount(old)
  setCrashHook((p) => {
    if (p === 'mount:old-moved') throw new Error('injected failure')
  })
  try {
    await assert.rejects(db.writeMount({ name: 'ctr', mountId: hex() }), /injected failure/)
  } finally {
    setCrashHook(undefined)
  }
  assert.deepEqual(await db.readMount('ctr'), old)
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})
