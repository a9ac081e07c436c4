/**
 * Full disk (issue "LayerStore"): registering onto a small filesystem fails with a clear,
 * coded error and leaves the store as it was; once there is room again, registering works.
 *
 * The store lives on a tmpfs of 4 MiB mounted for the test (root only; skipped otherwise).
 * tmpfs counts file data in whole 4 KiB pages and directories not at all, so a disk filled
 * with a filler file and then given back exactly k pages fails a registration at the same
 * stage every time: copying the parent, applying the layer, writing its tar-split metadata or
 * writing its record.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import {
  closeSync,
  existsSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statfsSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { LayerStore } from './layer-store.js'
import type { Layer } from './types.js'
import { StoreError } from '../errors.js'
import { writeTar } from '../tar/writer.js'
import { scratch } from '../testing/corpus.js'

const PAGE = 4096

/** The codes docs/errors.md gives for a filesystem that refuses a write while registering. */
const IO_CODES = ['ARCHIVE_APPLY_FAILED', 'DRIVER_IO_FAILED', 'METADATA_IO_FAILED']

/** A tmpfs of `size` mounted for the test and unmounted after it; undefined when skipped. */
async function tmpfs(t: TestContext, size: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('mounting a tmpfs needs root')
    return undefined
  }
  const { dir, remove } = await scratch('layerstore-full-disk-')
  const mnt = join(dir, 'mnt')
  mkdirSync(mnt)
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', mnt], {
      stdio: 'pipe',
    })
  } catch (err) {
    await remove()
    const why = String((err as { stderr?: unknown }).stderr ?? err).trim()
    t.skip(`cannot mount a tmpfs: ${why.split('\n')[0] ?? ''}`)
    return undefined
  }
  t.after(async () => {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' })
    } catch {
      execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }) // something still holds it: detach
    }
    await remove()
  })
  return mnt
}

async function tarOf(entries: [string, string][]): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of writeTar(
    entries.map(([name, body]) => ({
      header: { name, mode: 0o644, mtime: 1_600_000_000 },
      body: Buffer.from(body),
    })),
  ))
    chunks.push(c)
  return Buffer.concat(chunks)
}

function source(data: Uint8Array): AsyncIterable<Uint8Array> {
  return (async function* () {
    yield await Promise.resolve(data)
  })()
}

/** A tar of one `size`-byte file, produced 64 KiB at a time as it is read. */
function bigTar(size: number): AsyncIterable<Uint8Array> {
  return writeTar([
    {
      header: { name: 'big', mode: 0o644, mtime: 1_600_000_000, size },
      body: (function* () {
        for (let off = 0; off < size; off += 65_536)
          yield Buffer.alloc(Math.min(65_536, size - off), off / 65_536)
      })(),
    },
  ])
}

/** Every name under `root` with its type and, for files, size. */
function listing(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const st = lstatSync(join(dir, name))
      out.push(`${rel}${name} ${st.isDirectory() ? 'dir' : String(st.size)}`)
      if (st.isDirectory()) walk(join(dir, name), `${rel}${name}/`)
    }
  }
  walk(root, '')
  return out
}

/** What must not change when a registration fails. */
async function state(store: LayerStore, root: string): Promise<unknown> {
  const layers = (s: LayerStore): string[] =>
    [...s.map().values()]
      .map((l) => `${l.chainId} ${l.diffId} ${String(l.size)} ${l.parent?.chainId ?? '-'}`)
      .sort()
  const fresh = await LayerStore.open({ root, driver: 'vfs' })
  return {
    map: layers(store),
    fresh: layers(fresh),
    layerdb: listing(join(root, 'image', 'vfs', 'layerdb')),
    vfs: listing(join(root, 'vfs', 'dir')),
    inflight: existsSync(join(root, 'layerstore', 'inflight'))
      ? readdirSync(join(root, 'layerstore', 'inflight'))
      : [],
  }
}

/** The error is a coded store error of a documented kind that says the disk is full. */
function assertNoSpace(err: unknown): true {
  assert.ok(err instanceof StoreError, `not a coded store error: ${String(err)}`)
  assert.ok(IO_CODES.includes(err.code), `unexpected code ${err.code}: ${err.message}`)
  assert.match(err.message, /ENOSPC|no space/i)
  const cause = (err.cause as { code?: unknown } | undefined)?.code
  if (cause !== undefined) assert.equal(cause, 'ENOSPC')
  return true
}

async function assertExports(layer: Layer, tar: Buffer): Promise<void> {
  assert.deepEqual(await buffer(layer.tarStream()), tar)
}

/** Fills the filesystem of `mnt` with a file, then gives back `pages` pages of it. */
function fill(mnt: string, pages: number): { free: () => void } {
  const path = join(mnt, 'filler')
  const fd = openSync(path, 'w')
  const chunk = Buffer.alloc(PAGE, 0xa5)
  let size = 0
  try {
    for (;;) size += writeSync(fd, chunk)
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOSPC') throw err
  }
  ftruncateSync(fd, Math.max(0, size - pages * PAGE))
  closeSync(fd)
  assert.equal(statfsSync(mnt).bfree, pages, 'the filler did not leave the pages asked for')
  return { free: () => rmSync(path) }
}

test('full disk: a layer whose data does not fit fails with ENOSPC and leaves the store as it was', async (t) => {
  const mnt = await tmpfs(t, '4m')
  if (mnt === undefined) return
  const root = join(mnt, 'root')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const tar1 = await tarOf([
    ['etc/hostname', 'small\n'],
    ['etc/motd', 'hello'],
  ])
  const l1 = await store.register(source(tar1))
  const before = await state(store, root)
  const freeBefore = statfsSync(mnt).bfree

  // 6 MB on a 4 MiB disk, on top of l1 and as a base layer.
  await assert.rejects(store.register(bigTar(6_000_000), l1.chainId), assertNoSpace)
  assert.deepEqual(await state(store, root), before)
  await assert.rejects(store.register(bigTar(6_000_000)), assertNoSpace)
  assert.deepEqual(await state(store, root), before)
  assert.equal(statfsSync(mnt).bfree, freeBefore, 'the failed layers still take space')
  await assertExports(l1, tar1)

  // There is room again: registering works, on l1 and on its own.
  const tar2 = await tarOf([['etc/motd', 'changed']])
  const l2 = await store.register(source(tar2), l1.chainId)
  await assertExports(l2, tar2)
  const l3 = await store.register(bigTar(1_000_000))
  assert.equal(l3.size, 1_000_000)
  assert.equal((await LayerStore.open({ root, driver: 'vfs' })).map().size, 3)
})

test('full disk: a layer record that cannot be written fails with METADATA_IO_FAILED and leaves the store as it was', async (t) => {
  const mnt = await tmpfs(t, '4m')
  if (mnt === undefined) return
  const root = join(mnt, 'root')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const tar1 = await tarOf([['a', 'a']])
  const l1 = await store.register(source(tar1))
  const before = await state(store, root)
  // One page: the empty base layer's tar-split metadata fits, its record's files do not.
  const filler = fill(mnt, 1)
  await assert.rejects(store.register(source(Buffer.alloc(1024))), (err) => {
    assertNoSpace(err)
    assert.equal((err as StoreError).code, 'METADATA_IO_FAILED')
    return true
  })
  assert.equal(statfsSync(mnt).bfree, 1, 'the failed registration still takes space')
  filler.free()
  assert.deepEqual(await state(store, root), before)
  await assertExports(l1, tar1)
  const empty = await store.register(source(Buffer.alloc(1024)))
  assert.equal(empty.parent, undefined)
  await assertExports(empty, Buffer.alloc(1024))
  assert.equal((await LayerStore.open({ root, driver: 'vfs' })).map().size, 2)
})

test('full disk: at every stage of a registration (parent copy, apply, tar-split, record) the store stays as it was', async (t) => {
  const mnt = await tmpfs(t, '4m')
  if (mnt === undefined) return
  const root = join(mnt, 'root')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const tar1 = await tarOf([['a', 'a']])
  const l1 = await store.register(source(tar1))
  const tar2 = await tarOf([['b', 'b']])
  const before = await state(store, root)
  const seen: string[] = []
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 16, `still failing with ${String(pages)} free pages: ${seen.join(', ')}`)
    const filler = fill(mnt, pages)
    const result = await store.register(source(tar2), l1.chainId).then(
      (l) => l,
      (err: unknown) => err,
    )
    if (!(result instanceof Error)) {
      filler.free()
      await assertExports(result as Layer, tar2)
      break
    }
    seen.push(`${String(pages)}: ${(result as { code?: string }).code ?? '?'}`)
    assertNoSpace(result)
    assert.equal(statfsSync(mnt).bfree, pages, `${String(pages)} pages: space not given back`)
    filler.free()
    assert.deepEqual(await state(store, root), before, `${String(pages)} pages`)
  }
  t.diagnostic(`failures by free pages: ${seen.join(', ')}`)
  assert.ok(seen.length >= 3, `fewer stages than expected: ${seen.join(', ')}`)
  await assertExports(l1, tar1)
})

test('full disk: tar-split metadata that cannot be written fails with a coded error', async (t) => {
  const mnt = await tmpfs(t, '4m')
  if (mnt === undefined) return
  const root = join(mnt, 'root')
  const store = await LayerStore.open({ root, driver: 'vfs' })
  const before = await state(store, root)
  const filler = fill(mnt, 0) // not a page: the empty layer's tar-split is the first write
  const err = await store.register(source(Buffer.alloc(1024))).then(
    () => undefined,
    (e: unknown) => e,
  )
  filler.free()
  assert.deepEqual(await state(store, root), before)
  assertNoSpace(err)
})
