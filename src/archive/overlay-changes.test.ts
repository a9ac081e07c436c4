/**
 * overlayChanges(upper, lowers) against the truth it stands for: changes(merged, lowerMerged)
 * over real overlayfs mounts. Lower layers are plain directories (with whiteouts as 0/0
 * character devices and opaque directories by xattr, as overlay2 keeps them); the writes go
 * through the read-write mount, so the upper directory holds what the kernel makes of them
 * (copy-ups, whiteouts, opaque directories). Both mounts are up while changes() walks them;
 * overlayChanges runs on the upper directory after they are unmounted.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { sys, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { overlayUnsupported } from '../testing/overlay-mount.js'
import { changes } from './changes.js'
import { ArchiveIoError } from './errors.js'
import { overlayChanges } from './overlay-changes.js'
import type { Change } from './types.js'
import { CAP_V2, CAP_V3 } from '../testing/capabilities.js'

const unsupported = overlayUnsupported()
const needsOverlay = { skip: unsupported ?? false }

const CAPABILITY = 'security.capability'
const OPAQUE = 'trusted.overlay.opaque'

const show = (cs: readonly Change[]): string[] => cs.map((c) => `${c.kind} ${c.path}`)

// ---- lower layers ---------------------------------------------------------------------------

/** What a lower layer holds at a path; parents are made as plain 0755 directories. */
type Entry =
  | string // a file with this content
  | { dir: true; opaque?: boolean; mode?: number }
  | { whiteout: true }
  | { symlink: string }
  | { char: readonly [number, number] }
  | { fifo: true }
  | { file: string; mode?: number; uid?: number; cap?: Buffer }

const T = 1_600_000_000

function stamp(p: string, nsec = 500_000_000): void {
  sys.lutimens(p, T, nsec, T, nsec)
}

/** Writes `spec` into layer directory `root` (in insertion order, parents first). */
function layer(root: string, spec: Record<string, Entry>): void {
  mkdirSync(root, { recursive: true })
  for (const [name, e] of Object.entries(spec)) {
    const p = join(root, name)
    mkdirSync(dirname(p), { recursive: true })
    if (typeof e === 'string') writeFileSync(p, e)
    else if ('dir' in e) {
      mkdirSync(p, { recursive: true })
      if (e.mode !== undefined) chmodSync(p, e.mode)
      if (e.opaque === true) sys.lsetxattr(p, OPAQUE, Buffer.from('y'))
    } else if ('whiteout' in e) sys.mknod(p, S_IFCHR, 0, 0)
    else if ('symlink' in e) symlinkSync(e.symlink, p)
    else if ('char' in e) sys.mknod(p, S_IFCHR | 0o600, e.char[0], e.char[1])
    else if ('fifo' in e) sys.mknod(p, S_IFIFO | 0o644, 0, 0)
    else {
      writeFileSync(p, e.file)
      if (e.uid !== undefined) lchownSync(p, e.uid, e.uid)
      if (e.mode !== undefined) chmodSync(p, e.mode)
      if (e.cap !== undefined) sys.lsetxattr(p, CAPABILITY, e.cap)
    }
    if (typeof e === 'string' || 'file' in e || 'symlink' in e) stamp(p)
  }
}

// ---- mounts ---------------------------------------------------------------------------------

interface Stack {
  readonly lowers: string[] // top first
  readonly upper: string
  /** The read-write overlay: writes go through it. */
  readonly merged: string
  /** The read-only overlay of the lowers alone. */
  readonly lowerMerged: string
  unmount(): void
  remove(): void
}

function mount(options: string, dir: string): void {
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', options, dir])
}

/** Lower layers from `specs` (top first), an empty upper, both overlays mounted. */
function stack(
  specs: readonly Record<string, Entry>[],
  prepareUpper?: (upper: string) => void,
  parent = tmpdir(),
): Stack {
  const dir = mkdtempSync(join(parent, 'layerstore-ovl-changes-'))
  const lowers = specs.map((spec, i) => {
    const d = join(dir, `l${i}`)
    layer(d, spec)
    return d
  })
  const upper = join(dir, 'upper')
  const work = join(dir, 'work')
  const merged = join(dir, 'merged')
  const lowerMerged = join(dir, 'lower-merged')
  for (const d of [upper, work, merged, lowerMerged]) mkdirSync(d)
  prepareUpper?.(upper)
  const mounted: string[] = []
  const unmount = (): void => {
    while (mounted.length > 0) execFileSync('umount', [mounted.pop()!])
  }
  try {
    mount(`lowerdir=${lowers.join(':')}`, lowerMerged)
    mounted.push(lowerMerged)
    mount(`lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`, merged)
    mounted.push(merged)
  } catch (err) {
    unmount()
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    lowers,
    upper,
    merged,
    lowerMerged,
    unmount,
    remove: () => {
      unmount() // never remove through a mount
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

function stackFor(
  t: TestContext,
  specs: readonly Record<string, Entry>[],
  prepareUpper?: (upper: string) => void,
): Stack {
  const s = stack(specs, prepareUpper)
  t.after(() => s.remove())
  return s
}

/** changes() over the mounts, then overlayChanges() on the unmounted upper: they agree. */
async function assertSame(s: Stack): Promise<Change[]> {
  const expected = await changes(s.merged, s.lowerMerged)
  s.unmount()
  const got = await overlayChanges(s.upper, s.lowers)
  assert.deepEqual(show(got), show(expected))
  assert.deepEqual(got, expected)
  return got
}

// ---- hand-picked writes ---------------------------------------------------------------------

const BOTTOM: Record<string, Entry> = {
  'etc/passwd': 'root:x:0:0\n',
  'etc/group': 'root:x:0:\n',
  'etc/hosts': '127.0.0.1 localhost\n',
  'etc/same': 'unchanged\n',
  'usr/bin/ls': { file: 'ELF ls', mode: 0o755 },
  'usr/bin/cat': { file: 'ELF cat', mode: 0o755 },
  'usr/bin/ping': { file: 'ELF ping', mode: 0o755, cap: CAP_V3 },
  'usr/bin/tool': { file: 'ELF tool', mode: 0o755 },
  'var/log/a.log': 'a\n',
  'var/log/b.log': 'b\n',
  'var/log/c.log': 'c\n',
  'opt/tree/x/y/z': 'deep',
  'opt/tree/w': 'w',
  'data/f1': 'one',
  'data/f2': 'two',
  'data/sub/f3': 'three',
  'again/old1': 'old',
  'again/sub/old2': 'old',
  'dir-to-file/a': 'a',
  'dir-to-file/b/c': 'c',
  'file-to-dir': 'file',
  'rename-src': 'moving',
  'dev/null': { char: [1, 3] },
  'run/fifo': { fifo: true },
  'link-to-passwd': { symlink: 'etc/passwd' },
  'hidden-by-l0/f': 'f',
  'sandwich/bottom-only': 'b', // below a file of the middle layer: not merged
  'etc/conf.d/b': 'b', // below an opaque directory of the middle layer
}

const MIDDLE: Record<string, Entry> = {
  'etc/hosts': '127.0.0.1 localhost middle\n',
  'var/log/b.log': { whiteout: true },
  'opt/tree': { dir: true, opaque: true }, // hides x/y/z and w below
  'opt/tree/m': 'middle',
  'data/f2': { whiteout: true },
  'lib/libc.so': 'libc',
  'lib/mode-dir': { dir: true, mode: 0o700 },
  'lib/mode-dir/in': 'in',
  'usr/bin/tool': { whiteout: true },
  sandwich: 'a file between two directories',
  'etc/conf.d': { dir: true, opaque: true },
  'etc/conf.d/m': 'm',
}

const TOP: Record<string, Entry> = {
  'etc/motd': 'hello\n',
  'usr/bin/cat': { symlink: 'ls' },
  'usr/bin/tool': { dir: true }, // over a whiteout: hides the bottom's file
  'usr/bin/tool/part': 'part',
  'hidden-by-l0': { whiteout: true },
  srv: { dir: true, opaque: true }, // one layer, opaque: the kernel lists its whiteouts
  'srv/keep': 'keep',
  'srv/ghost': { whiteout: true }, // hides nothing
  nowhere: { whiteout: true }, // hides nothing, in the merged root
  'sandwich/top-only': 't',
}

test(
  'overlayChanges() matches changes() over the mounts for everyday container writes',
  needsOverlay,
  async (t) => {
    const s = stackFor(t, [TOP, MIDDLE, BOTTOM])
    const m = (p: string): string => join(s.merged, p)
    writeFileSync(m('etc/new'), 'created') // create
    mkdirSync(m('newdir/sub'), { recursive: true }) // an added tree
    writeFileSync(m('newdir/sub/file'), 'x')
    writeFileSync(m('etc/passwd'), 'root:x:0:0\nuser:x:1000:1000\n') // modify content
    chmodSync(m('etc/group'), 0o600) // chmod
    lchownSync(m('usr/bin/ls'), 1000, 1000) // chown
    truncateSync(m('var/log/a.log'), 0) // truncate
    rmSync(m('etc/hosts')) // delete a file (its layer is the middle one)
    rmSync(m('opt/tree'), { recursive: true }) // delete a tree merged from two layers
    rmSync(m('again'), { recursive: true }) // rmdir, then mkdir: opaque
    mkdirSync(m('again'))
    writeFileSync(m('again/new1'), 'new')
    rmSync(m('file-to-dir')) // a file replaced by a directory
    mkdirSync(m('file-to-dir'))
    writeFileSync(m('file-to-dir/inside'), 'i')
    rmSync(m('dir-to-file'), { recursive: true }) // a directory replaced by a file
    writeFileSync(m('dir-to-file'), 'now a file')
    symlinkSync('../etc/passwd', m('usr/bin/newlink')) // symlink
    linkSync(m('usr/bin/tool/part'), m('usr/bin/part-link')) // hard link to a lower file
    sys.lsetxattr(m('lib'), 'user.note', Buffer.from('x')) // an xattr changes() does not compare
    lchownSync(m('link-to-passwd'), 1000, 1000) // a symlink's owner
    sys.lsetxattr(m('data/f1'), CAPABILITY, CAP_V2) // setcap
    sys.lsetxattr(m('usr/bin/ping'), CAPABILITY, CAP_V3) // setcap, the same value: no change
    closeSync(openSync(m('etc/same'), 'r+')) // copied up, unchanged
    stamp(m('data/sub/f3')) // touched to the time it had: copied up, unchanged
    renameSync(m('rename-src'), m('data/rename-dst')) // rename of a lower file
    writeFileSync(m('srv/new'), 'n') // in the single-layer opaque directory with a whiteout
    rmSync(m('lib/mode-dir/in')) // emptied, not deleted
    writeFileSync(m('var/log/b.log'), 'b\n') // at a name a lower whiteout hides: new
    writeFileSync(m('sandwich/bottom-only'), 'b') // a name the merge does not reach: new
    writeFileSync(m('sandwich/top-only'), 't') // the same content, a new time
    writeFileSync(m('etc/conf.d/b'), 'b') // a name an opaque lower directory hides: new
    const got = await assertSame(s)
    // Not there: copied up but unchanged (/etc/same, /data/sub/f3, /usr/bin/tool/part, the
    // same capability on /usr/bin/ping), a whiteout hiding nothing (/srv/ghost).
    assert.deepEqual(show(got), [
      'C /again', // rmdir + mkdir: the kernel made it opaque, so its old children are gone
      'A /again/new1',
      'D /again/old1',
      'D /again/sub',
      'C /data',
      'C /data/f1',
      'A /data/rename-dst',
      'C /dir-to-file',
      'C /etc',
      'C /etc/conf.d',
      'A /etc/conf.d/b',
      'C /etc/group',
      'D /etc/hosts',
      'A /etc/new',
      'C /etc/passwd',
      'C /file-to-dir',
      'A /file-to-dir/inside',
      'C /lib',
      'C /lib/mode-dir',
      'D /lib/mode-dir/in',
      'C /link-to-passwd',
      'A /newdir',
      'A /newdir/sub',
      'A /newdir/sub/file',
      'C /opt',
      'D /opt/tree',
      'D /rename-src',
      'C /sandwich',
      'A /sandwich/bottom-only',
      'C /sandwich/top-only',
      'C /srv',
      'A /srv/new',
      'C /usr',
      'C /usr/bin',
      'C /usr/bin/ls',
      'A /usr/bin/newlink',
      'A /usr/bin/part-link',
      'C /var',
      'C /var/log',
      'C /var/log/a.log',
      'A /var/log/b.log',
    ])
  },
)

test(
  'overlayChanges() is empty when nothing was written, or only copy-ups that change nothing',
  needsOverlay,
  async (t) => {
    const s = stackFor(t, [TOP, MIDDLE, BOTTOM])
    assert.deepEqual(await changes(s.merged, s.lowerMerged), [])
    closeSync(openSync(join(s.merged, 'opt/tree/m'), 'r+'))
    lchownSync(join(s.merged, 'usr/bin/ls'), 0, 0)
    assert.deepEqual(readdirSync(join(s.upper, 'usr/bin')), ['ls'], 'copied up')
    assert.deepEqual(await assertSame(s), [])
  },
)

test(
  'the kernel ignores the opaque flag of a layer root, upper or lower; overlayChanges() too',
  needsOverlay,
  async (t) => {
    const top: Record<string, Entry> = { 'etc/motd': 'top' }
    const marked = (root: string): void => sys.lsetxattr(root, OPAQUE, Buffer.from('y'))
    const s = stackFor(t, [top, BOTTOM], (upper) => {
      marked(upper)
      marked(join(dirname(upper), 'l0'))
    })
    assert.ok(lstatSync(join(s.merged, 'etc/passwd')).isFile(), 'the bottom layer shows through')
    assert.ok(
      lstatSync(join(s.lowerMerged, 'etc/passwd')).isFile(),
      'the bottom layer shows through',
    )
    writeFileSync(join(s.merged, 'etc/motd'), 'changed')
    rmSync(join(s.merged, 'etc/group'))
    assert.deepEqual(show(await assertSame(s)), ['C /etc', 'D /etc/group', 'C /etc/motd'])
  },
)

test(
  'whiteouts the kernel lists but does not show are reported by neither function',
  needsOverlay,
  async (t) => {
    // A directory overlayfs does not merge (one layer, or opaque) is read as it is on disk: its
    // whiteouts are listed, yet lstat finds nothing there.
    const top: Record<string, Entry> = {
      solo: { dir: true, opaque: true },
      'solo/ghost': { whiteout: true },
      'solo/f': 'f',
    }
    const s = stackFor(t, [top, BOTTOM], (upper) => {
      // An upper directory from an earlier mount, holding a whiteout of nothing.
      mkdirSync(join(upper, 'fresh'))
      sys.mknod(join(upper, 'fresh/ghost'), S_IFCHR, 0, 0)
    })
    assert.ok(readdirSync(join(s.lowerMerged, 'solo')).includes('ghost'))
    assert.equal(lstatSync(join(s.lowerMerged, 'solo/ghost'), { throwIfNoEntry: false }), undefined)
    assert.ok(readdirSync(join(s.merged, 'fresh')).includes('ghost'))
    writeFileSync(join(s.merged, 'solo/new'), 'n')
    assert.deepEqual(show(await assertSame(s)), ['A /fresh', 'C /solo', 'A /solo/new'])
  },
)

test(
  'overlayChanges() refuses a directory the kernel redirects (redirect_dir)',
  needsOverlay,
  async (t) => {
    const s = stackFor(t, [{ 'etc/motd': 'm' }, BOTTOM])
    s.unmount()
    const work = join(dirname(s.upper), 'work')
    mount(
      `lowerdir=${s.lowers.join(':')},upperdir=${s.upper},workdir=${work},redirect_dir=on`,
      s.merged,
    )
    try {
      renameSync(join(s.merged, 'data'), join(s.merged, 'moved')) // a merged directory, moved
    } finally {
      execFileSync('umount', [s.merged])
    }
    assert.ok(sys.lgetxattr(join(s.upper, 'moved'), 'trusted.overlay.redirect') !== undefined)
    await assert.rejects(overlayChanges(s.upper, s.lowers), (err: unknown) => {
      assert.ok(err instanceof ArchiveIoError)
      assert.equal(err.code, 'ARCHIVE_EXPORT_FAILED')
      assert.equal(err.path, '/moved')
      return true
    })
  },
)

test(
  'overlayChanges() fails like changes() on paths that are not directories',
  needsOverlay,
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'layerstore-ovl-changes-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'file'), '')
    mkdirSync(join(dir, 'upper'))
    await assert.rejects(overlayChanges(join(dir, 'upper'), [join(dir, 'file')]), TypeError)
    await assert.rejects(overlayChanges(join(dir, 'missing'), []), (err: unknown) => {
      assert.ok(err instanceof ArchiveIoError)
      assert.equal(err.code, 'ARCHIVE_EXPORT_FAILED')
      return true
    })
    // Without lowers the old tree is empty: everything in the upper is added, whiteouts aside.
    writeFileSync(join(dir, 'upper/f'), '')
    sys.mknod(join(dir, 'upper/w'), S_IFCHR, 0, 0)
    assert.deepEqual(show(await overlayChanges(join(dir, 'upper'), [])), ['A /f'])
  },
)

// ---- cost -----------------------------------------------------------------------------------

type SpiedFs = Record<'readdirSync' | 'lstatSync', (...args: unknown[]) => unknown>

/**
 * Runs `fn` with node:fs's readdirSync and lstatSync recording their path arguments. ESM
 * imports of node builtins are live bindings that syncBuiltinESMExports() updates, so the
 * modules under test call the wrappers.
 */
async function recordingFsCalls<R>(
  fn: () => Promise<R>,
): Promise<{ result: R; calls: Record<keyof SpiedFs, string[]> }> {
  const fs = createRequire(import.meta.url)('node:fs') as SpiedFs
  const real = { readdirSync: fs.readdirSync, lstatSync: fs.lstatSync }
  const calls = { readdirSync: [] as string[], lstatSync: [] as string[] }
  for (const name of ['readdirSync', 'lstatSync'] as const) {
    fs[name] = (...args: unknown[]) => {
      calls[name].push(String(args[0]))
      return real[name](...args)
    }
  }
  syncBuiltinESMExports()
  try {
    return { result: await fn(), calls }
  } finally {
    Object.assign(fs, real)
    syncBuiltinESMExports()
  }
}

test(
  'overlayChanges() costs what the upper holds: a lower of 20,000 files, 3 writes, no lower directory read',
  needsOverlay,
  async (t) => {
    const big: Record<string, Entry> = {}
    for (let d = 0; d < 100; d++) for (let f = 0; f < 200; f++) big[`big/d${d}/f${f}`] = 'x'
    // On a tmpfs: 20,000 files take seconds to create and remove on a journaled disk.
    const fast = mkdtempSync(join(tmpdir(), 'layerstore-ovl-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', fast])
    const held: { s?: Stack } = {}
    t.after(() => {
      held.s?.remove()
      execFileSync('umount', [fast])
      rmSync(fast, { recursive: true })
    })
    const s = (held.s = stack([{ 'etc/motd': 'm' }, { ...BOTTOM, ...big }], undefined, fast))
    writeFileSync(join(s.merged, 'big/d50/f7'), 'changed')
    rmSync(join(s.merged, 'big/d3/f1'))
    writeFileSync(join(s.merged, 'etc/new'), 'n')
    const naive = await recordingFsCalls(() => changes(s.merged, s.lowerMerged))
    s.unmount()
    const mine = await recordingFsCalls(() => overlayChanges(s.upper, s.lowers))
    assert.deepEqual(show(mine.result), show(naive.result))
    assert.deepEqual(show(mine.result), [
      'C /big',
      'C /big/d3',
      'D /big/d3/f1',
      'C /big/d50',
      'C /big/d50/f7',
      'C /etc',
      'A /etc/new',
    ])
    // The recording sees the walks: the naive one read every directory of the merged trees.
    assert.ok(naive.calls.readdirSync.length > 200, `${naive.calls.readdirSync.length} readdirs`)
    assert.ok(naive.calls.lstatSync.length > 40_000, `${naive.calls.lstatSync.length} lstats`)
    // Only upper directories were listed, and a few names looked up.
    assert.deepEqual(
      mine.calls.readdirSync.filter((p) => !p.startsWith(s.upper)),
      [],
      'a lower directory was listed',
    )
    assert.ok(mine.calls.readdirSync.length <= 5, `${mine.calls.readdirSync.length} readdirs`)
    assert.ok(mine.calls.lstatSync.length <= 30, `${mine.calls.lstatSync.length} lstats`)
  },
)

// ---- property -------------------------------------------------------------------------------

/** Runs per test run; LAYERSTORE_OVERLAY_CHANGES_RUNS=1000 for a long hunt. */
const NUM_RUNS = Number(process.env['LAYERSTORE_OVERLAY_CHANGES_RUNS'] ?? 30)

/** Few names, so that layers and writes meet on the same paths. */
const SEG = fc.constantFrom('a', 'b', 'c', 'b')
const LOWER_KIND = fc.constantFrom('file', 'file', 'dir', 'opaque', 'whiteout', 'symlink', 'cap')
const LOWER_ENTRY = fc.record({
  path: fc.oneof(
    { weight: 3, arbitrary: fc.array(SEG, { minLength: 1, maxLength: 2 }) },
    { weight: 1, arbitrary: fc.array(SEG, { minLength: 3, maxLength: 3 }) },
  ),
  kind: LOWER_KIND,
  content: fc.constantFrom('x', 'yy'),
})
const LOWERS = fc.array(fc.array(LOWER_ENTRY, { maxLength: 12 }), { minLength: 2, maxLength: 3 })
type LowerEntry = typeof LOWER_ENTRY extends fc.Arbitrary<infer E> ? E : never

/** A layer spec from random entries: an entry under a non-directory, or taken, is dropped. */
function lowerSpec(entries: readonly LowerEntry[]): Record<string, Entry> {
  const spec: Record<string, Entry> = {}
  const isDirEntry = (e: Entry | undefined): boolean =>
    e !== undefined && typeof e === 'object' && 'dir' in e
  for (const e of entries) {
    const path = e.path.join('/')
    if (path in spec) continue
    const parents = e.path.slice(0, -1).map((_, i) => e.path.slice(0, i + 1).join('/'))
    if (parents.some((p) => p in spec && !isDirEntry(spec[p]))) continue
    for (const p of parents) spec[p] ??= { dir: true }
    spec[path] =
      e.kind === 'file'
        ? e.content
        : e.kind === 'dir'
          ? { dir: true }
          : e.kind === 'opaque'
            ? { dir: true, opaque: true }
            : e.kind === 'whiteout'
              ? { whiteout: true }
              : e.kind === 'symlink'
                ? { symlink: e.content }
                : { file: e.content, mode: 0o755, cap: e.content === 'x' ? CAP_V2 : CAP_V3 }
  }
  return spec
}

type NodeKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'char'
const NODE_KIND = fc.constantFrom<NodeKind>('file', 'file', 'dir', 'dir', 'symlink', 'fifo', 'char')
const NAME = fc.constantFrom('a', 'b', 'c', 'd')
const INDEX = fc.nat({ max: 1000 })
const MODE = fc.constantFrom(0o644, 0o600, 0o755, 0o4755)
const ID = fc.constantFrom(0, 1000)
const CAP = fc.constantFrom<'none' | 'v2' | 'v3'>('none', 'v2', 'v3')

/** A write through the mount; targets are indices (modulo) into the nodes the mount shows. */
type Op =
  | { op: 'add'; parent: number; name: string; kind: NodeKind; mode: number }
  | { op: 'replace'; target: number; kind: NodeKind; mode: number }
  | { op: 'link' | 'rename'; source: number; parent: number; name: string }
  | { op: 'rm' | 'openw' | 'retouch'; target: number }
  | { op: 'chmod'; target: number; mode: number }
  | { op: 'chown'; target: number; uid: number; gid: number }
  | { op: 'write'; target: number; content: string }
  | { op: 'truncate'; target: number; size: number }
  | { op: 'touch'; target: number; nsec: number }
  | { op: 'cap'; target: number; cap: 'none' | 'v2' | 'v3' }
  /** A node at a path some lower layer holds, where the mount shows nothing (hidden there). */
  | { op: 'probe'; target: number; kind: NodeKind; mode: number }

const OP: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      parent: INDEX,
      name: NAME,
      kind: NODE_KIND,
      mode: MODE,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('replace' as const),
      target: INDEX,
      kind: NODE_KIND,
      mode: MODE,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constantFrom('link' as const, 'rename' as const),
      source: INDEX,
      parent: INDEX,
      name: NAME,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('rm' as const, 'openw' as const, 'retouch' as const),
      target: INDEX,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('chmod' as const), target: INDEX, mode: MODE }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('chown' as const), target: INDEX, uid: ID, gid: ID }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      target: INDEX,
      content: fc.constantFrom('', 'x', 'zz'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('truncate' as const),
      target: INDEX,
      size: fc.nat({ max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('touch' as const),
      target: INDEX,
      nsec: fc.constantFrom(0, 500_000_000, 123),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cap' as const), target: INDEX, cap: CAP }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('probe' as const),
      target: INDEX,
      kind: NODE_KIND,
      mode: MODE,
    }),
  },
)

interface Seen {
  readonly path: string // relative, '' for the root
  readonly kind: 'dir' | 'file' | 'symlink' | 'other'
}

/** Every node the mount at `root` shows, the root first, in a stable order. */
function seen(root: string): Seen[] {
  const out: Seen[] = [{ path: '', kind: 'dir' }]
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`
      const st = lstatSync(join(root, path), { throwIfNoEntry: false })
      if (st === undefined) continue // a whiteout the kernel lists
      const kind = st.isDirectory()
        ? 'dir'
        : st.isFile()
          ? 'file'
          : st.isSymbolicLink()
            ? 'symlink'
            : 'other'
      out.push({ path, kind })
      if (kind === 'dir') walk(path)
    }
  }
  walk('')
  return out
}

function create(p: string, kind: NodeKind, mode: number): void {
  if (kind === 'file') writeFileSync(p, 'new')
  else if (kind === 'dir') mkdirSync(p)
  else if (kind === 'symlink') symlinkSync('a', p)
  else sys.mknod(p, (kind === 'fifo' ? S_IFIFO : S_IFCHR) | 0o600, kind === 'char' ? 1 : 0, 3)
  if (kind !== 'symlink') chmodSync(p, mode)
}

/**
 * Runs `op` through the mount at `root`; an op without a fitting target does nothing.
 * `lowerPaths`: the paths the lower layers hold.
 */
function run(root: string, op: Op, lowerPaths: readonly string[]): void {
  const all = seen(root)
  const others = all.slice(1)
  const dirs = all.filter((n) => n.kind === 'dir')
  const files = others.filter((n) => n.kind === 'file')
  const pick = <N>(list: readonly N[], i: number): N | undefined =>
    list.length === 0 ? undefined : list[i % list.length]
  const at = (n: Seen): string => join(root, n.path)
  const free = (parent: Seen | undefined, name: string): string | undefined => {
    if (parent === undefined) return undefined
    const p = join(at(parent), name)
    return lstatSync(p, { throwIfNoEntry: false }) === undefined ? p : undefined
  }
  switch (op.op) {
    case 'add': {
      const p = free(pick(dirs, op.parent), op.name)
      if (p !== undefined) create(p, op.kind, op.mode)
      return
    }
    case 'replace': {
      const n = pick(others, op.target)
      if (n === undefined) return
      rmSync(at(n), { recursive: true })
      create(at(n), op.kind, op.mode)
      return
    }
    case 'link':
    case 'rename': {
      // Files only: a directory with lower content cannot move without redirect_dir (EXDEV).
      const source = pick(
        op.op === 'link' ? files : others.filter((n) => n.kind !== 'dir'),
        op.source,
      )
      const p = free(pick(dirs, op.parent), op.name)
      if (source === undefined || p === undefined) return
      if (op.op === 'link') linkSync(at(source), p)
      else renameSync(at(source), p)
      return
    }
    case 'rm': {
      const n = pick(others, op.target)
      if (n !== undefined) rmSync(at(n), { recursive: true })
      return
    }
    case 'openw': {
      const n = pick(files, op.target)
      if (n !== undefined) closeSync(openSync(at(n), 'r+')) // a copy-up, nothing changed
      return
    }
    case 'retouch': {
      // utimensat to the times it has: a copy-up, nothing changed.
      const n = pick(others, op.target)
      if (n === undefined) return
      const st = lstatSync(at(n), { bigint: true })
      const [as, an] = [Number(st.atimeNs / 1_000_000_000n), Number(st.atimeNs % 1_000_000_000n)]
      const [ms, mn] = [Number(st.mtimeNs / 1_000_000_000n), Number(st.mtimeNs % 1_000_000_000n)]
      sys.lutimens(at(n), as, an, ms, mn)
      return
    }
    case 'chmod': {
      const n = pick(
        others.filter((x) => x.kind !== 'symlink'),
        op.target,
      )
      if (n !== undefined) chmodSync(at(n), op.mode)
      return
    }
    case 'chown': {
      const n = pick(others, op.target)
      if (n !== undefined) lchownSync(at(n), op.uid, op.gid)
      return
    }
    case 'write': {
      const n = pick(files, op.target)
      if (n !== undefined) writeFileSync(at(n), op.content)
      return
    }
    case 'truncate': {
      const n = pick(files, op.target)
      if (n !== undefined) truncateSync(at(n), op.size)
      return
    }
    case 'touch': {
      const n = pick(others, op.target)
      if (n !== undefined) stamp(at(n), op.nsec)
      return
    }
    case 'probe': {
      const path = pick(lowerPaths, op.target)
      if (path === undefined) return
      let parent
      try {
        parent = lstatSync(join(root, dirname(path)), { throwIfNoEntry: false })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return // under a file
        throw err
      }
      if (parent?.isDirectory() !== true) return
      if (lstatSync(join(root, path), { throwIfNoEntry: false }) === undefined)
        create(join(root, path), op.kind, op.mode)
      return
    }
    case 'cap': {
      const n = pick(files, op.target)
      if (n === undefined) return
      if (op.cap === 'none') sys.lremovexattr(at(n), CAPABILITY)
      else sys.lsetxattr(at(n), CAPABILITY, op.cap === 'v2' ? CAP_V2 : CAP_V3)
      return
    }
  }
}

test(
  'property: random lower layers and random writes through the mount, overlayChanges() = changes()',
  needsOverlay,
  async () => {
    await fc.assert(
      fc.asyncProperty(
        LOWERS,
        fc.array(OP, { minLength: 1, maxLength: 12 }),
        async (layers, ops) => {
          const specs = layers.map(lowerSpec)
          const lowerPaths = [...new Set(specs.flatMap((spec) => Object.keys(spec)))].sort()
          const s = stack(specs)
          try {
            for (const op of ops) run(s.merged, op, lowerPaths)
            await assertSame(s)
          } finally {
            s.remove()
          }
        },
      ),
      { numRuns: NUM_RUNS },
    )
  },
)
