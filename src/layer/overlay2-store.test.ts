/**
 * The layer store on overlay2 against the same store on vfs (issue "overlay2"): every corpus
 * chain and a 125-layer chain give the same trees through either driver (`nlink` aside:
 * overlayfs shows a lower file's own link count), and a container's changes read from its
 * upper directory (native diff) equal the naive comparison of mounted trees, down to the
 * bytes of the diff.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chmodSync, mkdirSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { createOverlay2Driver } from '../drivers/overlay2.js'
import { TYPE, writeTar, type TarWriteEntry } from '../tar/index.js'
import { chains, layerStream } from '../testing/chains.js'
import { hasCorpus, scratch } from '../testing/corpus.js'
import { overlayUnsupported } from '../testing/overlay-mount.js'
import { compareTrees, snapshot, type TreeEntry } from '../testing/tree.js'
import { LayerStore } from './layer-store.js'
import type { ChainId } from '../digest/digest.js'
import type { Layer, RwLayer } from './types.js'

const skip = overlayUnsupported()

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** A store on each driver, on fresh roots, closed and removed after the test. */
async function bothStores(
  t: import('node:test').TestContext,
): Promise<{ overlay2: LayerStore; vfs: LayerStore; root: string }> {
  const { dir, remove } = await scratch('layerstore-ovl-store-')
  const overlay2 = await LayerStore.open({ root: join(dir, 'o'), driver: 'overlay2' })
  const vfs = await LayerStore.open({ root: join(dir, 'v'), driver: 'vfs' })
  t.after(async () => {
    await overlay2.cleanup() // unmount before deleting
    await remove()
  })
  return { overlay2, vfs, root: join(dir, 'o') }
}

async function exportsExactly(layer: Layer): Promise<void> {
  assert.equal(sha256(await buffer(layer.tarStream())), layer.diffId, `export of ${layer.chainId}`)
}

/**
 * 'exact', or the code the export fails with: a layer whose tar deletes a file it also adds
 * (a whiteout after the file, Docker's semantics) cannot give the file's bytes back.
 */
async function exportOutcome(layer: Layer): Promise<string> {
  try {
    return sha256(await buffer(layer.tarStream())) === layer.diffId ? 'exact' : 'different'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

/** The tree a RW layer on `top` shows, mounted. */
async function mountedTree(store: LayerStore, name: string, top: ChainId): Promise<TreeEntry[]> {
  const rw = await store.createRwLayer(name, top)
  try {
    const root = await rw.mount()
    try {
      return snapshot(root)
    } finally {
      await rw.unmount()
    }
  } finally {
    await store.releaseRwLayer(rw)
  }
}

test(
  'every corpus chain registers on overlay2 to the tree it gives on vfs and exports exactly',
  { skip: skip ?? (hasCorpus() ? false : 'no corpus') },
  async (t) => {
    for (const chain of chains()) {
      await t.test(chain.chain, async (tt) => {
        const { overlay2, vfs } = await bothStores(tt)
        let o: Layer | undefined
        let v: Layer | undefined
        for (const layer of chain.layers) {
          o = await overlay2.register(layerStream(layer.file), o?.chainId)
          v = await vfs.register(layerStream(layer.file), v?.chainId)
          assert.equal(o.chainId, v.chainId)
          assert.equal(await exportOutcome(o), await exportOutcome(v), 'export as on vfs')
          if (chain.chain !== 'readd-then-whiteout-same-layer') await exportsExactly(o)
        }
        const onOverlay = await mountedTree(overlay2, 'c', o!.chainId)
        const onVfs = await mountedTree(vfs, 'c', v!.chainId)
        const options = { unspecifiedMtime: chain.unspecified_dir_mtime ?? [], ignoreNlink: true }
        assert.deepEqual(compareTrees(onVfs, onOverlay, options), [], 'vs vfs')
        assert.deepEqual(compareTrees(chain.expected.tree!, onOverlay, options), [], 'vs expected')
      })
    }
  },
)

const T = 1_650_000_000
const DEPTH = 125

/** Layer i of the deep chain: adds files and a directory, deletes files of earlier layers. */
function deepLayer(i: number): TarWriteEntry[] {
  const dir = (name: string): TarWriteEntry => ({
    header: { name, typeflag: TYPE.DIR, mode: 0o755, mtime: T + i },
  })
  const file = (name: string, data: string, mode = 0o644): TarWriteEntry => ({
    header: { name, mode, mtime: T + i },
    body: Buffer.from(data),
  })
  const out = [dir(`d${i % 7}/`), file(`d${i % 7}/f${i}`, `layer ${i}\n`), dir(`own${i}/`)]
  out.push(file(`own${i}/a`, 'a'.repeat(i)), file(`own${i}/b`, `b${i}`, 0o600))
  if (i > 0) out.push(dir(`d${(i - 1) % 7}/`), file(`d${(i - 1) % 7}/.wh.f${i - 1}`, ''))
  if (i > 2 && i % 3 === 0) out.push(file(`.wh.own${i - 3}`, '')) // a whole directory
  if (i > 0 && i % 10 === 0) out.push(dir(`own${i - 1}/`), file(`own${i - 1}/.wh..wh..opq`, ''))
  return out
}

/** The container's writes: new, changed, chmod'ed, deleted, a directory emptied and re-made. */
function containerWrites(root: string): void {
  writeFileSync(join(root, 'new-file'), 'new')
  mkdirSync(join(root, 'new-dir', 'deeper'), { recursive: true })
  writeFileSync(join(root, 'new-dir', 'deeper', 'x'), 'x')
  writeFileSync(join(root, 'own121', 'a'), 'rewritten') // from near the top
  writeFileSync(join(root, 'own100', 'b'), 'b100 changed') // from deep down
  chmodSync(join(root, 'own50', 'a'), 0o600)
  unlinkSync(join(root, 'own52', 'b'))
  rmSync(join(root, 'own53'), { recursive: true })
  rmSync(join(root, 'own55'), { recursive: true })
  mkdirSync(join(root, 'own55')) // emptied and made again: opaque in the upper directory
  writeFileSync(join(root, 'own55', 'only'), 'only this')
  unlinkSync(join(root, 'etc-init')) // written by the init layer
}

async function changeList(rw: RwLayer): Promise<string[]> {
  return (await rw.changes()).map((c) => `${c.kind} ${c.path}`)
}

test(
  `a ${DEPTH}-layer chain with init and RW layer: same tree as vfs, native diff equals naive, commit exports exactly`,
  { skip: skip ?? false, timeout: 10 * 60_000 },
  async (t) => {
    const { overlay2, vfs, root } = await bothStores(t)
    let o: Layer | undefined
    let v: Layer | undefined
    for (let i = 0; i < DEPTH; i++) {
      const tar = await buffer(Readable.from(writeTar(deepLayer(i))))
      o = await overlay2.register(Readable.from([tar]), o?.chainId)
      v = await vfs.register(Readable.from([tar]), v?.chainId)
      assert.equal(o.chainId, v.chainId)
    }
    await assert.rejects(overlay2.register(Readable.from([Buffer.alloc(1024)]), o!.chainId), {
      code: 'MAX_DEPTH_EXCEEDED',
    })
    const initFunc = (dir: string): void => {
      writeFileSync(join(dir, 'etc-init'), 'init')
      utimesSync(join(dir, 'etc-init'), T, T)
    }
    const ro = await overlay2.createRwLayer('c', o!.chainId, { initFunc })
    const rv = await vfs.createRwLayer('c', v!.chainId, { initFunc })
    const mo = await ro.mount()
    const mv = await rv.mount()
    assert.deepEqual(compareTrees(snapshot(mv), snapshot(mo), { ignoreNlink: true }), [])
    containerWrites(mo)
    containerWrites(mv)
    // The writes happened at two moments: their times differ, nothing else may.
    const untimed = (tree: TreeEntry[]): TreeEntry[] =>
      tree.map(({ mtime: _s, mtime_nsec: _ns, ...rest }) => rest)
    assert.deepEqual(
      compareTrees(untimed(snapshot(mv)), untimed(snapshot(mo)), { ignoreNlink: true }),
      [],
    )
    assert.equal(
      overlay2.driverStatus().status.find(([k]) => k === 'Native Overlay Diff')?.[1],
      'true',
    )

    // Native (upper directory) against naive (two mounts compared) on the same root.
    const naive = await createOverlay2Driver(root, { naive: true })
    const ids = overlay2.rwLayers().find((r) => r.name === 'c')!
    const initId = `${ids.mountId}-init`
    const naiveChanges = (await naive.changes(ids.mountId, initId)).map(
      (c) => `${c.kind} ${c.path}`,
    )
    assert.deepEqual(await changeList(ro), naiveChanges)
    assert.deepEqual(await changeList(ro), await changeList(rv))
    assert.ok(naiveChanges.includes('D /own52/b') && naiveChanges.includes('D /etc-init'))
    const nativeTar = await buffer(await ro.tarStream())
    const naiveTar = await buffer(await naive.diff(ids.mountId, initId))
    assert.ok(nativeTar.equals(naiveTar), 'the native diff is byte for byte the naive one')
    assert.equal(await ro.size(), await naive.diffSize(ids.mountId, initId))

    await ro.unmount()
    await rv.unmount()
    // Committed on the 125th layer it would be the 126th: refused, as Docker does. The same
    // container on the 124th layer commits to the deepest layer there may be.
    await assert.rejects(overlay2.register(Readable.from([nativeTar]), o!.chainId), {
      code: 'MAX_DEPTH_EXCEEDED',
    })
    const below = o!.parent!.chainId
    const r124 = await overlay2.createRwLayer('c124', below, { initFunc })
    const v124 = await vfs.createRwLayer('c124', below, { initFunc })
    containerWrites(await r124.mount())
    containerWrites(await v124.mount())
    await r124.unmount()
    await v124.unmount()
    const committed = await overlay2.register(await r124.tarStream(), below)
    await exportsExactly(committed)
    const fromVfs = await vfs.register(await v124.tarStream(), below)
    assert.deepEqual(
      [
        await exportOutcome(fromVfs),
        fromVfs.diffSize,
        (await committed.metadata())['UpperDir'] !== undefined,
      ],
      ['exact', committed.diffSize, true],
    )
  },
)
