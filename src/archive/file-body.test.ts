import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import {
  linkSync,
  lstatSync,
  mkdtempSync,
  type BigIntStats,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hasCode } from '../errors.js'
import { sys, S_IFIFO } from '../internal/sys.js'
import { readSmallFile, streamFile } from './file-body.js'

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-file-body-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function drain(path: string, st: BigIntStats): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of streamFile(Buffer.from(path), st, '/f', undefined)) parts.push(c)
  return Buffer.concat(parts)
}

const failed = (what: RegExp) => (err: unknown) => {
  assert.ok(hasCode(err, 'ARCHIVE_EXPORT_FAILED'), String(err))
  assert.match((err as Error).message, what)
  return true
}

test('readSmallFile and streamFile return the data lstat announced', async (t) => {
  const f = join(scratch(t), 'f')
  const data = Buffer.from('0123456789'.repeat(300_000)) // 3 MB: several chunks
  writeFileSync(f, data)
  const st = lstatSync(f, { bigint: true })
  assert.deepEqual(await drain(f, st), data)
  writeFileSync(f, 'small')
  const small = lstatSync(f, { bigint: true })
  assert.deepEqual(readSmallFile(Buffer.from(f), small, '/f'), Buffer.from('small'))
  assert.deepEqual(await drain(f, small), Buffer.from('small'))
})

test('a file replaced since lstat (by a file, a FIFO, a symlink) is refused, never blocks', async (t) => {
  const dir = scratch(t)
  const f = join(dir, 'f')
  writeFileSync(f, 'first')
  linkSync(f, join(dir, 'keep')) // the inode stays in use, its number is not reused
  const st = lstatSync(f, { bigint: true })
  const swap = (make: (p: string) => void): void => {
    const tmp = join(dir, 'tmp')
    rmSync(tmp, { force: true })
    make(tmp)
    renameSync(tmp, f)
  }
  swap((p) => writeFileSync(p, 'other'))
  assert.throws(() => readSmallFile(Buffer.from(f), st, '/f'), failed(/replaced/))
  await assert.rejects(drain(f, st), failed(/replaced/))
  swap((p) => sys.mknod(p, S_IFIFO | 0o644, 0, 0))
  assert.throws(() => readSmallFile(Buffer.from(f), st, '/f'), failed(/replaced/))
  await assert.rejects(drain(f, st), failed(/replaced/))
  swap((p) => symlinkSync('/etc/hostname', p))
  assert.throws(() => readSmallFile(Buffer.from(f), st, '/f'), failed(/ELOOP/))
  await assert.rejects(drain(f, st), failed(/ELOOP/))
})

test('a file that shrank or grew since lstat is refused', async (t) => {
  const f = join(scratch(t), 'f')
  writeFileSync(f, 'five!')
  const st = lstatSync(f, { bigint: true })
  writeFileSync(f, 'four')
  assert.throws(() => readSmallFile(Buffer.from(f), st, '/f'), failed(/read 4 bytes/))
  await assert.rejects(drain(f, st), failed(/read 4 bytes/))
  writeFileSync(f, 'six!!!')
  assert.throws(() => readSmallFile(Buffer.from(f), st, '/f'), failed(/more than 5/))
  await assert.rejects(drain(f, st), failed(/more than 5/))
})
