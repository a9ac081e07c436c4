/**
 * Property: for random trees and random edits, changes(new, old) exported and applied on a copy
 * of the old tree gives the new tree (and, where overlayfs mounts, applied in overlay form
 * above the old tree, mounted). What may differ is what expectedRoundTrip
 * (src/testing/roundtrip.ts) allows, with the same reasons as the real-tree round trips.
 *
 * Trees are built with synchronous fs calls: files with small contents, directories, symlinks
 * (relative, absolute, dangling), hard links, fifos and devices, with random modes (setuid,
 * setgid, sticky included), owners, times (whole seconds or not) and xattrs. Names come from a
 * small alphabet so that edits collide with existing names; none starts with `.wh.`. Each
 * operation picks its target by index among the nodes on disk, so every operation is valid
 * whatever came before and fast-check can shrink a failure to a few operations. A failure
 * prints the seed and the operations.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  chmodSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { sys, S_IFBLK, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { overlayUnsupported } from '../testing/overlay-mount.js'
import { copyTree, describe, roundTrip } from '../testing/roundtrip.js'
import type { WhiteoutFormat } from './types.js'
import { CAP_V2, CAP_V3 } from '../testing/capabilities.js'

const isRoot = process.getuid?.() === 0
const overlay = isRoot && overlayUnsupported() === undefined
/** Runs per test run; LAYERSTORE_ROUNDTRIP_RUNS=2000 for a long hunt. */
const NUM_RUNS = Number(process.env['LAYERSTORE_ROUNDTRIP_RUNS'] ?? 50)

const CAPABILITY = 'security.capability'
const CAPS = { none: undefined, v2: CAP_V2, v3: CAP_V3 } as const
type Cap = keyof typeof CAPS
const CAP = fc.constantFrom<Cap>('none', 'v2', 'v3')

interface Time {
  readonly sec: number
  readonly nsec: number
}
interface Owner {
  readonly uid: number
  readonly gid: number
}
type Node =
  | { readonly kind: 'dir'; readonly mode: number; readonly note: boolean }
  | {
      readonly kind: 'file'
      readonly mode: number
      readonly content: string
      readonly cap: Cap
      readonly note: boolean
    }
  | { readonly kind: 'symlink'; readonly target: string }
  | { readonly kind: 'fifo'; readonly mode: number }
  | {
      readonly kind: 'char' | 'block'
      readonly mode: number
      readonly major: number
      readonly minor: number
    }

/** `parent`, `source`, `target`: indices (modulo) into the matching nodes on disk. */
type Op =
  | { op: 'add'; parent: number; name: string; node: Node; owner: Owner; time: Time }
  | { op: 'link'; source: number; parent: number; name: string }
  | { op: 'rm'; target: number }
  | { op: 'replace'; target: number; node: Node; owner: Owner; time: Time }
  | { op: 'chmod'; target: number; mode: number }
  | { op: 'chown'; target: number; owner: Owner }
  | { op: 'write'; target: number; content: string; time: Time }
  | { op: 'touch'; target: number; time: Time }
  | { op: 'retarget'; target: number; linkTarget: string; time: Time }
  | { op: 'capability'; target: number; cap: Cap }
  | { op: 'redev'; target: number; major: number; minor: number }

// ---- arbitraries ----------------------------------------------------------------------------

const SHORT_NAME = fc
  .string({ unit: fc.constantFrom('a', 'b', '.', '-', 'w', 'h', 'é'), minLength: 1, maxLength: 4 })
  .filter((n) => n !== '.' && n !== '..' && !n.startsWith('.wh.'))
/**
 * Names are the latin1 bytes of these strings: a short `é` is the byte 0xe9, not UTF-8 (tree
 * snapshots show such paths in base64). Mostly short names; now and then one that needs a PAX
 * path (over 100 bytes), ASCII or UTF-8.
 */
const NAME = fc.oneof(
  { weight: 20, arbitrary: SHORT_NAME },
  {
    weight: 1,
    arbitrary: fc.constantFrom('n'.repeat(120), Buffer.from('é'.repeat(70)).toString('latin1')),
  },
)
const MODE = fc.integer({ min: 0, max: 0o7777 })
/** Few seconds, so that times collide; nanoseconds or not (Docker compares those differently). */
const TIME = fc.record({
  sec: fc.constantFrom(1_000_000_000, 1_500_000_000, 1_600_000_000),
  nsec: fc.oneof(
    fc.constant(0),
    fc.constant(500_000_000),
    fc.integer({ min: 1, max: 999_999_999 }),
  ),
})
/** Owner and group apart, so that either changes alone; ids above 2097151 need PAX. */
const OWNER: fc.Arbitrary<Owner> = fc.record({
  uid: fc.constantFrom(0, 1000, 3_000_000),
  gid: fc.constantFrom(0, 50, 1000, 4_000_000),
})
/** Small contents that often have the same size; rarely one above 1 MiB (streamed by export). */
const CONTENT = fc.oneof(
  { weight: 30, arbitrary: fc.string({ unit: fc.constantFrom('x', 'y', '\n'), maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(1_200_000), 'y'.repeat(1_200_000)) },
)
const LINK_TARGET = fc.oneof(
  fc.constantFrom(
    '/',
    '/a',
    '/etc/passwd',
    '..',
    '../..',
    '.',
    'nowhere',
    '../a/b',
    't'.repeat(150),
  ),
  NAME,
  fc.tuple(NAME, NAME).map(([a, b]) => `${a}/${b}`),
)
const INDEX = fc.nat({ max: 1000 })

const NODE: fc.Arbitrary<Node> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('dir'), mode: MODE, note: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('file'),
      mode: MODE,
      content: CONTENT,
      cap: CAP,
      note: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('symlink'), target: LINK_TARGET }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fifo'), mode: MODE }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constantFrom('char', 'block'),
      mode: MODE,
      major: fc.integer({ min: 1, max: 9 }), // never 0/0, an overlay whiteout
      minor: fc.integer({ min: 0, max: 9 }),
    }),
  },
)

const ADD: fc.Arbitrary<Op> = fc.record({
  op: fc.constant('add'),
  parent: INDEX,
  name: NAME,
  node: NODE,
  owner: OWNER,
  time: TIME,
})
const LINK: fc.Arbitrary<Op> = fc.record({
  op: fc.constant('link'),
  source: INDEX,
  parent: INDEX,
  name: NAME,
})

const EDIT: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: ADD },
  { weight: 1, arbitrary: LINK },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('rm'), target: INDEX }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('replace'),
      target: INDEX,
      node: NODE,
      owner: OWNER,
      time: TIME,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('chmod'), target: INDEX, mode: MODE }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('chown'), target: INDEX, owner: OWNER }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('write'), target: INDEX, content: CONTENT, time: TIME }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('touch'), target: INDEX, time: TIME }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('retarget'),
      target: INDEX,
      linkTarget: LINK_TARGET,
      time: TIME,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('capability'), target: INDEX, cap: CAP }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('redev'),
      target: INDEX,
      major: fc.integer({ min: 1, max: 9 }),
      minor: fc.integer({ min: 0, max: 9 }),
    }),
  },
)

// ---- building trees ---------------------------------------------------------------------------

interface OnDisk {
  /** Relative path bytes ('' for the root). */
  readonly path: Buffer
  readonly kind: 'dir' | 'file' | 'symlink' | 'other'
}

const SLASH = Buffer.from('/')
const under = (dir: Buffer, name: Buffer): Buffer =>
  dir.length === 0 ? name : Buffer.concat([dir, SLASH, name])

/** Every node under `root` (the root itself first, path ''), in a stable order. */
function nodes(root: Buffer): OnDisk[] {
  const out: OnDisk[] = [{ path: Buffer.alloc(0), kind: 'dir' }]
  const walk = (rel: Buffer): void => {
    const names = readdirSync(under(root, rel), { encoding: 'buffer' })
    for (const name of names.sort((a, b) => Buffer.compare(a, b))) {
      const path = under(rel, name)
      const st = lstatSync(under(root, path))
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
  walk(Buffer.alloc(0))
  return out
}

function pick(list: readonly OnDisk[], index: number): OnDisk | undefined {
  return list.length === 0 ? undefined : list[index % list.length]
}

const stamp = (p: Buffer, t: Time): void => sys.lutimens(p, t.sec, t.nsec, t.sec, t.nsec)

function setCapability(p: Buffer, cap: Cap): void {
  const value = CAPS[cap]
  if (value === undefined) sys.lremovexattr(p, CAPABILITY)
  else sys.lsetxattr(p, CAPABILITY, value)
}

/** Creates `node` at `p` (which must not exist), owner and mode before xattrs and time. */
function create(p: Buffer, node: Node, owner: Owner, time: Time): void {
  switch (node.kind) {
    case 'dir':
      mkdirSync(p)
      break
    case 'file':
      writeFileSync(p, node.content)
      break
    case 'symlink':
      symlinkSync(node.target, p)
      break
    case 'fifo':
      sys.mknod(p, S_IFIFO | 0o600, 0, 0)
      break
    case 'char':
    case 'block':
      sys.mknod(p, (node.kind === 'char' ? S_IFCHR : S_IFBLK) | 0o600, node.major, node.minor)
      break
  }
  lchownSync(p, owner.uid, owner.gid) // before chmod and capabilities: chown clears them
  if (node.kind !== 'symlink') chmodSync(p, node.mode)
  if (node.kind === 'file') setCapability(p, node.cap)
  if ((node.kind === 'file' || node.kind === 'dir') && node.note)
    sys.lsetxattr(p, 'user.note', p.subarray(-3))
  stamp(p, time)
}

/** Runs `op` in `root`; an operation without a fitting target does nothing. */
function run(root: Buffer, op: Op): void {
  const all = nodes(root)
  const dirs = all.filter((n) => n.kind === 'dir')
  const others = all.slice(1)
  const of = (kind: OnDisk['kind']): OnDisk[] => others.filter((n) => n.kind === kind)
  const at = (n: OnDisk): Buffer => under(root, n.path)
  const free = (parent: OnDisk | undefined, name: string): Buffer | undefined => {
    if (parent === undefined) return undefined
    const p = under(at(parent), Buffer.from(name, 'latin1'))
    return lstatSync(p, { throwIfNoEntry: false }) === undefined ? p : undefined
  }
  switch (op.op) {
    case 'add': {
      const p = free(pick(dirs, op.parent), op.name)
      if (p !== undefined) create(p, op.node, op.owner, op.time)
      return
    }
    case 'link': {
      const source = pick(of('file'), op.source)
      const p = free(pick(dirs, op.parent), op.name)
      if (source !== undefined && p !== undefined) linkSync(at(source), p)
      return
    }
    case 'rm': {
      const n = pick(others, op.target)
      if (n !== undefined) rmSync(at(n), { recursive: true })
      return
    }
    case 'replace': {
      const n = pick(others, op.target)
      if (n === undefined) return
      rmSync(at(n), { recursive: true })
      create(at(n), op.node, op.owner, op.time)
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
      if (n !== undefined) lchownSync(at(n), op.owner.uid, op.owner.gid)
      return
    }
    case 'write': {
      const n = pick(of('file'), op.target)
      if (n === undefined) return
      writeFileSync(at(n), op.content)
      stamp(at(n), op.time)
      return
    }
    case 'touch': {
      const n = pick(others, op.target)
      if (n !== undefined) stamp(at(n), op.time)
      return
    }
    case 'retarget': {
      const n = pick(of('symlink'), op.target)
      if (n === undefined) return
      rmSync(at(n))
      symlinkSync(op.linkTarget, at(n))
      stamp(at(n), op.time)
      return
    }
    case 'capability': {
      const n = pick(of('file'), op.target)
      if (n !== undefined) setCapability(at(n), op.cap)
      return
    }
    case 'redev': {
      // The same device node with other numbers: only st_rdev differs.
      const n = pick(of('other'), op.target)
      if (n === undefined) return
      const st = lstatSync(at(n), { bigint: true })
      if (!st.isCharacterDevice() && !st.isBlockDevice()) return
      rmSync(at(n))
      sys.mknod(at(n), Number(st.mode), op.major, op.minor)
      lchownSync(at(n), Number(st.uid), Number(st.gid))
      chmodSync(at(n), Number(st.mode) & 0o7777)
      const sec = (ns: bigint): number => Number(ns / 1_000_000_000n)
      const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n)
      sys.lutimens(at(n), sec(st.atimeNs), nsec(st.atimeNs), sec(st.mtimeNs), nsec(st.mtimeNs))
      return
    }
  }
}

// ---- the property -----------------------------------------------------------------------------

const FORMS: readonly WhiteoutFormat[] = overlay ? ['aufs', 'overlay'] : ['aufs']

test(
  'property: random trees and edits round-trip through changes, exportChanges and apply',
  { skip: !isRoot && 'needs root (owners, devices, security.capability)' },
  async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof({ weight: 5, arbitrary: ADD }, { weight: 1, arbitrary: LINK }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.array(EDIT, { minLength: 1, maxLength: 10 }),
        async (build, edits) => {
          const dir = mkdtempSync(join(tmpdir(), 'layerstore-roundtrip-prop-'))
          try {
            const old = join(dir, 'old')
            const edited = join(dir, 'new')
            mkdirSync(old)
            for (const op of build) run(Buffer.from(old), op)
            copyTree(old, edited)
            for (const op of edits) run(Buffer.from(edited), op)
            for (const form of FORMS) {
              const work = join(dir, `work-${form}`)
              mkdirSync(work)
              const r = await roundTrip(old, edited, work, form)
              assert.deepEqual(
                r.diffs,
                [],
                `${form}: changes ${r.changes.map((c) => c.kind + c.path).join(' ')}\n` +
                  `loosened:\n${r.loosened.map(describe).join('\n')}`,
              )
            }
          } finally {
            rmSync(dir, { recursive: true, force: true })
          }
        },
      ),
      { numRuns: NUM_RUNS },
    )
  },
)
