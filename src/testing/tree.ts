/**
 * Snapshots of directory trees in the corpus's expected-tree format (corpus README, "Layer
 * chains: expected.json"), and a comparison that says what differs, entry by entry.
 */
import { createHash } from 'node:crypto'
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { sys } from '../internal/sys.js'

export interface TreeEntry {
  path?: string
  path_b64?: string
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'
  mode: string
  uid: number
  gid: number
  mtime?: number
  mtime_nsec?: number
  size?: number
  sha256?: string
  target?: string
  rdev?: [number, number]
  nlink?: number
  link_group?: string
  xattrs?: Record<string, string>
}

export interface SnapshotOptions {
  /** Leave out these xattrs (overlayfs's own, on a layer directory). */
  readonly skipXattr?: (name: string) => boolean
}

/** Every entry under `root` (the root itself excluded), sorted by path bytes. */
export function snapshot(root: string, options: SnapshotOptions = {}): TreeEntry[] {
  const out: { raw: Buffer; entry: TreeEntry; ino: bigint }[] = []
  const walk = (dir: Buffer, rel: Buffer | undefined): void => {
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const host = Buffer.concat([dir, Buffer.from('/'), name])
      const relPath = rel === undefined ? name : Buffer.concat([rel, Buffer.from('/'), name])
      const st = lstatSync(host, { bigint: true })
      const entry: TreeEntry = {
        ...pathField(relPath),
        type: typeOf(st),
        mode: (Number(st.mode) & 0o7777).toString(8).padStart(4, '0'),
        uid: Number(st.uid),
        gid: Number(st.gid),
        mtime: Number(st.mtimeNs / 1_000_000_000n),
        mtime_nsec: Number(st.mtimeNs % 1_000_000_000n),
      }
      if (entry.type === 'file') {
        entry.size = Number(st.size)
        entry.sha256 = createHash('sha256').update(readFileSync(host)).digest('hex')
        if (st.nlink > 1n) entry.nlink = Number(st.nlink)
      }
      if (entry.type === 'symlink') entry.target = readlinkSync(host, 'utf8')
      if (entry.type === 'char' || entry.type === 'block') {
        const rdev = st.rdev
        entry.rdev = [
          Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
          Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
        ]
      }
      const xattrs: Record<string, string> = {}
      for (const key of sys.llistxattr(host)) {
        const k = key.toString()
        if (options.skipXattr?.(k) === true) continue
        const v = sys.lgetxattr(host, key)
        if (v !== undefined) xattrs[k] = 'base64:' + v.toString('base64')
      }
      if (Object.keys(xattrs).length > 0) entry.xattrs = xattrs
      out.push({ raw: relPath, entry, ino: st.ino })
      if (entry.type === 'dir') walk(host, relPath)
    }
  }
  walk(Buffer.from(root), undefined)
  out.sort((a, b) => Buffer.compare(a.raw, b.raw))
  // link_group: the smallest path sharing the inode, for files with several names.
  const groups = new Map<bigint, string>()
  for (const o of out) {
    if (o.entry.nlink === undefined) continue
    if (!groups.has(o.ino)) groups.set(o.ino, display(o.entry))
    o.entry.link_group = groups.get(o.ino)!
  }
  return out.map((o) => o.entry)
}

export interface CompareOptions {
  /** Paths whose directory mtime is not specified (expected.json's unspecified_dir_mtime). */
  readonly unspecifiedMtime?: readonly string[]
  /** Do not compare nlink and link_group (overlayfs reports the lower inode's count). */
  readonly ignoreNlink?: boolean
}

/** Differences between an expected and an actual tree, one line each; empty when equal. */
export function compareTrees(
  expected: readonly TreeEntry[],
  actual: readonly TreeEntry[],
  options: CompareOptions = {},
): string[] {
  const unspecified = new Set(options.unspecifiedMtime ?? [])
  const index = (list: readonly TreeEntry[]): Map<string, TreeEntry> =>
    new Map(list.map((e) => [display(e), e]))
  const want = index(expected)
  const got = index(actual)
  const diffs: string[] = []
  for (const [path, e] of want) {
    const a = got.get(path)
    if (a === undefined) {
      diffs.push(`missing: ${path}`)
      continue
    }
    const fields = new Set([...Object.keys(e), ...Object.keys(a)])
    for (const f of fields) {
      if (f === 'path' || f === 'path_b64') continue
      if ((f === 'mtime' || f === 'mtime_nsec') && e.type === 'dir' && unspecified.has(path))
        continue
      if ((f === 'mtime' || f === 'mtime_nsec') && !(f in e)) continue
      if ((f === 'nlink' || f === 'link_group') && options.ignoreNlink === true) continue
      const ev = normalise(f, (e as unknown as Record<string, unknown>)[f])
      const av = normalise(f, (a as unknown as Record<string, unknown>)[f])
      if (ev !== av) diffs.push(`${path}: ${f} expected ${ev} got ${av}`)
    }
  }
  for (const path of got.keys()) if (!want.has(path)) diffs.push(`unexpected: ${path}`)
  return diffs
}

function normalise(field: string, v: unknown): string {
  if (v === undefined) return 'none'
  if (field === 'xattrs') {
    const out: Record<string, string> = {}
    for (const [k, val] of Object.entries(v as Record<string, string>).sort()) {
      out[k] = val.startsWith('base64:') ? val.slice(7) : Buffer.from(val).toString('base64')
    }
    return JSON.stringify(out)
  }
  return JSON.stringify(v)
}

/** The path of an entry as text (base64-marked when not UTF-8). */
export function display(e: TreeEntry): string {
  return e.path ?? `b64:${e.path_b64 ?? ''}`
}

function pathField(raw: Buffer): { path: string } | { path_b64: string } {
  const text = raw.toString('utf8')
  return Buffer.from(text, 'utf8').equals(raw)
    ? { path: text }
    : { path_b64: raw.toString('base64') }
}

function typeOf(st: {
  isFile(): boolean
  isDirectory(): boolean
  isSymbolicLink(): boolean
  isCharacterDevice(): boolean
  isBlockDevice(): boolean
  isFIFO(): boolean
}): TreeEntry['type'] {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return 'socket'
}
