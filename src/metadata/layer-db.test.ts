/**
 * The layerdb on real temporary directories: Docker's filestore_test scenarios (SPEC.md §7.5),
 * the exact bytes Docker writes, tolerant reads of what Docker (or a person) wrote, damaged
 * records, the open sweep, deletion and orphans.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
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
import { pipeline } from 'node:stream/promises'
import { gunzipSync, gzipSync } from 'node:zlib'
import { hasCode } from '../errors.js'
import type { ChainId, DiffId } from '../digest/digest.js'
import { setCrashHook } from './crash-points.js'
import { MetadataCorruptError, MetadataIoError } from './errors.js'
import { LayerDb } from './layer-db.js'

process.umask(0o022) // Docker's modes are before the umask; the usual one makes them exact

const hex = (): string => randomBytes(32).toString('hex')
const chain = (): ChainId => `sha256:${hex()}` as ChainId
const diff = (): DiffId => `sha256:${hex()}` as DiffId

async function tempDb(t: TestContext): Promise<{ db: LayerDb; root: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-metadata-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const db = await LayerDb.open(dir, 'vfs')
  return { db, root: db.root }
}

/** Commits a complete record; returns what was written. */
async function commit(
  db: LayerDb,
  chainId: ChainId,
  extra: { parent?: ChainId; descriptor?: Record<string, unknown>; tarSplit?: Buffer } = {},
): Promise<{ diffId: DiffId; size: number; cacheId: string }> {
  await using txn = await db.begin()
  const diffId = diff()
  const cacheId = hex()
  txn.setDiffId(diffId)
  txn.setSize(1234)
  txn.setCacheId(cacheId)
  if (extra.parent !== undefined) txn.setParent(extra.parent)
  if (extra.descriptor !== undefined) txn.setDescriptor(extra.descriptor)
  if (extra.tarSplit !== undefined) {
    const s = txn.tarSplitStream()
    s.end(extra.tarSplit)
    await new Promise((r) => s.once('finish', r))
  }
  await txn.commit(chainId)
  return { diffId, size: 1234, cacheId }
}

/** Writes a record by hand, as Docker (or anything else) left it. */
function writeRecord(root: string, dirHex: string, files: Record<string, string>): string {
  const dir = join(root, 'sha256', dirHex)
  mkdirSync(dir, { recursive: true })
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const mode = (p: string): number => statSync(p).mode & 0o7777

test('open creates the layerdb 0700 with sha256/, mounts/ and tmp/ 0755', async (t) => {
  const { db, root } = await tempDb(t)
  assert.ok(root.endsWith(join('image', 'vfs', 'layerdb')))
  assert.equal(mode(root), 0o700)
  for (const d of ['sha256', 'mounts', 'tmp']) assert.equal(mode(join(root, d)), 0o755, d)
  assert.deepEqual(db.swept, { tmp: [], restoredMounts: [], emptiedOrphans: [] })
  assert.deepEqual(await db.list(), { layers: [], mounts: [] })
  await assert.rejects(LayerDb.open(root, '../x'), (e) => hasCode(e, 'METADATA_INVALID_NAME'))
})

test('a committed layer reads back every field, and its tar-split bytes', async (t) => {
  const { db } = await tempDb(t)
  const parent = chain()
  const id = chain()
  const descriptor = { mediaType: 'application/vnd.x', size: 3, digest: `sha256:${hex()}` }
  const tarSplit = gzipSync('{"type":2,"payload":"AA==","position":0}\n')
  await commit(db, parent)
  const w = await commit(db, id, { parent, descriptor, tarSplit })
  assert.deepEqual(await db.readLayer(id), { chainId: id, ...w, parent, descriptor })
  const base = await db.readLayer(parent)
  assert.equal(base.parent, undefined)
  assert.equal(base.descriptor, undefined)
  assert.ok(!('parent' in base) && !('descriptor' in base), 'absent fields are absent')
  assert.deepEqual(readFileSync(db.tarSplitPath(id)), tarSplit)
  const chunks: Buffer[] = []
  await pipeline(db.openTarSplit(id), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) chunks.push(c)
  })
  assert.deepEqual(Buffer.concat(chunks), tarSplit)
  assert.deepEqual((await db.list()).layers, [parent, id].sort())
})

test('committed files hold exactly the bytes Docker writes, mode 0644, in a 0700 directory', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const parent = chain()
  const diffId = diff()
  const txn = await db.begin()
  assert.equal(mode(txn.path), 0o700)
  assert.ok(txn.path.startsWith(join(root, 'tmp', 'write-set-')))
  txn.setDiffId(diffId)
  txn.setSize(0)
  txn.setCacheId('c'.repeat(64))
  txn.setParent(parent)
  txn.setDescriptor({ mediaType: 'a<b', size: 0 })
  await txn.commit(id)
  const dir = join(root, 'sha256', id.slice(7))
  assert.equal(txn.path, dir)
  assert.equal(mode(dir), 0o700)
  const expected: Record<string, string> = {
    diff: diffId,
    size: '0',
    'cache-id': 'c'.repeat(64),
    parent,
    'descriptor.json': '{"mediaType":"a\\u003cb","size":0}',
  }
  assert.deepEqual(readdirSync(dir).sort(), Object.keys(expected).sort())
  for (const [name, text] of Object.entries(expected)) {
    assert.equal(readFileSync(join(dir, name), 'latin1'), text, name)
    assert.equal(mode(join(dir, name)), 0o644, name)
  }
  assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'nothing left in tmp/')
})

test('begin then cancel leaves nothing; disposal cancels; cancel is idempotent', async (t) => {
  const { db, root } = await tempDb(t)
  const txn = await db.begin()
  txn.setSize(1)
  const s = txn.tarSplitStream()
  s.write('partial')
  await txn.cancel()
  await txn.cancel()
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
  assert.throws(() => txn.setSize(2), TypeError)
  await assert.rejects(txn.commit(chain()), TypeError)
  {
    await using t2 = await db.begin()
    t2.setDiffId(diff())
    assert.equal(readdirSync(join(root, 'tmp')).length, 1)
  }
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
  assert.deepEqual(await db.list(), { layers: [], mounts: [] })
})

test('commit refuses an incomplete record or an unfinished tar-split stream', async (t) => {
  const { db } = await tempDb(t)
  await using txn = await db.begin()
  txn.setDiffId(diff())
  txn.setSize(0)
  await assert.rejects(txn.commit(chain()), /no cache-id/)
  txn.setCacheId(hex())
  txn.tarSplitStream().write('x')
  await assert.rejects(txn.commit(chain()), /tar-split stream is not finished/)
  assert.throws(() => txn.setCacheId('a/b'), TypeError)
  assert.throws(() => txn.setCacheId(' x'), TypeError)
  assert.throws(() => txn.setSize(-1), RangeError)
  assert.throws(() => txn.setSize(1.5), RangeError)
  assert.throws(() => txn.setParent('sha256:00' as ChainId), TypeError)
})

test('TestCommitFailure: a file named sha256 makes commit fail with ENOTDIR', async (t) => {
  const { db, root } = await tempDb(t)
  rmSync(join(root, 'sha256'), { recursive: true })
  writeFileSync(join(root, 'sha256'), '')
  const txn = await db.begin()
  txn.setDiffId(diff())
  txn.setSize(0)
  txn.setCacheId(hex())
  const err = await txn.commit(chain()).catch((e: unknown) => e)
  assert.ok(err instanceof MetadataIoError, String(err))
  assert.equal(err.code, 'METADATA_IO_FAILED')
  assert.equal(err.kind, 'unavailable')
  assert.equal(err.errno, 'ENOTDIR')
  assert.equal((err.cause as { code: string }).code, 'ENOTDIR')
  await txn.cancel()
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('TestStartTransactionFailure: a file named tmp makes begin fail with ENOTDIR', async (t) => {
  const { db, root } = await tempDb(t)
  rmSync(join(root, 'tmp'), { recursive: true })
  writeFileSync(join(root, 'tmp'), '')
  const err = await db.begin().catch((e: unknown) => e)
  assert.ok(err instanceof MetadataIoError, String(err))
  assert.equal(err.errno, 'ENOTDIR')
  rmSync(join(root, 'tmp'))
  const txn = await db.begin()
  assert.ok(txn.path.startsWith(join(root, 'tmp', 'write-set-')))
  await txn.cancel()
})

test('a commit onto an existing record is METADATA_EXISTS and changes nothing', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const first = await commit(db, id)
  const err = await commit(db, id).catch((e: unknown) => e)
  assert.ok(hasCode(err, 'METADATA_EXISTS'), String(err))
  assert.equal((err as { kind: string }).kind, 'already-exists')
  assert.equal((await db.readLayer(id)).cacheId, first.cacheId)
  // replaceDamaged does not replace a readable record either.
  const txn = await db.begin()
  txn.setDiffId(diff())
  txn.setSize(0)
  txn.setCacheId(hex())
  await assert.rejects(txn.commit(id, { replaceDamaged: true }), (e) =>
    hasCode(e, 'METADATA_EXISTS'),
  )
  await txn.cancel()
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})

test('replaceDamaged quarantines an unreadable record and commits in its place', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  writeRecord(root, id.slice(7), { diff: 'garbage', size: '1', 'cache-id': 'x' })
  const txn = await db.begin()
  const diffId = diff()
  txn.setDiffId(diffId)
  txn.setSize(5)
  txn.setCacheId(hex())
  const q = await txn.commit(id, { replaceDamaged: true })
  assert.ok(q !== undefined)
  assert.equal(q.kind, 'layer')
  assert.equal(q.name, id.slice(7))
  assert.match(q.reason, /^diff: "garbage" is not a sha256 digest$/)
  assert.equal(readFileSync(join(q.movedTo, 'diff'), 'utf8'), 'garbage')
  assert.equal((await db.readLayer(id)).diffId, diffId)
})

test('list: valid sha256/<hex> directories, sorted, and mount directories', async (t) => {
  const { db, root } = await tempDb(t)
  const ids = [chain(), chain(), chain()]
  for (const id of ids) await commit(db, id)
  const sha = join(root, 'sha256')
  writeFileSync(join(sha, hex()), '') // a file
  mkdirSync(join(sha, hex().toUpperCase())) // not lowercase
  mkdirSync(join(sha, `${hex()}-${hex()}-removing`))
  mkdirSync(join(sha, 'abc'))
  mkdirSync(join(root, 'mounts', 'b'))
  mkdirSync(join(root, 'mounts', 'a'))
  mkdirSync(join(root, 'mounts', 'é'))
  mkdirSync(join(root, 'mounts', 'Z'))
  writeFileSync(join(root, 'mounts', 'file'), '')
  const list = await db.list()
  assert.deepEqual(list.layers, [...ids].sort())
  assert.deepEqual(list.mounts, ['Z', 'a', 'b', 'é'])
})

test('records Docker wrote with trailing newlines read back (tolerant reads)', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const parent = chain()
  const diffId = diff()
  writeRecord(root, id.slice(7), {
    diff: `${diffId}\n`,
    size: '42\n',
    'cache-id': ` ${'d'.repeat(64)}\r\n`,
    parent: `${parent}\n\n`,
    'descriptor.json': '{"mediaType":"m","size":1}\n',
  })
  assert.deepEqual(await db.readLayer(id), {
    chainId: id,
    diffId,
    size: 42,
    cacheId: 'd'.repeat(64),
    parent,
    descriptor: { mediaType: 'm', size: 1 },
  })
  // A descriptor of null is no descriptor, as Go decodes it.
  writeFileSync(join(root, 'sha256', id.slice(7), 'descriptor.json'), 'null')
  assert.equal((await db.readLayer(id)).descriptor, undefined)
})

test('unreadable records are METADATA_CORRUPT with the path and the reason', async (t) => {
  const { db, root } = await tempDb(t)
  const good = { diff: diff(), size: '1', 'cache-id': hex() }
  const cases: [string, Record<string, string>, string, RegExp][] = [
    ['missing diff', { size: '1', 'cache-id': 'c' }, 'diff', /^diff: missing$/],
    ['bad diff', { ...good, diff: 'sha256:abc' }, 'diff', /^diff: "sha256:abc" is not/],
    ['missing size', { diff: good.diff, 'cache-id': 'c' }, 'size', /^size: missing$/],
    ['bad size', { ...good, size: '12abc' }, 'size', /^size: "12abc" is not a decimal size$/],
    ['negative size', { ...good, size: '-1' }, 'size', /^size: "-1"/],
    ['empty cache-id', { ...good, 'cache-id': ' \n' }, 'cache-id', /invalid cache id value/],
    ['cache-id escaping', { ...good, 'cache-id': '../../x' }, 'cache-id', /contains "\/"/],
    ['bad parent', { ...good, parent: 'sha256:zz' }, 'parent', /^parent: /],
    ['bad descriptor', { ...good, 'descriptor.json': '{' }, 'descriptor.json', /invalid JSON/],
    ['array descriptor', { ...good, 'descriptor.json': '[]' }, 'descriptor.json', /not a JSON/],
  ]
  for (const [what, files, file, reason] of cases) {
    const id = chain()
    const dir = writeRecord(root, id.slice(7), files)
    const err = await db.readLayer(id).catch((e: unknown) => e)
    assert.ok(err instanceof MetadataCorruptError, `${what}: ${String(err)}`)
    assert.equal(err.code, 'METADATA_CORRUPT')
    assert.equal(err.kind, 'data-loss')
    assert.equal(err.recordKind, 'layer')
    assert.equal(err.recordName, id.slice(7))
    assert.equal(err.path, join(dir, file), what)
    assert.match(err.reason, reason, what)
  }
  // A record that is a file, a file that is a directory.
  const asFile = chain()
  writeFileSync(join(root, 'sha256', asFile.slice(7)), '')
  await assert.rejects(db.readLayer(asFile), /the record is not a directory/)
  const dirDiff = chain()
  const d = writeRecord(root, dirDiff.slice(7), { size: '1', 'cache-id': 'c' })
  mkdirSync(join(d, 'diff'))
  await assert.rejects(db.readLayer(dirDiff), /diff: is a directory/)
})

test('a layer that has no record is METADATA_NOT_FOUND; a bad ChainID is a TypeError', async (t) => {
  const { db } = await tempDb(t)
  const err = await db.readLayer(chain()).catch((e: unknown) => e)
  assert.ok(hasCode(err, 'METADATA_NOT_FOUND'), String(err))
  assert.equal((err as { kind: string }).kind, 'not-found')
  await assert.rejects(db.readLayer('sha256:12' as ChainId), TypeError)
  await assert.rejects(
    new Promise((_, reject) => db.openTarSplit(chain()).on('error', reject).resume()),
    (e) => hasCode(e, 'METADATA_NOT_FOUND'),
  )
})

test('a record without tar-split loads; its tar-split stream is METADATA_CORRUPT', async (t) => {
  const { db } = await tempDb(t)
  const id = chain()
  await commit(db, id)
  await db.readLayer(id)
  await assert.rejects(
    new Promise((_, reject) => db.openTarSplit(id).on('error', reject).resume()),
    (e) => hasCode(e, 'METADATA_CORRUPT') && /tar-split.json.gz: missing/.test(String(e)),
  )
})

test('quarantine moves a damaged record aside; the same ChainID can then be committed', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  writeRecord(root, id.slice(7), { diff: diff(), size: 'lots', 'cache-id': 'c' })
  assert.deepEqual((await db.list()).layers, [id])
  const err = await db.readLayer(id).catch((e: unknown) => e)
  assert.ok(err instanceof MetadataCorruptError)
  // Docker's failure: the stale directory blocks the commit (SPEC.md §8.1 item 6).
  await assert.rejects(commit(db, id), (e) => hasCode(e, 'METADATA_EXISTS'))
  const q = await db.quarantine(err.recordKind, err.recordName, err.reason)
  assert.equal(q.kind, 'layer')
  assert.equal(q.name, id.slice(7))
  assert.ok(q.movedTo.startsWith(join(root, 'quarantine', `layer-${id.slice(7)}-`)), q.movedTo)
  assert.equal(readFileSync(join(q.movedTo, 'size'), 'utf8'), 'lots')
  assert.equal(readFileSync(`${q.movedTo}.reason`, 'utf8'), `layer ${q.name}\n${err.reason}\n`)
  assert.deepEqual((await db.list()).layers, [])
  const w = await commit(db, id)
  assert.equal((await db.readLayer(id)).cacheId, w.cacheId)
  // Quarantining it again, under its ChainID this time, within the same millisecond or not.
  const q2 = await db.quarantine('layer', id, 'again')
  assert.notEqual(q2.movedTo, q.movedTo)
  await assert.rejects(db.quarantine('layer', id, 'gone'), (e) => hasCode(e, 'METADATA_NOT_FOUND'))
  await assert.rejects(db.quarantine('mount', '..', 'x'), (e) =>
    hasCode(e, 'METADATA_INVALID_NAME'),
  )
})

test('open sweeps write sets that crashed processes left in tmp/, and only ours', async (t) => {
  const { root } = await tempDb(t)
  const tmp = join(root, 'tmp')
  mkdirSync(join(tmp, 'write-set-123456789')) // Docker's naming
  writeFileSync(join(tmp, 'write-set-123456789', 'diff'), diff())
  writeFileSync(join(tmp, 'write-set-123456789', 'size'), '1')
  mkdirSync(join(tmp, 'write-set-x', 'deep', 'er'), { recursive: true })
  writeFileSync(join(tmp, 'write-set-file'), '')
  mkdirSync(join(tmp, 'removing-abc'))
  mkdirSync(join(tmp, 'someone-else'))
  const db = await LayerDb.openAt(root)
  assert.deepEqual(db.swept.tmp, [
    'removing-abc',
    'write-set-123456789',
    'write-set-file',
    'write-set-x',
  ])
  assert.deepEqual(readdirSync(tmp), ['someone-else'])
})

test('open does not sweep the write set of a live transaction (it is locked)', async (t) => {
  const { db, root } = await tempDb(t)
  const txn = await db.begin()
  txn.setDiffId(diff())
  txn.setSize(3)
  txn.setCacheId(hex())
  const db2 = await LayerDb.openAt(root) // as another process would, while txn is in flight
  assert.deepEqual(db2.swept.tmp, [])
  assert.ok(existsSync(txn.path))
  const id = chain()
  await txn.commit(id)
  assert.equal((await db2.readLayer(id)).size, 3)
})

test('TestGetOrphan: a renamed -removing directory with a cache-id is an orphan', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const { cacheId } = await commit(db, id)
  assert.deepEqual(await db.orphans(), [])
  const dirName = `${id.slice(7)}-${hex()}-removing`
  renameSync(join(root, 'sha256', id.slice(7)), join(root, 'sha256', dirName))
  assert.deepEqual(await db.orphans(), [{ chainId: id, cacheId, dirName }])
})

test('beginRemove renames -removing and returns the orphan; finishRemove deletes it', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const { cacheId } = await commit(db, id)
  const orphan = await db.beginRemove(id)
  assert.equal(orphan.chainId, id)
  assert.equal(orphan.cacheId, cacheId)
  assert.match(orphan.dirName, new RegExp(`^${id.slice(7)}-[0-9a-f]{64}-removing$`))
  assert.deepEqual((await db.list()).layers, [])
  await assert.rejects(db.readLayer(id), (e) => hasCode(e, 'METADATA_NOT_FOUND'))
  assert.deepEqual(await db.orphans(), [orphan])
  // Registered again and deleted again before the first deletion finished: no collision.
  await commit(db, id)
  const orphan2 = await db.beginRemove(id)
  assert.notEqual(orphan2.dirName, orphan.dirName)
  assert.equal((await db.orphans()).length, 2)
  await db.finishRemove(orphan)
  await db.finishRemove(orphan) // idempotent: another process may have finished it
  await db.finishRemove(orphan2)
  assert.deepEqual(readdirSync(join(root, 'sha256')), [])
  await assert.rejects(db.beginRemove(id), (e) => hasCode(e, 'METADATA_NOT_FOUND'))
  await assert.rejects(db.finishRemove({ ...orphan, dirName: '../x-removing' }), TypeError)
})

test('beginRemove throws any rename failure and leaves the record visible (SPEC §8.1 item 1)', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  await commit(db, id)
  const dir = join(root, 'sha256', id.slice(7))
  // An immutable directory cannot be renamed, even by root: EPERM.
  if (spawnSync('chattr', ['+i', dir]).status !== 0) {
    t.skip('chattr +i is not available here')
    return
  }
  let err: unknown
  try {
    err = await db.beginRemove(id).catch((e: unknown) => e)
  } finally {
    spawnSync('chattr', ['-i', dir])
  }
  assert.ok(err instanceof MetadataIoError, String(err))
  assert.equal(err.errno, 'EPERM')
  assert.deepEqual((await db.list()).layers, [id])
  assert.deepEqual(await db.orphans(), [])
})

test('orphans skips bad names and missing or empty cache-ids; open sweeps emptied ones', async (t) => {
  const { db, root } = await tempDb(t)
  const sha = join(root, 'sha256')
  const good = `${hex()}-${hex()}-removing`
  writeRecord(root, good, { 'cache-id': 'abc\n' })
  writeRecord(root, `zz-${hex()}-removing`, { 'cache-id': 'abc' })
  writeRecord(root, `${hex()}-${hex()}-removing-not`, { 'cache-id': 'abc' })
  writeRecord(root, `${hex()}-${hex()}-removing`.replace(/-removing$/, '-x-removing'), {
    'cache-id': ' ',
  })
  const emptied = `${hex()}-${hex()}-removing`
  writeRecord(root, emptied, { 'tar-split.json.gz': 'left over' })
  writeFileSync(join(sha, `${hex()}-${hex()}-removing`), '')
  const orphans = await db.orphans()
  assert.deepEqual(
    orphans.map((o) => [o.dirName, o.cacheId]),
    [[good, 'abc']],
  )
  const db2 = await LayerDb.openAt(root)
  assert.deepEqual(db2.swept.emptiedOrphans, [emptied])
  assert.ok(!existsSync(join(sha, emptied)))
  assert.deepEqual(
    (await db2.orphans()).map((o) => o.dirName),
    [good],
  )
})

test('a tar-split written through the stream is synced and committed with the record', async (t) => {
  const { db } = await tempDb(t)
  const id = chain()
  const body = gzipSync(Buffer.alloc(1 << 20, 'x'))
  await commit(db, id, { tarSplit: body })
  assert.equal(gunzipSync(readFileSync(db.tarSplitPath(id))).length, 1 << 20)
  assert.equal(mode(db.tarSplitPath(id)), 0o644)
})

test('a commit that fails before its rename leaves nothing visible; cancel cleans up', async (t) => {
  const { db, root } = await tempDb(t)
  const id = chain()
  const txn = await db.begin()
  txn.setDiffId(diff())
  txn.setSize(0)
  txn.setCacheId(hex())
  setCrashHook((p) => {
    if (p === 'commit:synced') throw new Error('injected failure')
  })
  try {
    await assert.rejects(txn.commit(id), /injected failure/)
  } finally {
    setCrashHook(undefined)
  }
  assert.deepEqual(await db.list(), { layers: [], mounts: [] })
  await txn.cancel()
  assert.deepEqual(readdirSync(join(root, 'tmp')), [])
})
