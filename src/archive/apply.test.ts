/**
 * apply(): Docker's whiteout sequence (SPEC.md §7.8, TestApplyLayerWhiteouts) and the
 * behaviours the corpus chains do not pin down one by one.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, mkdirSync, readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { apply } from './apply.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { TYPE } from '../tar/types.js'
import { scratchFor } from '../testing/corpus.js'
import { sys } from '../internal/sys.js'

const isRoot = process.getuid?.() === 0

/** Container ids 0-65535 on host uids from 100000 and gids from 200000. */
const idMappings = {
  uids: [{ containerId: 0, hostId: 100_000, size: 65_536 }],
  gids: [{ containerId: 0, hostId: 200_000, size: 65_536 }],
}

/** A tar of entries named `a/` (directory) or `a` (file whose content is its name). */
function layer(names: readonly string[]): AsyncIterable<Uint8Array> {
  const entries: TarWriteEntry[] = names.map((name) =>
    name.endsWith('/')
      ? { header: { name, typeflag: TYPE.DIR, mode: 0o755, mtime: 1_600_000_000 } }
      : { header: { name, mode: 0o644, mtime: 1_600_000_000 }, body: Buffer.from(name) },
  )
  return writeTar(entries)
}

/** Every path under `dir`, directories with a trailing `/`, sorted. */
function tree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d)) {
      const r = rel + name
      const isDir = lstatSync(join(d, name)).isDirectory()
      out.push(isDir ? r + '/' : r)
      if (isDir) walk(join(d, name), r + '/')
    }
  }
  walk(dir, '')
  return out.sort()
}

test('whiteout sequence (TestApplyLayerWhiteouts), applied cumulatively to one directory', async (t) => {
  const dir = await scratchFor(t)
  // The first layer adds exactly what it lists.
  const first = [
    '.baz',
    'bar/',
    'bar/bax',
    'bar/bay/',
    'baz',
    'foo/',
    'foo/.abc',
    'foo/.bcd/',
    'foo/.bcd/a',
    'foo/cde/',
    'foo/cde/def',
    'foo/cde/efg',
    'foo/fgh',
    'foobar',
  ]
  const steps: [string[], string[]][] = [
    [first, first],
    [
      ['.bay', '.wh.baz', 'foo/', 'foo/.bce', 'foo/.wh..wh..opq', 'foo/cde/', 'foo/cde/efg'],
      [
        '.bay',
        '.baz',
        'bar/',
        'bar/bax',
        'bar/bay/',
        'foo/',
        'foo/.bce',
        'foo/cde/',
        'foo/cde/efg',
        'foobar',
      ],
    ],
    [
      ['.bay', '.wh..baz', '.wh.foobar', 'foo/', 'foo/.abc', 'foo/.wh.cde', 'bar/'],
      ['.bay', 'bar/', 'bar/bax', 'bar/bay/', 'foo/', 'foo/.abc', 'foo/.bce'],
    ],
    [
      ['.abc', '.wh..wh..opq', 'foobar'],
      ['.abc', 'foobar'],
    ],
  ]
  for (const [i, [entries, expected]] of steps.entries()) {
    await apply(layer(entries), dir)
    assert.deepEqual(tree(dir), [...expected].sort(), `after layer ${i + 1}`)
  }
})

test(
  'an opaque marker after entries of its own layer keeps them (overlay form: xattr)',
  { skip: !isRoot && 'trusted xattrs need root' },
  async (t) => {
    const dir = await scratchFor(t)
    await apply(layer(['d/', 'd/old']), dir)
    await apply(layer(['d/', 'd/new', 'd/.wh..wh..opq']), dir)
    assert.deepEqual(tree(dir), ['d/', 'd/new'])
    const upper = join(dir, 'upper')
    mkdirSync(upper)
    await apply(layer(['d/', 'd/new', 'd/.wh..wh..opq', 'd/.wh.gone']), upper, {
      whiteoutFormat: 'overlay',
    })
    assert.deepEqual(sys.lgetxattr(join(upper, 'd'), 'trusted.overlay.opaque'), Buffer.from('y'))
    const wh = lstatSync(join(upper, 'd/gone'))
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0)
    assert.deepEqual(readdirSync(join(upper, 'd')).sort(), ['gone', 'new'])
  },
)

test('the layer size is the sum of header sizes, skipped entries included', async (t) => {
  const dir = await scratchFor(t)
  const r = await apply(layer(['a/', 'a/one', 'a/three', '.wh.x', '.wh..wh.plnk/ignored']), dir)
  assert.equal(
    r.size,
    'a/one'.length + 'a/three'.length + '.wh.x'.length + '.wh..wh.plnk/ignored'.length,
  )
  assert.equal(r.entries, 5)
  assert.deepEqual(tree(dir), ['a/', 'a/one', 'a/three'])
})

test('modes, nanosecond times and directory times survive; a file replaces a directory and back', async (t) => {
  const dir = await scratchFor(t)
  await apply(
    writeTar(
      [
        {
          header: {
            name: 'd/',
            typeflag: TYPE.DIR,
            mode: 0o1777,
            mtime: 1_000_000_000,
            mtimeNsec: 5,
          },
        },
        {
          header: { name: 'd/s', mode: 0o6755, mtime: 1_100_000_000, mtimeNsec: 123_456_789 },
          body: Buffer.from('x'),
        },
        { header: { name: 'x/', typeflag: TYPE.DIR, mode: 0o700 } },
        { header: { name: 'x/child', mode: 0o600 }, body: Buffer.from('c') },
        { header: { name: 'f', mode: 0o640 }, body: Buffer.from('f') },
      ],
      { subSecondTimes: true },
    ),
    dir,
  )
  assert.equal(statSync(join(dir, 'd')).mode & 0o7777, 0o1777)
  assert.equal(statSync(join(dir, 'd'), { bigint: true }).mtimeNs, 1_000_000_000_000_000_005n)
  assert.equal(statSync(join(dir, 'd/s')).mode & 0o7777, 0o6755)
  assert.equal(statSync(join(dir, 'd/s'), { bigint: true }).mtimeNs, 1_100_000_000_123_456_789n)
  await apply(
    writeTar([
      { header: { name: 'x', mode: 0o644 }, body: Buffer.from('now a file') },
      { header: { name: 'f/', typeflag: TYPE.DIR, mode: 0o755 } },
      { header: { name: 'f/inside', mode: 0o644 }, body: Buffer.from('i') },
    ]),
    dir,
  )
  assert.equal(readFileSync(join(dir, 'x'), 'utf8'), 'now a file')
  assert.deepEqual(tree(dir), ['d/', 'd/s', 'f/', 'f/inside', 'x'])
})

test('hard links: to a file of a lower layer, and through an AUFS link store', async (t) => {
  const dir = await scratchFor(t)
  await apply(layer(['lib/', 'lib/a']), dir)
  await apply(
    writeTar([
      { header: { name: 'b', typeflag: TYPE.LINK, linkname: 'lib/a', mode: 0o644 } },
      { header: { name: '.wh..wh.plnk/123', mode: 0o600 }, body: Buffer.from('stored') },
      { header: { name: 'c', typeflag: TYPE.LINK, linkname: '/.wh..wh.plnk/123' } },
    ]),
    dir,
  )
  assert.equal(statSync(join(dir, 'b')).ino, statSync(join(dir, 'lib/a')).ino)
  assert.equal(readFileSync(join(dir, 'c'), 'utf8'), 'stored')
  assert.equal(statSync(join(dir, 'c')).mode & 0o777, 0o600) // the stored file's header
  assert.deepEqual(tree(dir), ['b', 'c', 'lib/', 'lib/a']) // the link store is gone
})

test(
  'ids are remapped; an unmapped id fails with ARCHIVE_UNMAPPED_ID',
  { skip: !isRoot && 'chown needs root' },
  async (t) => {
    const dir = await scratchFor(t)
    await apply(
      writeTar([{ header: { name: 'a/b', mode: 0o644, uid: 5, gid: 7 }, body: Buffer.from('b') }]),
      dir,
      { idMappings },
    )
    const b = statSync(join(dir, 'a/b'))
    assert.deepEqual([b.uid, b.gid], [100_005, 200_007])
    const implied = statSync(join(dir, 'a'))
    assert.deepEqual([implied.uid, implied.gid, implied.mode & 0o7777], [100_000, 200_000, 0o755])
    await assert.rejects(
      apply(writeTar([{ header: { name: 'c', uid: 70_000 }, body: Buffer.from('') }]), dir, {
        idMappings,
      }),
      { code: 'ARCHIVE_UNMAPPED_ID' },
    )
  },
)

test(
  'overlay form refuses overlay metadata xattrs from the tar, with a warning',
  { skip: !isRoot && 'trusted xattrs need root' },
  async (t) => {
    const dir = await scratchFor(t)
    const warnings: string[] = []
    await apply(
      writeTar([
        {
          header: {
            name: 'd/',
            typeflag: TYPE.DIR,
            mode: 0o755,
            pax: new Map([
              ['SCHILY.xattr.trusted.overlay.redirect', '/etc'],
              ['SCHILY.xattr.user.ok', 'v'],
            ]),
          },
        },
      ]),
      dir,
      { whiteoutFormat: 'overlay', onWarning: (code) => warnings.push(code) },
    )
    assert.equal(sys.lgetxattr(join(dir, 'd'), 'trusted.overlay.redirect'), undefined)
    assert.deepEqual(sys.lgetxattr(join(dir, 'd'), 'user.ok'), Buffer.from('v'))
    assert.deepEqual(warnings, ['ARCHIVE_XATTR_SKIPPED'])
  },
)

test(
  "an overlay whiteout device takes its entry's owner through the id maps; without chown, none is needed",
  { skip: !isRoot && 'mknod and chown need root' },
  async (t) => {
    const dir = await scratchFor(t)
    const whiteout = (name: string, uid: number, gid: number) =>
      writeTar([{ header: { name, mode: 0o600, uid, gid }, body: Buffer.alloc(0) }])
    const overlay = { whiteoutFormat: 'overlay' as const, idMappings }
    await apply(whiteout('.wh.gone', 3, 4), dir, overlay)
    const dev = lstatSync(join(dir, 'gone'))
    assert.ok(dev.isCharacterDevice())
    assert.deepEqual([dev.rdev, dev.uid, dev.gid], [0, 100_003, 200_004])
    await assert.rejects(apply(whiteout('.wh.other', 70_000, 0), dir, overlay), {
      code: 'ARCHIVE_UNMAPPED_ID',
    })
    // Nothing is chowned: an id the maps do not cover is no error, as for any other entry.
    await apply(whiteout('.wh.other', 70_000, 0), dir, { ...overlay, noLchown: true })
    assert.ok(lstatSync(join(dir, 'other')).isCharacterDevice())
  },
)

test('a failed apply closes its file and names the entry', async (t) => {
  const dir = await scratchFor(t)
  writeFileSync(join(dir, 'file'), 'not a dir')
  await assert.rejects(
    apply(layer(['file/child']), dir),
    (err: Error & { code?: string; entry?: string }) => {
      assert.equal(err.code, 'ARCHIVE_INVALID_ENTRY')
      assert.equal(err.entry, 'file/child')
      return true
    },
  )
})

test(
  'a file in a setgid directory still gets the group its header names',
  { skip: !isRoot && 'chown needs root' },
  async (t) => {
    const dir = await scratchFor(t)
    await apply(
      writeTar([
        { header: { name: 'g/', typeflag: TYPE.DIR, mode: 0o2775, gid: 1234 } },
        { header: { name: 'g/root-file', mode: 0o644, uid: 0, gid: 0 }, body: Buffer.from('r') },
        { header: { name: 'g/sub/implied-parent', mode: 0o644 }, body: Buffer.from('i') },
      ]),
      dir,
    )
    assert.equal(statSync(join(dir, 'g')).gid, 1234)
    assert.equal(statSync(join(dir, 'g/root-file')).gid, 0)
    assert.equal(statSync(join(dir, 'g/sub')).gid, 0) // implied parents belong to root
    assert.equal(statSync(join(dir, 'g/sub/implied-parent')).gid, 0)
  },
)

test(
  'a directory gets exactly the mode and owner its header names, whatever its parent and the umask pass on',
  { skip: !isRoot && 'chown needs root' },
  async (t) => {
    const dir = await scratchFor(t)
    const d = (name: string, mode: number, gid = 0): TarWriteEntry => ({
      header: { name, typeflag: TYPE.DIR, mode, gid },
    })
    await apply(
      writeTar([
        d('g/', 0o2775, 1234),
        d('g/plain/', 0o755), // would inherit setgid and group 1234
        d('g/same-group/', 0o750, 1234), // would inherit setgid: group already right
        d('g/kept/', 0o2700, 1234),
        d('open/', 0o777), // the umask would take group and other write
        d('open/sticky/', 0o1777),
        { header: { name: 'g/plain/f', mode: 0o644, gid: 0 }, body: Buffer.from('f') },
        { header: { name: 'g/kept/f', mode: 0o644, gid: 1234 }, body: Buffer.from('f') },
      ]),
      dir,
    )
    const stat = (name: string): [string, number] => {
      const st = statSync(join(dir, name))
      return [(st.mode & 0o7777).toString(8), st.gid]
    }
    assert.deepEqual(stat('g'), ['2775', 1234])
    assert.deepEqual(stat('g/plain'), ['755', 0])
    assert.deepEqual(stat('g/same-group'), ['750', 1234])
    assert.deepEqual(stat('g/kept'), ['2700', 1234])
    assert.deepEqual(stat('open'), ['777', 0])
    assert.deepEqual(stat('open/sticky'), ['1777', 0])
    assert.deepEqual(stat('g/plain/f'), ['644', 0])
    assert.deepEqual(stat('g/kept/f'), ['644', 1234])
  },
)

test('an entry named as a directory its predecessors implied replaces or updates it, as in Docker', async (t) => {
  for (const [second, mode] of [
    [{ header: { name: 'a/b/', typeflag: TYPE.DIR, mode: 0o700 } }, 0o40700],
    [{ header: { name: 'a/b', mode: 0o600 }, body: Buffer.from('x') }, 0o100600],
  ] as const) {
    const dir = await scratchFor(t)
    await apply(
      writeTar([
        { header: { name: 'a/', typeflag: TYPE.DIR, mode: 0o755 } },
        { header: { name: 'a/b/c', mode: 0o644 }, body: Buffer.from('c') }, // implies a/b/
        second,
      ]),
      dir,
    )
    assert.equal(lstatSync(join(dir, 'a/b')).mode, mode, second.header.name)
  }
})

test('files created in the background keep the archive order', async (t) => {
  const files = (prefix: string, n: number): TarWriteEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      header: { name: `${prefix}/f${i}`, mode: 0o644 },
      body: Buffer.from(`${prefix} ${i}`),
    }))
  /** `entries` applied to a scratch directory, which it gives back. */
  const applied = async (t: TestContext, entries: TarWriteEntry[]): Promise<string> => {
    const dir = await scratchFor(t)
    await apply(writeTar(entries), dir)
    return dir
  }
  await t.test('a name given twice: the last entry wins', async (t) => {
    const dir = await applied(t, [
      ...files('d', 50),
      { header: { name: 'd/f7', mode: 0o600 }, body: Buffer.from('second') },
    ])
    assert.equal(readFileSync(join(dir, 'd/f7'), 'utf8'), 'second')
    assert.equal(statSync(join(dir, 'd/f7')).mode & 0o777, 0o600)
  })
  await t.test('a file, then a name below it: not a directory', async (t) => {
    await assert.rejects(
      applied(t, [...files('d', 20), { header: { name: 'd/f3/x' }, body: Buffer.from('') }]),
      { code: 'ARCHIVE_INVALID_ENTRY' },
    )
  })
  await t.test('a directory of files in flight, replaced by a file, then whited out', async (t) => {
    const dir = await applied(t, [
      ...files('d', 100),
      { header: { name: 'd', mode: 0o644 }, body: Buffer.from('now a file') },
      ...files('e', 100),
      { header: { name: '.wh.e', mode: 0o644 }, body: Buffer.from('') },
      { header: { name: 'l', typeflag: TYPE.LINK, linkname: 'd' } },
    ])
    assert.deepEqual(tree(dir), ['d', 'l'])
    assert.equal(statSync(join(dir, 'l')).ino, statSync(join(dir, 'd')).ino)
  })
})
