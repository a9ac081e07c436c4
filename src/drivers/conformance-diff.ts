/**
 * The diff half of the driver conformance suite (see conformance.ts): changes, diffSize,
 * diff and applyDiff, alone and in round trips, on deep chains and on many files.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstatSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { TYPE, END_OF_ARCHIVE_SIZE, TarReader, type TarWriteEntry } from '../tar/index.js'
import { feed, offer } from '../archive/index.js'
import type { ConformanceOptions } from './conformance.js'
import {
  chunksOf,
  inLayer,
  readAll,
  setup,
  snapshot,
  summarize,
  tarOf,
  treeDiff,
  type DriverFactory,
  type Tree,
} from './conformance-helpers.js'
import { baseLayer, editChild, expectedChanges, expectedDiffSize } from './conformance-fixture.js'
import type { Driver } from './types.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

async function changeList(d: Driver, id: string, parent?: string): Promise<[string, string][]> {
  return (await d.changes(id, parent)).map((c) => [c.path, c.kind])
}

/** Regular file entry at a fixed time. */
function file(name: string, data: string, mode = 0o644): TarWriteEntry {
  return { header: { name, mode, mtime: 1_650_000_000 }, body: Buffer.from(data) }
}
function dir(name: string, mode = 0o755): TarWriteEntry {
  return { header: { name, typeflag: TYPE.DIR, mode, mtime: 1_650_000_000 } }
}

/** The tree minus the paths `drop` accepts. */
function without(tree: Tree, drop: (path: string) => boolean): Tree {
  return new Map([...tree].filter(([path]) => !drop(path)))
}

export function diffTests(make: DriverFactory, options: ConformanceOptions): void {
  const depth = options.depth ?? 20
  const many = options.manyFiles ?? 2000
  const layerSize = (s: { headerSize: number; directorySize: number }): number =>
    options.applySize === 'directory' ? s.directorySize : s.headerSize

  void test('changes() lists exactly the edits, sorted by path (graphtest Changes)', async (t) => {
    const d = await setup(t, make)
    const base = await baseLayer(d)
    await d.createReadWrite('child', 'base')
    assert.deepEqual(await changeList(d, 'child', 'base'), [])
    await inLayer(d, 'child', editChild)
    assert.deepEqual(await changeList(d, 'child', 'base'), expectedChanges())
    const all = [...base.keys()].map((p) => [`/${p}`, 'A']).sort(([a], [b]) => byBytes(a!, b!))
    assert.deepEqual(await changeList(d, 'base', undefined), all)
  })

  void test('diffSize() counts the bytes of added and modified files, a hard link once', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    await d.createReadWrite('child', 'base')
    assert.equal(await d.diffSize('child', 'base'), 0)
    await inLayer(d, 'child', editChild)
    assert.equal(await d.diffSize('child', 'base'), expectedDiffSize())
  })

  void test('a diff applied to a new child of the parent gives the child again (graphtest DiffApply)', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    await d.createReadWrite('child', 'base')
    await inLayer(d, 'child', editChild)
    const tar = await readAll(await d.diff('child', 'base'))
    const summary = await summarize(tar)
    const names = expectedChanges().map(([path, kind]) => {
      const rel = path.slice(1)
      if (kind === 'D') return rel.replace(/([^/]+)$/, '.wh.$1')
      return ['/data', '/etc', '/var', '/newdir'].includes(path) ? `${rel}/` : rel
    })
    assert.deepEqual([...summary.names].sort(byBytes), names.sort(byBytes))

    await d.create('applied', 'base')
    const size = await d.applyDiff('applied', 'base', chunksOf(tar))
    assert.equal(size, layerSize(summary))
    const child = await inLayer(d, 'child', snapshot)
    const applied = await inLayer(d, 'applied', snapshot)
    // A diff carries whole seconds; directories get their times from wherever apply put them.
    assert.deepEqual(treeDiff(child, applied, { mtime: 'seconds' }), [])
    assert.deepEqual(await changeList(d, 'applied', 'base'), expectedChanges())
    assert.equal(await d.diffSize('applied', 'base'), expectedDiffSize())
  })

  void test('diff() without a parent is the whole tree: applied to an empty layer, the same tree', async (t) => {
    const d = await setup(t, make)
    const base = await baseLayer(d)
    const tar = await readAll(await d.diff('base', undefined))
    const summary = await summarize(tar)
    assert.equal(summary.names.length, base.size)
    await d.create('copy', undefined)
    assert.equal(await d.applyDiff('copy', undefined, chunksOf(tar)), layerSize(summary))
    const copy = await inLayer(d, 'copy', snapshot)
    // Diffs carry `security.capability` only (Docker's tar writer), and whole seconds.
    const compare = { mtime: 'seconds', dirMtime: true, xattrs: 'capability' } as const
    assert.deepEqual(treeDiff(base, copy, compare), [])
  })

  void test('applier() fed entry by entry makes the layer applyDiff makes; abort() mid-way lets it go', async (t) => {
    const d = await setup(t, make)
    await baseLayer(d)
    const tar = await tarOf([
      dir('etc/'),
      file('etc/hosts', 'replaced\n'),
      file('etc/.wh.passwd', ''),
      file('newfile', 'new file\n', 0o640),
    ])
    await d.create('whole', 'base')
    const size = await d.applyDiff('whole', 'base', chunksOf(tar))
    await d.create('fed', 'base')
    const fed = await d.applier('fed', 'base')
    await feed(chunksOf(tar), fed)
    await fed.finish()
    assert.equal(await fed.size(), size)
    await fed.abort() // a no-op once finished
    assert.deepEqual(
      treeDiff(await inLayer(d, 'whole', snapshot), await inLayer(d, 'fed', snapshot), {
        dirMtime: true,
      }),
      [],
    )
    await d.create('dropped', 'base')
    const dropped = await d.applier('dropped', 'base')
    const reader = new TarReader(chunksOf(tar))
    const first = await reader.next()
    assert.equal(await offer(dropped, first!.header), undefined) // etc/
    await dropped.abort()
    await dropped.abort()
    await d.remove('dropped')
    assert.equal(await d.exists('dropped'), false)
  })

  void test('applyDiff() deletes what whiteouts hide, empties opaque directories, returns the size (SPEC §6.9)', async (t) => {
    const d = await setup(t, make)
    const base = await baseLayer(d)
    await d.create('layer', 'base')
    const tar = await tarOf([
      dir('etc/'),
      file('etc/hosts', 'replaced\n'),
      file('etc/.wh.passwd', ''),
      dir('var/'),
      file('var/.wh..wh..opq', ''),
      file('var/new', 'fresh'),
      file('newfile', 'new file\n', 0o640),
      { header: { name: 'sym', typeflag: TYPE.SYMLINK, linkname: 'newfile', mtime: 1 } },
      // Docker chmods the linked inode to a hard link's mode: the same as newfile's.
      { header: { name: 'hard', typeflag: TYPE.LINK, linkname: 'newfile', mode: 0o640 } },
      file('bin/.wh.hard1', ''),
    ])
    const summary = await summarize(tar)
    assert.equal(await d.applyDiff('layer', 'base', chunksOf(tar)), layerSize(summary))
    assert.equal(summary.headerSize, 9 + 5 + 9)
    const tree = await inLayer(d, 'layer', (root) => {
      assert.equal(readFileSync(join(root, 'etc/hosts'), 'utf8'), 'replaced\n')
      assert.deepEqual(readdirSync(join(root, 'var')), ['new'])
      assert.equal(lstatSync(join(root, 'newfile')).ino, lstatSync(join(root, 'hard')).ino)
      return snapshot(root)
    })
    for (const gone of ['etc/passwd', 'bin/hard1', 'var/lib', 'var/log'])
      assert.equal(tree.has(gone), false, gone)
    if (options.layerNlink !== false) assert.equal(tree.get('bin/hard2')?.nlink, 1)
    assert.equal(tree.get('sym')?.target, 'newfile')
    const touched = (p: string): boolean =>
      /^(etc|var|bin)(\/|$)/.test(p) || ['newfile', 'sym', 'hard'].includes(p)
    assert.deepEqual(
      treeDiff(without(base, touched), without(tree, touched), { dirMtime: true }),
      [],
    )
    assert.deepEqual(await changeList(d, 'layer', 'base'), [
      ['/bin', 'C'],
      ['/bin/hard1', 'D'],
      ['/etc', 'C'],
      ['/etc/hosts', 'C'],
      ['/etc/passwd', 'D'],
      ['/hard', 'A'],
      ['/newfile', 'A'],
      ['/sym', 'A'],
      ['/var', 'C'],
      ['/var/lib', 'D'],
      ['/var/log', 'D'],
      ['/var/new', 'A'],
    ])
    assert.deepEqual(treeDiff(base, await inLayer(d, 'base', snapshot), { dirMtime: true }), [])
  })

  void test(`deep chains: ${depth} layers, each adding files and deleting one (graphtest DeepLayerRead)`, async (t) => {
    const d = await setup(t, make)
    const pad = (i: number): string => String(i).padStart(3, '0')
    for (let i = 0; i < depth; i++) {
      const id = `layer-${pad(i)}`
      const parent = i === 0 ? undefined : `layer-${pad(i - 1)}`
      await d.create(id, parent)
      const entries = [file(`keep-${pad(i)}`, `keep ${i}\n`), file(`file-${pad(i)}`, `file ${i}`)]
      if (i > 0) entries.push(file(`.wh.file-${pad(i - 1)}`, ''))
      const tar = await tarOf(entries)
      assert.equal(await d.applyDiff(id, parent, chunksOf(tar)), layerSize(await summarize(tar)))
    }
    for (let i = 0; i < depth; i++) {
      const id = `layer-${pad(i)}`
      const expected = [`file-${pad(i)}`]
      for (let k = 0; k <= i; k++) expected.push(`keep-${pad(k)}`)
      const names = await inLayer(d, id, (root) => {
        for (let k = 0; k <= i; k++)
          assert.equal(readFileSync(join(root, `keep-${pad(k)}`), 'utf8'), `keep ${k}\n`)
        return readdirSync(root).sort()
      })
      assert.deepEqual(names, expected.sort(), id)
      if (i === 0) continue
      assert.deepEqual(await changeList(d, id, `layer-${pad(i - 1)}`), [
        [`/file-${pad(i - 1)}`, 'D'],
        [`/file-${pad(i)}`, 'A'],
        [`/keep-${pad(i)}`, 'A'],
      ])
    }
    for (let i = depth - 1; i >= 0; i--) await d.remove(`layer-${pad(i)}`)
  })

  void test(`a layer of ${many} files: a child holds them all, changes nothing, diffs to an empty tar`, async (t) => {
    const d = await setup(t, make)
    const entries: TarWriteEntry[] = []
    for (let i = 0; i < many; i++) {
      if (i % 100 === 0) entries.push(dir(`d${String(i / 100).padStart(2, '0')}/`))
      entries.push(file(`d${String(Math.floor(i / 100)).padStart(2, '0')}/f${i}`, `${i}\n`))
    }
    const tar = await tarOf(entries)
    await d.create('many', undefined)
    assert.equal(
      await d.applyDiff('many', undefined, chunksOf(tar)),
      layerSize(await summarize(tar)),
    )
    await d.createReadWrite('child', 'many')
    const parent = await inLayer(d, 'many', snapshot)
    assert.equal(parent.size, entries.length)
    assert.deepEqual(treeDiff(parent, await inLayer(d, 'child', snapshot), { dirMtime: true }), [])
    assert.deepEqual(await d.changes('child', 'many'), [])
    assert.equal(await d.diffSize('child', 'many'), 0)
    const diff = await readAll(await d.diff('child', 'many'))
    assert.deepEqual(diff, Buffer.alloc(END_OF_ARCHIVE_SIZE))
  })
}
