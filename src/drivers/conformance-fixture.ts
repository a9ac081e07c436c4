/**
 * The trees the conformance suite writes: a base layer with every kind of node a layer
 * holds, and a set of edits made in a child of it, with the changes those edits must give.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import type { ChangeKind } from '../archive/index.js'
import type { Driver } from './types.js'
import {
  IS_ROOT,
  at,
  inLayer,
  makeDir,
  makeLink,
  makeNode,
  makeSymlink,
  setMeta,
  snapshot,
  userXattrs,
  writeFile,
  type Tree,
} from './conformance-helpers.js'

/** `cap_net_raw+ep` as a v2 `security.capability` value (what `setcap` writes). */
export const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex')

export const DATA_FILES = 30

export function dataFile(i: number): string {
  return `data/file-${String(i).padStart(2, '0')}`
}

function dataContent(i: number): string {
  return `data ${i}\n`.repeat(i + 1)
}

/** 3 MiB of a repeating pattern: a file larger than one copy or export chunk. */
export const BIG = Buffer.alloc(3 << 20, 'layerstore big file ')

/** Gives every node under `root` its own nanosecond mtime, children before their directory. */
function stamp(root: string): void {
  let n = 0
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      const isDir = lstatSync(path).isDirectory()
      if (isDir) walk(path)
      n++
      setMeta(path, { mtimeNs: at(n, (n * 7919 + 1) % 1_000_000_000) }, !isDir)
    }
  }
  walk(root)
}

/**
 * A base layer's tree: files (setuid, a 3 MiB one), directories (sticky, private, owned by
 * others when root), absolute, relative and dangling symlinks, a hard-link pair, a FIFO, as
 * root devices and a file capability, a `user.*` xattr where the filesystem takes one, and a
 * distinct nanosecond mtime on every node.
 */
export function populateBase(root: string): void {
  makeDir(root, 'etc')
  writeFile(root, 'etc/hosts', '127.0.0.1 localhost\n')
  writeFile(root, 'etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n')
  writeFile(root, 'etc/motd', 'welcome\n')
  if (userXattrs(root)) sys.lsetxattr(join(root, 'etc/motd'), 'user.test', Buffer.from('motd'))
  writeFile(root, 'etc/shadow', 'root:*:19000::::::\n', { mode: 0o640, uid: 0, gid: 42 })
  makeDir(root, 'bin')
  writeFile(root, 'bin/sh', Buffer.alloc(1000, 'sh'), { mode: 0o755 })
  writeFile(root, 'bin/su', 'su\n', { mode: 0o4755, uid: 0, gid: 0 })
  writeFile(root, 'bin/ping', 'ping\n', { mode: 0o755 })
  if (IS_ROOT) sys.lsetxattr(join(root, 'bin/ping'), 'security.capability', CAP_NET_RAW)
  writeFile(root, 'bin/hard1', 'linked\n')
  makeLink(root, 'bin/hard1', 'bin/hard2')
  makeDir(root, 'data')
  for (let i = 0; i < DATA_FILES; i++) writeFile(root, dataFile(i), dataContent(i))
  makeDir(root, 'var/lib/dpkg')
  writeFile(root, 'var/lib/dpkg/status', 'Package: base\n')
  makeDir(root, 'var/lib/x')
  writeFile(root, 'var/lib/x/y', 'y')
  makeDir(root, 'var/log')
  makeDir(root, 'home/user', { mode: 0o700, uid: 1000, gid: 1000 })
  writeFile(root, 'home/user/notes', 'private\n', { mode: 0o600, uid: 1000, gid: 1000 })
  makeDir(root, 'tmp', { mode: 0o1777 })
  makeDir(root, 'a subdir', { mode: 0o1705, uid: 1, gid: 2 })
  // graphtest's mode; readable without privileges, or a whole-tree export could not read it
  writeFile(root, 'a file', 'Some data', { mode: IS_ROOT ? 0o4222 : 0o4644 })
  writeFile(root, 'big', BIG)
  makeSymlink(root, 'link-abs', '/etc/hosts')
  makeSymlink(root, 'link-rel', 'etc/passwd')
  makeSymlink(root, 'dangling', 'nowhere')
  makeDir(root, 'run')
  makeNode(root, 'run/fifo', 'fifo')
  if (IS_ROOT) {
    makeDir(root, 'dev')
    makeNode(root, 'dev/null', 'char', { mode: 0o666, major: 1, minor: 3 })
    makeNode(root, 'dev/loop9', 'block', { mode: 0o660, gid: 6, major: 7, minor: 9 })
  }
  stamp(root)
}

/** A base layer `id` holding populateBase's tree; returns that tree. */
export async function baseLayer(d: Driver, id = 'base'): Promise<Tree> {
  await d.create(id, undefined)
  return inLayer(d, id, (root) => {
    populateBase(root)
    return snapshot(root)
  })
}

/** Content the edits give `data/file-NN` (i < 20): longer than the original. */
export function editedContent(i: number): string {
  return `edited ${i}\n`.repeat(i + 2)
}

/** Files the edits add, with their content. */
export const ADDED: Readonly<Record<string, string>> = {
  'data/new-0': 'n0',
  'data/new-1': 'n1 n1',
  'newdir/a': 'a\n',
  'newdir/h1': 'hard\n',
}

/**
 * Edits made in a child of the base: 20 files rewritten (longer), files and a directory
 * added, a hard-link pair added, a file and a directory tree deleted, a mode changed, a
 * symlink retargeted, a symlink added. Every written file gets a new size, so that the edit
 * shows whatever the times.
 */
export function editChild(root: string): void {
  for (let i = 0; i < 20; i++) writeFile(root, dataFile(i), editedContent(i))
  for (const [rel, data] of Object.entries(ADDED)) {
    if (rel.startsWith('newdir/')) makeDir(root, 'newdir')
    writeFile(root, rel, data)
  }
  makeLink(root, 'newdir/h1', 'newdir/h2')
  rmSync(join(root, dataFile(29)))
  rmSync(join(root, 'var/lib'), { recursive: true })
  setMeta(join(root, 'etc/passwd'), { mode: 0o600 })
  rmSync(join(root, 'link-rel'))
  makeSymlink(root, 'link-rel', 'etc/hosts')
  makeSymlink(root, 'new-link', 'data')
}

/** What changes(child, base) reports after editChild, sorted by path. */
export function expectedChanges(): [string, ChangeKind][] {
  const list: [string, ChangeKind][] = [
    ['/data', 'C'],
    ['/etc', 'C'],
    ['/etc/passwd', 'C'],
    ['/link-rel', 'C'],
    ['/new-link', 'A'],
    ['/newdir', 'A'],
    ['/newdir/a', 'A'],
    ['/newdir/h1', 'A'],
    ['/newdir/h2', 'A'],
    ['/var', 'C'],
    ['/var/lib', 'D'],
    [`/${dataFile(29)}`, 'D'],
    ['/data/new-0', 'A'],
    ['/data/new-1', 'A'],
  ]
  for (let i = 0; i < 20; i++) list.push([`/${dataFile(i)}`, 'C'])
  return list.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

/**
 * What diffSize(child, base) is after editChild: the bytes of every added or modified
 * non-directory (symlinks count their target), the new hard-link pair once.
 */
export function expectedDiffSize(): number {
  let size = 0
  for (let i = 0; i < 20; i++) size += Buffer.byteLength(editedContent(i))
  for (const data of Object.values(ADDED)) size += data.length
  size += 'root:x:0:0:root:/root:/bin/sh\n'.length // etc/passwd: mode changed
  size += 'etc/hosts'.length // link-rel's new target
  size += 'data'.length // new-link
  return size
}
