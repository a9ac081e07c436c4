import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import {
  appendFileSync,
  chmodSync,
  chownSync,
  closeSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { hasCode } from '../errors.js'
import { sys, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { readTar, TYPE, type TarHeader } from '../tar/index.js'
import { changes } from './changes.js'
import { exportChanges, exportTree } from './export-changes.js'
import type { Change } from './types.js'
import { CAP_V2, CAP_V3 } from '../testing/capabilities.js'

const isRoot = process.getuid?.() === 0
const needsRoot = { skip: !isRoot && 'needs root (mknod, chown, trusted.* and security.* xattrs)' }

const MTIME = 1_600_000_000

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-export-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Sets a node's times (never following a symlink): exports must not depend on when tests run. */
const stamp = (p: string | Buffer, nsec = 750_000_000): void =>
  sys.lutimens(p, MTIME, 0, MTIME, nsec)

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of source) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

interface Entry {
  readonly header: TarHeader
  readonly body: Buffer
}

async function parse(tar: Buffer): Promise<Entry[]> {
  const out: Entry[] = []
  for await (const e of readTar(Readable.from([tar])))
    out.push({ header: e.header, body: await collect(e.body) })
  return out
}

const names = (es: Entry[]): string[] => es.map((e) => e.header.name)
const byName = (es: Entry[], name: string): TarHeader => {
  const e = es.find((x) => x.header.name === name)
  assert.ok(e, `no entry ${name} in ${names(es).join(' ')}`)
  return e.header
}
const change = (path: string, kind: Change['kind']): Change => ({
  path,
  pathRaw: Buffer.from(path),
  kind,
})

/** One node of each kind, all stamped. */
function richTree(root: string): void {
  mkdirSync(join(root, 'etc/sub'), { recursive: true })
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n')
  chmodSync(join(root, 'etc/hosts'), 0o4755)
  writeFileSync(join(root, 'etc/empty'), '')
  symlinkSync('../etc/hosts', join(root, 'etc/link'))
  writeFileSync(join(root, 'data'), Buffer.alloc(3000, 7))
  linkSync(join(root, 'data'), join(root, 'etc/sub/data-again'))
  if (isRoot) {
    sys.mknod(join(root, 'etc/null'), S_IFCHR | 0o666, 1, 3)
    sys.mknod(join(root, 'etc/fifo'), S_IFIFO | 0o600, 0, 0)
    chownSync(join(root, 'etc/empty'), 1234, 5678)
  }
  // Modes explicitly: the umask must not matter.
  for (const [p, mode] of [
    ['etc', 0o755],
    ['etc/sub', 0o755],
    ['etc/empty', 0o644],
    ['data', 0o644],
    ...(isRoot ? [['etc/null', 0o666] as const] : []),
  ] as const)
    chmodSync(join(root, p), mode)
  for (const p of ['etc/sub', 'etc/hosts', 'etc/empty', 'etc/link', 'data', 'etc', '.'])
    stamp(join(root, p))
  if (isRoot) for (const p of ['etc/null', 'etc/fifo']) stamp(join(root, p))
}

test(
  'exportChanges writes each kind of node from lstat, deletions as whiteouts at the epoch',
  needsRoot,
  async (t) => {
    const dir = scratch(t)
    richTree(dir)
    const cs = [
      ...(await changes(dir)).filter((c) => c.path !== '/etc/sub'),
      change('/etc/old', 'D'),
      change('/gone', 'D'),
    ]
    const es = await parse(await collect(exportChanges(dir, cs)))
    // Sorted by the changes' paths (`/etc/old` < `/etc/sub/...` < `/gone`), as Docker does.
    assert.deepEqual(names(es), [
      'data',
      'etc/',
      'etc/empty',
      'etc/fifo',
      'etc/hosts',
      'etc/link',
      'etc/null',
      'etc/.wh.old',
      'etc/sub/data-again',
      '.wh.gone',
    ])
    const common = { uname: '', gname: '', mtimeNsec: 0, atime: undefined, ctime: undefined }
    const pick = (h: TarHeader) => ({
      typeflag: String.fromCharCode(h.typeflag),
      mode: h.mode.toString(8),
      ids: [h.uid, h.gid],
      size: h.size,
      mtime: h.mtime,
      link: h.linkname,
      dev: [h.devmajor, h.devminor],
    })
    const want = (typeflag: string, mode: number, more: object = {}) => ({
      typeflag,
      mode: mode.toString(8),
      ids: [0, 0],
      size: 0,
      mtime: MTIME, // whole seconds: the .75 s are cut
      link: '',
      dev: [0, 0],
      ...more,
    })
    for (const e of es) {
      const h = e.header
      assert.deepEqual(
        { uname: h.uname, gname: h.gname, mtimeNsec: h.mtimeNsec, atime: h.atime, ctime: h.ctime },
        common,
        h.name,
      )
      assert.equal(h.xattrs, undefined, h.name)
    }
    const got = Object.fromEntries(es.map((e) => [e.header.name, pick(e.header)]))
    assert.deepEqual(got, {
      '.wh.gone': want('0', 0, { mtime: 0 }),
      data: want('0', 0o644, { size: 3000 }),
      'etc/': want('5', 0o755),
      'etc/.wh.old': want('0', 0, { mtime: 0 }),
      'etc/empty': want('0', 0o644, { ids: [1234, 5678] }),
      'etc/fifo': want('6', 0o600),
      'etc/hosts': want('0', 0o4755, { size: 20 }),
      'etc/link': want('2', 0o777, { link: '../etc/hosts' }),
      'etc/null': want('3', 0o666, { dev: [1, 3] }),
      // The first name of a hard-linked inode within this export holds the data.
      'etc/sub/data-again': want('1', 0o644, { link: 'data' }),
    })
    assert.deepEqual(es[0]!.body, Buffer.alloc(3000, 7))
    assert.equal(es[8]!.body.length, 0)

    // Only the second name exported: it is the first one seen, so a regular file.
    const alone = await parse(
      await collect(exportChanges(dir, [change('/etc/sub/data-again', 'A')])),
    )
    assert.deepEqual(pick(alone[0]!.header), want('0', 0o644, { size: 3000 }))
  },
)

test('exportChanges sorts by path bytes and exportTree walks as Docker does; same entries', async (t) => {
  const dir = scratch(t)
  for (const d of ['a', 'a.c', 'x']) mkdirSync(join(dir, d))
  for (const f of ['a/x', 'a-b', 'a.c/y', 'B']) writeFileSync(join(dir, f), f)
  const fromChanges = await parse(await collect(exportChanges(dir, await changes(dir))))
  const fromTree = await parse(await collect(exportTree(dir)))
  assert.deepEqual(names(fromChanges), ['B', 'a/', 'a-b', 'a.c/', 'a.c/y', 'a/x', 'x/'])
  assert.deepEqual(names(fromTree), ['B', 'a/', 'a/x', 'a-b', 'a.c/', 'a.c/y', 'x/'])
  const key = (e: Entry): string => `${e.header.name} ${e.header.mode} ${e.body.toString()}`
  assert.deepEqual(fromTree.map(key).sort(), fromChanges.map(key).sort())
})

test('exportChanges writes names that are not UTF-8 byte for byte, whiteouts too', async (t) => {
  const dir = scratch(t)
  const raw = Buffer.from([0x66, 0xff, 0x2e, 0x74]) // "f\xff.t"
  writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), raw]), 'data')
  const added = (await changes(dir))[0]!
  const gone: Change = {
    path: '',
    pathRaw: Buffer.concat([Buffer.from('/'), raw, Buffer.from('/z\xfe', 'latin1')]),
    kind: 'D',
  }
  const es = await parse(await collect(exportChanges(dir, [gone, added])))
  assert.deepEqual(
    es.map((e) => e.header.nameRaw),
    [raw, Buffer.concat([raw, Buffer.from('/.wh.z\xfe', 'latin1')])],
  )
  assert.equal(es[0]!.body.toString(), 'data')
})

test(
  'exportTree records security.capability only, a v3 value downgraded to v2',
  needsRoot,
  async (t) => {
    const dir = scratch(t)
    for (const f of ['v2', 'v3', 'plain']) writeFileSync(join(dir, f), f)
    sys.lsetxattr(join(dir, 'v2'), 'security.capability', CAP_V2)
    sys.lsetxattr(join(dir, 'v3'), 'security.capability', CAP_V3)
    sys.lsetxattr(join(dir, 'plain'), 'user.note', Buffer.from('not exported'))
    sys.lsetxattr(join(dir, 'plain'), 'trusted.overlay.opaque', Buffer.from('y'))
    const es = await parse(await collect(exportTree(dir)))
    const caps = Object.fromEntries(
      es.map((e) => [e.header.name, [...(e.header.xattrs ?? [])].map(([k, v]) => [k, v])]),
    )
    const v2FromV3 = Buffer.from(CAP_V3.subarray(0, 20))
    v2FromV3[3] = 2
    assert.deepEqual(v2FromV3, CAP_V2)
    assert.deepEqual(caps, {
      plain: [],
      v2: [['security.capability', CAP_V2]],
      v3: [['security.capability', CAP_V2]],
    })
  },
)

test(
  'exportTree with the overlay format writes AUFS whiteouts for 0/0 devices and opaque directories',
  needsRoot,
  async (t) => {
    const dir = scratch(t)
    mkdirSync(join(dir, 'opaque'), 0o750)
    chmodSync(join(dir, 'opaque'), 0o2750)
    chownSync(join(dir, 'opaque'), 7, 8)
    sys.lsetxattr(join(dir, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'))
    mkdirSync(join(dir, 'notopaque'))
    sys.lsetxattr(join(dir, 'notopaque'), 'trusted.overlay.opaque', Buffer.from('n'))
    sys.mknod(join(dir, 'opaque/wo'), S_IFCHR, 0, 0)
    chownSync(join(dir, 'opaque/wo'), 1000, 1001)
    // Kernels since 5.8 hard-link whiteouts to one inode: each stays its own whiteout.
    linkSync(join(dir, 'opaque/wo'), join(dir, 'notopaque/wo2'))
    sys.mknod(join(dir, 'notopaque/dev'), S_IFCHR | 0o600, 0, 1)
    for (const p of ['opaque/wo', 'notopaque/dev', 'notopaque', 'opaque']) stamp(join(dir, p))

    const overlay = await parse(await collect(exportTree(dir, { whiteoutFormat: 'overlay' })))
    // Docker's walk order: by the names on disk (`dev` < `wo2`), not the names written.
    assert.deepEqual(names(overlay), [
      'notopaque/',
      'notopaque/dev',
      'notopaque/.wh.wo2',
      'opaque/',
      'opaque/.wh..wh..opq',
      'opaque/.wh.wo',
    ])
    const h = (n: string) => {
      const x = byName(overlay, n)
      return [String.fromCharCode(x.typeflag), x.mode.toString(8), x.uid, x.gid, x.size, x.mtime]
    }
    assert.deepEqual(h('opaque/'), ['5', '2750', 7, 8, 0, MTIME])
    assert.deepEqual(h('opaque/.wh..wh..opq'), ['0', '750', 7, 8, 0, 0])
    assert.deepEqual(h('opaque/.wh.wo'), ['0', '600', 1000, 1001, 0, MTIME])
    assert.deepEqual(h('notopaque/.wh.wo2'), ['0', '600', 1000, 1001, 0, MTIME])
    assert.deepEqual(h('notopaque/dev'), ['3', '600', 0, 0, 0, MTIME])
    assert.ok(overlay.every((e) => e.header.xattrs === undefined && e.header.linkname === ''))

    // The AUFS format takes the directory as it is.
    const aufs = await parse(await collect(exportTree(dir)))
    assert.deepEqual(names(aufs), [
      'notopaque/',
      'notopaque/dev',
      'notopaque/wo2',
      'opaque/',
      'opaque/wo',
    ])
    assert.equal(byName(aufs, 'notopaque/wo2').typeflag, TYPE.CHAR)
    assert.equal(byName(aufs, 'opaque/wo').typeflag, TYPE.LINK)
  },
)

test(
  'overlay round trip archive (SPEC §7.8): exactly the AUFS entries, no devices, no PAX records',
  needsRoot,
  async (t) => {
    const dir = scratch(t)
    for (const [d, mode] of [
      ['d1', 0o700],
      ['d2', 0o750],
    ] as const) {
      mkdirSync(join(dir, d))
      chmodSync(join(dir, d), mode)
      sys.lsetxattr(join(dir, d), 'trusted.overlay.opaque', Buffer.from('y'))
      writeFileSync(join(dir, d, 'f1'), '')
      chmodSync(join(dir, d, 'f1'), 0o644)
    }
    mkdirSync(join(dir, 'd3'))
    chmodSync(join(dir, 'd3'), 0o755)
    sys.mknod(join(dir, 'd3/f1'), S_IFCHR, 0, 0)
    const tar = await collect(exportTree(dir, { whiteoutFormat: 'overlay' }))
    const es = await parse(tar)
    assert.deepEqual(names(es), [
      'd1/',
      'd1/.wh..wh..opq',
      'd1/f1',
      'd2/',
      'd2/.wh..wh..opq',
      'd2/f1',
      'd3/',
      'd3/.wh.f1',
    ])
    const modes = es.map((e) => [String.fromCharCode(e.header.typeflag), e.header.mode.toString(8)])
    assert.deepEqual(modes, [
      ['5', '700'],
      ['0', '700'],
      ['0', '644'],
      ['5', '750'],
      ['0', '750'],
      ['0', '644'],
      ['5', '755'],
      ['0', '600'],
    ])
    assert.ok(es.every((e) => e.header.pax === undefined))
    // No `x` header anywhere: 8 entries of one block each, then the end-of-archive blocks.
    assert.equal(tar.length, 10 * 512)
  },
)

test('exports are deterministic: the same tree gives the same bytes', needsRoot, async (t) => {
  const dir = scratch(t)
  richTree(dir)
  sys.lsetxattr(join(dir, 'data'), 'security.capability', CAP_V3)
  const cs = [...(await changes(dir)), change('/etc/deleted', 'D')]
  const first = await collect(exportChanges(dir, cs))
  await new Promise((resolve) => setTimeout(resolve, 1100)) // whiteouts must not take the clock
  const second = await collect(exportChanges(dir, [...cs].reverse()))
  assert.ok(first.equals(second))
  assert.ok((await collect(exportTree(dir))).equals(await collect(exportTree(dir))))
})

test('GNU tar reads an export: names, types, hard links, whiteouts', needsRoot, async (t) => {
  const dir = scratch(t)
  richTree(dir)
  const file = join(scratch(t), 'layer.tar')
  const cs = [...(await changes(dir)), change('/etc/deleted', 'D')]
  writeFileSync(file, await collect(exportChanges(dir, cs)))
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', file], {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
  })
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  const tail = (l: string): string => l.replace(/^\S+ +\S+ +\S+ +\S+ +\S+ +/, '')
  assert.deepEqual(lines.map(tail), [
    'data',
    'etc/',
    'etc/.wh.deleted',
    'etc/empty',
    'etc/fifo',
    'etc/hosts',
    'etc/link -> ../etc/hosts',
    'etc/null',
    'etc/sub/',
    'etc/sub/data-again link to data',
  ])
  assert.match(lines[0]!, /^-rw-r--r-- 0\/0 +3000 2020-09-13 12:26 data$/)
  assert.match(lines[2]!, /^---------- 0\/0 +0 1970-01-01 /)
  assert.match(lines[3]!, /^-rw-r--r-- 1234\/5678 /)
  assert.match(lines[4]!, /^prw------- /)
  assert.match(lines[5]!, /^-rwsr-xr-x /)
  assert.match(lines[7]!, /^crw-rw-rw- 0\/0 +1,3 /)
})

/** Reads an export to its end; resolves to the error it fails with. */
async function failure(stream: AsyncIterable<Uint8Array>): Promise<unknown> {
  try {
    for await (const _ of stream) void _
  } catch (err) {
    return err
  }
  assert.fail('the export did not fail')
}

test('a file gone since changes() fails the export with ARCHIVE_EXPORT_FAILED', async (t) => {
  const dir = scratch(t)
  writeFileSync(join(dir, 'a'), 'a')
  writeFileSync(join(dir, 'b'), 'b')
  const cs = await changes(dir)
  unlinkSync(join(dir, 'b'))
  const err = await failure(exportChanges(dir, cs))
  assert.ok(hasCode(err, 'ARCHIVE_EXPORT_FAILED'), String(err))
  assert.equal((err as { path?: string }).path, '/b')
  assert.equal(((err as Error).cause as NodeJS.ErrnoException).code, 'ENOENT')
})

test('a file that changes size while it is exported fails the export', async (t) => {
  const dir = scratch(t)
  const big = join(dir, 'big')
  for (const [what, alter] of [
    ['shrinks', () => truncateSync(big, 1 << 20)],
    ['grows', () => appendFileSync(big, 'more')],
  ] as const) {
    writeFileSync(big, Buffer.alloc(3 << 20, 1))
    let changed = false
    const seen = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of exportTree(dir)) {
        if (!changed) {
          alter()
          changed = true
        }
        yield chunk
      }
    }
    const err = await failure(seen())
    assert.ok(hasCode(err, 'ARCHIVE_EXPORT_FAILED'), `${what}: ${String(err)}`)
    assert.match((err as Error).message, /changed size/)
  }
})

test('a large file is streamed: a sparse 1 GiB file passes with flat memory', async (t) => {
  const dir = scratch(t)
  const fd = openSync(join(dir, 'huge'), 'w')
  ftruncateSync(fd, 1 << 30)
  closeSync(fd)
  const before = process.memoryUsage().rss
  let peak = before
  let bytes = 0
  let n = 0
  const stream: AsyncIterable<Uint8Array> = exportTree(dir)
  for await (const chunk of stream) {
    bytes += chunk.length
    if (++n % 64 === 0) peak = Math.max(peak, process.memoryUsage().rss)
  }
  assert.equal(bytes, 512 + (1 << 30) + 1024)
  assert.ok(peak - before < 96 << 20, `RSS grew by ${(peak - before) >> 20} MiB`)
})

test('sockets are left out; an aborted export stops; bad change paths throw', async (t) => {
  const dir = scratch(t)
  writeFileSync(join(dir, 'f'), 'f')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(join(dir, 'sock'), resolve))
  t.after(() => server.close())
  assert.deepEqual(names(await parse(await collect(exportTree(dir)))), ['f'])

  const ac = new AbortController()
  const stream = exportChanges(dir, [change('/f', 'A')], { signal: ac.signal })
  ac.abort()
  const err = await failure(stream)
  assert.equal((err as Error).name, 'AbortError')

  for (const p of ['f', '/', '/a/../b', '/a//b', '/./a'])
    assert.throws(() => exportChanges(dir, [change(p, 'A')]), TypeError, p)
})
