import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import { changes, changesSize } from './changes.js'
import type { Change } from './types.js'
import { CAP_V2 } from '../testing/capabilities.js'

const isRoot = process.getuid?.() === 0
const needsRoot = { skip: !isRoot && 'needs root (chown, security.* xattrs)' }

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-changes-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Files and directories (names ending in `/`) under `root`, with fixed times. */
function build(root: string, spec: Record<string, string>): void {
  mkdirSync(root, { recursive: true })
  for (const [name, content] of Object.entries(spec)) {
    const p = join(root, name)
    if (name.endsWith('/')) mkdirSync(p, { recursive: true })
    else {
      writeFileSync(p, content)
      sys.lutimens(p, 1_600_000_000, 0, 1_600_000_000, 500_000_000)
    }
  }
}

/** `old` and a copy `new` that keeps times, owners and xattrs (or shares inodes: `-al`). */
function pair(t: TestContext, spec: Record<string, string>, cpFlags = '-a'): [string, string] {
  const dir = scratch(t)
  const oldDir = join(dir, 'old')
  const newDir = join(dir, 'new')
  build(oldDir, spec)
  const cp = spawnSync('cp', [cpFlags, oldDir, newDir])
  assert.equal(cp.status, 0, cp.stderr.toString())
  return [oldDir, newDir]
}

const show = (cs: Change[]): string[] => cs.map((c) => `${c.kind} ${c.path}`)

const BASE = {
  'a/': '',
  'a/keep': 'keep',
  'a/edit': 'old content',
  'a/gone': 'gone',
  'b/': '',
  'b/c/': '',
  'b/c/d': 'deep',
  z: 'z',
}

test('changes() reports adds, modifies and deletes, sorted by path, parents of changes included', async (t) => {
  const [oldDir, newDir] = pair(t, BASE)
  writeFileSync(join(newDir, 'a/edit'), 'new content, longer')
  unlinkSync(join(newDir, 'a/gone'))
  rmSync(join(newDir, 'b'), { recursive: true }) // a deleted directory is one Delete
  build(newDir, { 'n/': '', 'n/m/': '', 'n/m/f': 'f', 'a/new': 'x' }) // an added one, all of it
  assert.deepEqual(show(await changes(newDir, oldDir)), [
    'C /a', // not changed itself, but holds changes
    'C /a/edit',
    'D /a/gone',
    'A /a/new',
    'D /b',
    'A /n',
    'A /n/m',
    'A /n/m/f',
  ])
  assert.deepEqual(await changes(newDir, newDir), [])
})

test('changes() without an old tree reports every node as added, the root never', async (t) => {
  const dir = scratch(t)
  build(dir, BASE)
  symlinkSync('a/keep', join(dir, 'link'))
  const got = await changes(dir)
  assert.deepEqual(show(got), [
    'A /a',
    'A /a/edit',
    'A /a/gone',
    'A /a/keep',
    'A /b',
    'A /b/c',
    'A /b/c/d',
    'A /link',
    'A /z',
  ])
  assert.deepEqual(got[0]!.pathRaw, Buffer.from('/a'))
  const empty = join(dir, 'b/c/empty')
  mkdirSync(empty)
  assert.deepEqual(await changes(empty), [])
})

test('changes() orders paths by bytes: "/a-b" before "/a/x", a parent before its children', async (t) => {
  const dir = scratch(t)
  build(dir, { 'a/': '', 'a/x': '', 'a-b': '', 'a.c/': '', B: '' })
  assert.deepEqual(show(await changes(dir)), ['A /B', 'A /a', 'A /a-b', 'A /a.c', 'A /a/x'])
})

test('changes() skips nodes that are the same inode on both sides (a hard-linked copy)', async (t) => {
  const [oldDir, newDir] = pair(t, BASE, '-al')
  assert.deepEqual(await changes(newDir, oldDir), [])
  // Writing through a shared inode changes both trees alike: nothing to report (as Docker).
  writeFileSync(join(newDir, 'a/edit'), 'changed in place, in both trees')
  assert.deepEqual(await changes(newDir, oldDir), [])
  // Replacing the file breaks the link: now it differs.
  const tmp = join(newDir, 'b/c/d.tmp')
  writeFileSync(tmp, 'replaced')
  renameSync(tmp, join(newDir, 'b/c/d'))
  assert.deepEqual(show(await changes(newDir, oldDir)), ['C /b', 'C /b/c', 'C /b/c/d'])
})

test('changes(): a directory replaced by a file is one Modify; a file replaced by a directory brings its contents as adds', async (t) => {
  const [oldDir, newDir] = pair(t, BASE)
  rmSync(join(newDir, 'b'), { recursive: true })
  writeFileSync(join(newDir, 'b'), 'now a file')
  unlinkSync(join(newDir, 'z'))
  build(newDir, { 'z/': '', 'z/inside': 'i' })
  assert.deepEqual(show(await changes(newDir, oldDir)), ['C /b', 'C /z', 'A /z/inside'])
})

test('changes(): mode, owner and mtime each make a Modify; a directory mtime does not', async (t) => {
  const [oldDir, newDir] = pair(t, BASE)
  chmodSync(join(newDir, 'a/keep'), 0o600)
  if (isRoot) chownSync(join(newDir, 'z'), 1000, 1000)
  sys.lutimens(join(newDir, 'a/edit'), 0, 0, 1_600_000_001, 500_000_000)
  sys.lutimens(join(newDir, 'b/c'), 0, 0, 1_700_000_000, 0)
  chmodSync(join(newDir, 'b'), 0o700)
  assert.deepEqual(show(await changes(newDir, oldDir)), [
    'C /a',
    'C /a/edit',
    'C /a/keep',
    'C /b',
    ...(isRoot ? ['C /z'] : []),
  ])
})

test('changes(): mtimes in the same second are equal when either side has no nanoseconds', async (t) => {
  const [oldDir, newDir] = pair(t, { f: 'x', g: 'x', h: 'x', i: 'x' })
  const set = (dir: string, name: string, sec: number, nsec: number): void =>
    sys.lutimens(join(dir, name), 0, 0, sec, nsec)
  set(oldDir, 'f', 100, 500) // a copy that lost the nanoseconds: same
  set(newDir, 'f', 100, 0)
  set(oldDir, 'g', 100, 0)
  set(newDir, 'g', 100, 999_999_999)
  set(oldDir, 'h', 100, 1) // both precise and different: changed
  set(newDir, 'h', 100, 2)
  set(oldDir, 'i', 100, 0) // another second: changed
  set(newDir, 'i', 101, 0)
  assert.deepEqual(show(await changes(newDir, oldDir)), ['C /h', 'C /i'])
})

test('changes(): a changed security.capability xattr alone is a Modify', needsRoot, async (t) => {
  const [oldDir, newDir] = pair(t, BASE)
  sys.lsetxattr(join(newDir, 'a/keep'), 'security.capability', CAP_V2)
  sys.lsetxattr(join(newDir, 'z'), 'user.other', Buffer.from('not compared'))
  assert.deepEqual(show(await changes(newDir, oldDir)), ['C /a', 'C /a/keep'])
})

test('changes() keeps names that are not UTF-8 as their bytes', async (t) => {
  const [oldDir, newDir] = pair(t, { 'd/': '' })
  const name = Buffer.from([0x63, 0x61, 0x66, 0xff]) // "caf\xff"
  writeFileSync(Buffer.concat([Buffer.from(`${newDir}/d/`), name]), 'x')
  writeFileSync(join(newDir, 'd', 'caf\u00e9'), 'y') // "caf\xc3\xa9" sorts before \xff
  const got = await changes(newDir, oldDir)
  assert.deepEqual(show(got), ['C /d', 'A /d/caf\u00e9', 'A /d/caf\ufffd'])
  assert.deepEqual(got[2]!.pathRaw, Buffer.concat([Buffer.from('/d/'), name]))
})

test('changesSize() counts non-directories added or modified, a hard-linked inode once', async (t) => {
  const [oldDir, newDir] = pair(t, BASE)
  writeFileSync(join(newDir, 'big'), Buffer.alloc(1000))
  linkSync(join(newDir, 'big'), join(newDir, 'big2'))
  symlinkSync('0123456789', join(newDir, 'link')) // a symlink counts its target's length
  writeFileSync(join(newDir, 'a/edit'), '12345')
  rmSync(join(newDir, 'b'), { recursive: true })
  mkdirSync(join(newDir, 'dir'))
  const cs = await changes(newDir, oldDir)
  assert.deepEqual(show(cs), [
    'C /a',
    'C /a/edit',
    'D /b',
    'A /big',
    'A /big2',
    'A /dir',
    'A /link',
  ])
  assert.equal(changesSize(newDir, cs), 1000 + 10 + 5)
  // Nodes gone since are left out.
  unlinkSync(join(newDir, 'a/edit'))
  assert.equal(changesSize(newDir, cs), 1000 + 10)
})

test('changes() fails with ARCHIVE_EXPORT_FAILED when a tree cannot be read', async (t) => {
  const dir = scratch(t)
  await assert.rejects(changes(join(dir, 'missing')), { code: 'ARCHIVE_EXPORT_FAILED' })
  writeFileSync(join(dir, 'file'), '')
  await assert.rejects(changes(join(dir, 'file')), TypeError)
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(changes(dir, undefined, { signal: ac.signal }), { name: 'AbortError' })
})
