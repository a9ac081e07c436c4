import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  lstatSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sys, S_IFCHR, S_IFIFO } from './sys.js'

const isRoot = process.getuid?.() === 0

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'layerstore-sys-'))
}

test('xattrs are set, listed, read and removed on the link itself', (t) => {
  const dir = scratch()
  t.after(() => rmSync(dir, { recursive: true }))
  const f = join(dir, 'f')
  writeFileSync(f, 'x')
  const value = Buffer.from([0, 1, 2, 255])
  sys.lsetxattr(f, 'user.layerstore', value)
  assert.deepEqual(sys.lgetxattr(f, 'user.layerstore'), value)
  assert.deepEqual(
    sys.llistxattr(Buffer.from(f)).map((n) => n.toString()),
    ['user.layerstore'],
  )
  assert.equal(sys.lgetxattr(f, 'user.absent'), undefined)
  sys.lremovexattr(f, 'user.layerstore')
  sys.lremovexattr(f, 'user.layerstore') // absent: no error
  assert.deepEqual(sys.llistxattr(f), [])
  // user.* xattrs are not allowed on symlinks: the call must reach the link, not its target.
  const l = join(dir, 'l')
  symlinkSync('f', l)
  assert.throws(() => sys.lsetxattr(l, 'user.x', Buffer.of(1)), {
    code: 'EPERM',
    syscall: 'lsetxattr',
  })
  assert.equal(sys.lgetxattr(f, 'user.x'), undefined)
})

test('lutimens sets nanoseconds and does not follow a symlink', (t) => {
  const dir = scratch()
  t.after(() => rmSync(dir, { recursive: true }))
  const f = join(dir, 'f')
  writeFileSync(f, 'x')
  const l = join(dir, 'l')
  symlinkSync('f', l)
  const before = statSync(f, { bigint: true }).mtimeNs
  sys.lutimens(l, 5, 6, 1_700_000_000, 123_456_789)
  assert.equal(lstatSync(l, { bigint: true }).mtimeNs, 1_700_000_000_123_456_789n)
  assert.equal(lstatSync(l, { bigint: true }).atimeNs, 5_000_000_006n)
  assert.equal(statSync(f, { bigint: true }).mtimeNs, before)
  assert.throws(() => sys.lutimens(f, 0, 1e9, 0, 0), TypeError)
})

test('errors look like fs errors', () => {
  assert.throws(() => sys.lgetxattr('/nonexistent/layerstore', 'user.x'), {
    code: 'ENOENT',
    errno: -2,
    syscall: 'lgetxattr',
    path: '/nonexistent/layerstore',
  })
  assert.throws(() => sys.mknod(Buffer.from('a\0b'), S_IFIFO | 0o644, 0, 0), TypeError)
})

test(
  'mknod makes fifos, and character devices as root',
  { skip: !isRoot && 'devices need root' },
  (t) => {
    const dir = scratch()
    t.after(() => rmSync(dir, { recursive: true }))
    sys.mknod(join(dir, 'p'), S_IFIFO | 0o600, 0, 0)
    assert.ok(lstatSync(join(dir, 'p')).isFIFO())
    sys.mknod(join(dir, 'c'), S_IFCHR | 0o644, 1, 3)
    const st = lstatSync(join(dir, 'c'))
    assert.ok(st.isCharacterDevice())
    assert.equal(st.rdev, 259) // makedev(1, 3)
    assert.throws(() => sys.mknod(join(dir, 'c'), S_IFCHR | 0o644, 1, 3), { code: 'EEXIST' })
  },
)

test('createFiles writes a new file off the main thread, never over an existing name', async (t) => {
  const dir = scratch()
  t.after(() => rmSync(dir, { recursive: true }))
  const f = join(dir, 'f')
  const chunks = [Buffer.from('hello '), new Uint8Array([119, 111, 114, 108, 100])]
  const one = (path: string, data: Uint8Array[], mode: number, chmod: boolean) =>
    sys
      .createFiles(
        [Buffer.from(path)],
        [data],
        Float64Array.of(mode, -1, -1, 7, 8, 1_600_000_000, 999, chmod ? 1 : 0, 0),
      )
      .then(([err]) => {
        if (err !== undefined) throw err
      })
  await one(f, chunks, 0o4711, true)
  assert.equal(readFileSync(f, 'utf8'), 'hello world')
  const st = statSync(f, { bigint: true })
  assert.equal(Number(st.mode) & 0o7777, 0o4711)
  assert.equal(st.mtimeNs, 1_600_000_000_000_000_999n)
  await assert.rejects(one(f, [], 0o644, false), {
    code: 'EEXIST',
    syscall: 'open',
    path: f,
  })
  symlinkSync('nowhere', join(dir, 'l'))
  await assert.rejects(one(join(dir, 'l'), [], 0o644, false), {
    code: 'EEXIST',
  })
  assert.throws(() => lstatSync(join(dir, 'nowhere')), { code: 'ENOENT' })
})

test('createFiles creates a batch of files in one job, each with its own result', async (t) => {
  const dir = scratch()
  t.after(() => rmSync(dir, { recursive: true }))
  writeFileSync(join(dir, 'taken'), 'old')
  const names = ['a', 'taken', 'b']
  const meta = new Float64Array(names.length * 9)
  names.forEach((_, i) => meta.set([0o640, -1, -1, 1, 2, 1_700_000_000, 7, 0, 0], i * 9))
  const results = await sys.createFiles(
    names.map((n) => Buffer.from(join(dir, n))),
    names.map((n) => [Buffer.from(n), Buffer.from('!')]),
    meta,
  )
  assert.equal(results[0], undefined)
  assert.equal((results[1] as NodeJS.ErrnoException).code, 'EEXIST')
  assert.equal(results[2], undefined)
  assert.equal(readFileSync(join(dir, 'b'), 'utf8'), 'b!')
  assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'old')
  assert.equal(statSync(join(dir, 'a'), { bigint: true }).mtimeNs, 1_700_000_000_000_000_007n)
  assert.throws(() => sys.createFiles([Buffer.from('a\0b')], [[]], new Float64Array(9)), TypeError)
})
