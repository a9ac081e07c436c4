/**
 * Helpers of the driver conformance suite (conformance.ts): trees written and compared node
 * by node, tars built and summed up. Driver-neutral: they see only the roots get() returns.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  type BigIntStats,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { hasCode } from '../errors.js'
import { sys, S_IFBLK, S_IFCHR, S_IFIFO } from '../internal/sys.js'
import { TYPE, readTar, writeTar, type TarWriteEntry } from '../tar/index.js'
import { removeAll } from './remove-all.js'
import type { Driver } from './types.js'

/** Makes the driver under test on a store root. */
export type DriverFactory = (root: string) => Promise<Driver>

export const IS_ROOT = process.geteuid?.() === 0

/** A fresh driver on a fresh root, both cleaned up when the test ends. */
export async function setup<D extends Driver>(
  t: TestContext,
  make: (root: string) => Promise<D>,
): Promise<D> {
  const root = mkdtempSync(join(tmpdir(), 'layerstore-driver-'))
  let driver: D
  try {
    driver = await make(root)
  } catch (err) {
    await removeAll(root)
    throw err
  }
  t.after(async () => {
    await driver.cleanup()
    await removeAll(root)
  })
  return driver
}

/** Runs `fn` on the layer's root between get() and put(). */
export async function inLayer<T>(d: Driver, id: string, fn: (root: string) => T): Promise<T> {
  const root = await d.get(id)
  try {
    return fn(root)
  } finally {
    await d.put(id)
  }
}

export async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(p, (err) => hasCode(err, code), `${what}: expected ${code}`)
}

export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'

/** One node of a tree, as compared. */
export interface NodeInfo {
  readonly type: NodeType
  /** Permission bits with setuid, setgid, sticky. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size?: number
  readonly sha256?: string
  readonly target?: string
  readonly rdev?: string
  readonly mtimeNs: bigint
  readonly nlink: number
  readonly ino: bigint
  /** Extended attributes (hex values), overlayfs's own and SELinux labels left out. */
  readonly xattrs: Readonly<Record<string, string>>
}

export type Tree = ReadonlyMap<string, NodeInfo>

function typeOf(st: BigIntStats): NodeType {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return 'socket'
}

function xattrsOf(path: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of sys.llistxattr(path)) {
    const name = raw.toString('latin1')
    if (name.startsWith('trusted.overlay.') || name === 'security.selinux') continue
    out[name] = sys.lgetxattr(path, raw)?.toString('hex') ?? ''
  }
  return out
}

/** Every node below `root` (the root itself excluded), keyed by relative path (latin1). */
export function snapshot(root: string): Tree {
  const out = new Map<string, NodeInfo>()
  const walk = (dir: Buffer, rel: string): void => {
    for (const name of readdirSync(dir, 'buffer')) {
      const path = Buffer.concat([dir, Buffer.from('/'), name])
      const key = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`
      const st = lstatSync(path, { bigint: true })
      const type = typeOf(st)
      const info: NodeInfo = {
        type,
        mode: Number(st.mode) & 0o7777,
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtimeNs: st.mtimeNs,
        nlink: Number(st.nlink),
        ino: st.ino,
        xattrs: xattrsOf(path),
        ...(type === 'file'
          ? {
              size: Number(st.size),
              sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
            }
          : {}),
        ...(type === 'symlink' ? { target: readlinkSync(path, 'buffer').toString('latin1') } : {}),
        ...(type === 'char' || type === 'block' ? { rdev: String(st.rdev) } : {}),
      }
      out.set(key, info)
      if (type === 'dir') walk(path, key)
    }
  }
  walk(Buffer.from(root), '')
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

export interface CompareOptions {
  /** How mtimes must agree: exactly, on the second (diffs carry whole seconds), or not at all. */
  readonly mtime?: 'exact' | 'seconds' | 'none'
  /** Compare directory mtimes too (default false: applying and copying up may touch them). */
  readonly dirMtime?: boolean
  /** Extended attributes compared: all, `security.capability` only (what diffs carry), none. */
  readonly xattrs?: 'all' | 'capability' | 'none'
  /** Compare owners (default: when running as root). */
  readonly owners?: boolean
}

/** Hard-link groups: sorted lists of the names of each multiply-linked non-directory inode. */
function linkGroups(tree: Tree): string[] {
  const byIno = new Map<bigint, string[]>()
  for (const [path, n] of tree)
    if (n.type !== 'dir' && n.nlink > 1) byIno.set(n.ino, [...(byIno.get(n.ino) ?? []), path])
  return [...byIno.values()].map((g) => g.sort().join(' = ')).sort()
}

/** What differs between two trees, one line each (empty when they agree). */
export function treeDiff(expected: Tree, actual: Tree, options: CompareOptions = {}): string[] {
  const mtime = options.mtime ?? 'exact'
  const xattrs = options.xattrs ?? 'all'
  const owners = options.owners ?? IS_ROOT
  const out: string[] = []
  const pick = (n: NodeInfo): Record<string, unknown> => {
    const x =
      xattrs === 'all'
        ? n.xattrs
        : xattrs === 'capability' && n.xattrs['security.capability'] !== undefined
          ? { 'security.capability': n.xattrs['security.capability'] }
          : {}
    const withTime = mtime !== 'none' && (n.type !== 'dir' || options.dirMtime === true)
    return {
      type: n.type,
      mode: n.mode.toString(8),
      ...(owners ? { owner: `${n.uid}:${n.gid}` } : {}),
      size: n.size,
      sha256: n.sha256,
      target: n.target,
      rdev: n.rdev,
      ...(n.type === 'dir' ? {} : { nlink: n.nlink }),
      ...(withTime
        ? { mtime: String(mtime === 'seconds' ? n.mtimeNs / 1_000_000_000n : n.mtimeNs) }
        : {}),
      xattrs: JSON.stringify(x),
    }
  }
  for (const [path, e] of expected) {
    const a = actual.get(path)
    if (a === undefined) {
      out.push(`${path}: missing`)
      continue
    }
    const pe = pick(e)
    const pa = pick(a)
    for (const k of Object.keys(pe))
      if (pe[k] !== pa[k]) out.push(`${path}: ${k} ${String(pa[k])}, expected ${String(pe[k])}`)
  }
  for (const path of actual.keys()) if (!expected.has(path)) out.push(`${path}: unexpected`)
  const ge = linkGroups(expected)
  const ga = linkGroups(actual)
  if (JSON.stringify(ge) !== JSON.stringify(ga))
    out.push(`hard links: ${JSON.stringify(ga)}, expected ${JSON.stringify(ge)}`)
  return out
}

// ---- writing trees -----------------------------------------------------------------------

export interface NodeSpec {
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  /** mtime in ns since the epoch (atime is set to the same). */
  readonly mtimeNs?: bigint
}

/** Owner (root only), mode, then times, in the order that keeps setuid bits. */
export function setMeta(path: string, spec: NodeSpec, symlink = false): void {
  if (IS_ROOT && (spec.uid !== undefined || spec.gid !== undefined))
    lchownSync(path, spec.uid ?? 0, spec.gid ?? 0)
  if (!symlink && spec.mode !== undefined) chmodSync(path, spec.mode)
  if (spec.mtimeNs !== undefined) {
    const s = Number(spec.mtimeNs / 1_000_000_000n)
    const ns = Number(spec.mtimeNs % 1_000_000_000n)
    sys.lutimens(path, s, ns, s, ns)
  }
}

export function writeFile(
  root: string,
  rel: string,
  data: string | Buffer,
  spec: NodeSpec = {},
): void {
  const path = join(root, rel)
  writeFileSync(path, data)
  setMeta(path, { mode: 0o644, ...spec })
}

export function makeDir(root: string, rel: string, spec: NodeSpec = {}): void {
  const path = join(root, rel)
  mkdirSync(path, { recursive: true })
  setMeta(path, { mode: 0o755, ...spec })
}

export function makeSymlink(root: string, rel: string, target: string, spec: NodeSpec = {}): void {
  const path = join(root, rel)
  symlinkSync(target, path)
  setMeta(path, spec, true)
}

export function makeLink(root: string, existing: string, rel: string): void {
  linkSync(join(root, existing), join(root, rel))
}

export function makeNode(
  root: string,
  rel: string,
  type: 'fifo' | 'char' | 'block',
  spec: NodeSpec & { readonly major?: number; readonly minor?: number } = {},
): void {
  const path = join(root, rel)
  const t = type === 'fifo' ? S_IFIFO : type === 'char' ? S_IFCHR : S_IFBLK
  sys.mknod(path, t | 0o600, spec.major ?? 0, spec.minor ?? 0)
  setMeta(path, { mode: 0o644, ...spec })
}

/** Whether the filesystem at `dir` takes `user.*` xattrs (tmpfs before 6.6 does not). */
export function userXattrs(dir: string): boolean {
  const probe = join(dir, '.xattr-probe')
  writeFileSync(probe, '')
  try {
    sys.lsetxattr(probe, 'user.probe', Buffer.from('1'))
    return true
  } catch {
    return false
  } finally {
    unlinkSync(probe)
  }
}

// ---- tars ----------------------------------------------------------------------------------

export async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of source) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

export function tarOf(entries: readonly TarWriteEntry[]): Promise<Buffer> {
  return readAll(writeTar(entries))
}

/** `buf` as a stream of 64 KiB chunks: an AsyncIterable as applyDiff takes. */
export function chunksOf(buf: Buffer): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < buf.length; i += 65536) parts.push(buf.subarray(i, i + 65536))
  return Readable.from(parts, { objectMode: false })
}

export interface TarSummary {
  /** Entry names, in archive order. */
  readonly names: string[]
  /** Σ header sizes: the layer size of vfs and the naive diff (SPEC.md §6.9). */
  readonly headerSize: number
  /**
   * Σ st_size of the non-directory inodes the diff makes (regular files, symlink targets;
   * hard links and whiteouts add nothing): overlay2's native size, `directory.Size(diff/)`.
   */
  readonly directorySize: number
}

export async function summarize(tar: Buffer): Promise<TarSummary> {
  const names: string[] = []
  let headerSize = 0
  let directorySize = 0
  for await (const { header } of readTar(chunksOf(tar))) {
    names.push(header.name)
    headerSize += header.size
    if (header.typeflag === TYPE.REG || header.typeflag === TYPE.REG_A) directorySize += header.size
    if (header.typeflag === TYPE.SYMLINK) directorySize += header.linknameRaw.length
  }
  return { names, headerSize, directorySize }
}

/** A whole-second time in ns, `s` seconds after 2020-09-13 (1.6e9 s), plus `ns`. */
export function at(s: number, ns = 0): bigint {
  return (1_600_000_000n + BigInt(s)) * 1_000_000_000n + BigInt(ns)
}
