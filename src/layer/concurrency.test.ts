/**
 * Several processes on one root at once (issue "LayerStore": two to eight processes
 * registering and releasing overlapping chains): the final state equals what the same
 * operations give in one process.
 *
 * Each worker (src/testing/store-worker.ts) registers two chains, layer by layer, built from
 * a shared pool of tars, so that workers race to register the same layers (the same 1 MiB
 * base, the same middle layers, whole chains), and deletes layers of its own on top of shared
 * ones (release, detach + remove, a layer held twice, removals refused while in use). All
 * workers wait for one start signal. The same plans are then run one after another in one
 * process on a fresh root, and the two roots must agree: every operation's result, the
 * records on disk, the store a fresh open loads, and no leftovers (no write set, no
 * `-removing` record, no in-flight marker, exactly one driver directory per layer), on vfs and
 * on overlay2.
 *
 * Handles belong to the process that got them (SPEC.md §2, counts derived from holds): a
 * release in one process does not see the handles of another. So the plans never delete a
 * layer that another worker registers: what a deletion removes is decided by what the
 * deleting process holds, and the result is the same in every interleaving. The last tests
 * are the cross-process cases where that alone is not enough: a parent deleted during a
 * register, a layer deleted and registered again, an export of a layer deleted meanwhile.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LayerStore } from './layer-store.js'
import type { Layer } from './types.js'
import { scratch } from '../testing/corpus.js'
import { driversUnderTest } from '../testing/drivers.js'
import { writeTar } from '../tar/writer.js'
import { poolTar, runOps, type Op, type WorkerReport } from '../testing/store-worker.js'

const WORKER = fileURLToPath(new URL('../testing/store-worker.js', import.meta.url))

/** The chains workers keep, as indexes into the tar pool (src/testing/store-worker.ts). */
const KEPT: readonly (readonly number[])[] = [
  [0, 2, 3],
  [0, 2, 4, 5],
  [0, 6, 7, 10], // ends with the empty layer
  [1, 2, 3], // the same tars as chain 0 on another base: other ChainIDs, same DiffIDs
  [0, 2, 3, 8, 9], // chain 0, extended
  [1, 6],
]

function registerChain(ops: Op[], c: number): void {
  KEPT[c]!.forEach((tar, i) => {
    const key = `k${String(c)}.${String(i)}`
    ops.push(
      i === 0
        ? { op: 'register', key, tar }
        : { op: 'register', key, tar, parent: `k${String(c)}.${String(i - 1)}` },
    )
  })
}

/**
 * Worker `w`'s operations. Kept layers are shared between workers and never deleted; the
 * layers it deletes (tars 100 + 10w + k) are its own, and what each deletion removes is
 * decided by this worker's own holds and by children on disk.
 */
function plan(w: number): Op[] {
  const ops: Op[] = []
  const a = w % KEPT.length
  const b = (w + 3) % KEPT.length
  const k = (c: number, i: number): string => `k${String(c)}.${String(i)}`
  const lastA = KEPT[a]!.length - 1
  const lastB = KEPT[b]!.length - 1
  const u = 100 + 10 * w
  registerChain(ops, a)
  // The same layer twice: one layer, two holds; releasing one deletes nothing.
  ops.push({ op: 'register', key: k(a, lastA), tar: KEPT[a]![lastA]!, parent: k(a, lastA - 1) })
  ops.push({ op: 'release', key: k(a, lastA) })
  // Two layers of its own on its leaf: releasing the top one deletes both, not the leaf.
  ops.push({ op: 'register', key: 'u1', tar: u + 1, parent: k(a, lastA) })
  ops.push({ op: 'register', key: 'u2', tar: u + 2, parent: 'u1' })
  ops.push({ op: 'release', key: 'u1' })
  ops.push({ op: 'release', key: 'u2' })
  registerChain(ops, b)
  // Holds on layers with children go: nothing is deleted.
  for (const [c, last] of [
    [a, lastA],
    [b, lastB],
  ] as const)
    for (let i = 0; i < last; i++) ops.push({ op: 'release', key: k(c, i) })
  // As the CLI does it: register, detach, rm. The parent stays (it has a child on disk).
  ops.push({ op: 'register', key: 'v1', tar: u + 3, parent: k(b, lastB - 1) })
  ops.push({ op: 'detach', key: 'v1' })
  ops.push({ op: 'remove', key: 'v1' })
  // Held twice by this process: the second release deletes it.
  ops.push({ op: 'register', key: 'w1', tar: u + 4, parent: k(b, 0) })
  ops.push({ op: 'register', key: 'w1', tar: u + 4, parent: k(b, 0) })
  ops.push({ op: 'release', key: 'w1' })
  ops.push({ op: 'release', key: 'w1' })
  // Removals refused: a handle of this process, a child layer.
  ops.push({ op: 'register', key: 'z', tar: u + 5, parent: k(b, lastB) })
  ops.push({ op: 'remove', key: 'z' })
  ops.push({ op: 'release', key: 'z' })
  ops.push({ op: 'remove', key: k(a, 0) })
  return ops
}

/** Runs one worker per plan on `root`, all started by one signal; returns their reports. */
async function runWorkers(root: string, driver: string, plans: Op[][]): Promise<WorkerReport[]> {
  const goFile = join(root, '..', 'go')
  const ready: Promise<void>[] = []
  const done: Promise<WorkerReport>[] = []
  plans.forEach((ops, w) => {
    const planPath = join(root, '..', `plan-${String(w)}.json`)
    writeFileSync(planPath, JSON.stringify(ops))
    const child = spawn(process.execPath, [WORKER, root, driver, planPath, goFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    let onReady!: () => void
    ready.push(new Promise((r) => (onReady = r)))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.startsWith('ready\n')) onReady()
    })
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    done.push(
      new Promise((resolve, reject) => {
        child.on('error', reject)
        child.on('close', (code, signal) => {
          onReady() // a worker that died before it was ready must not hold the others
          const line = out.split('\n')[1]
          if (code !== 0 || line === undefined)
            reject(new Error(`worker ${String(w)} failed (${String(code ?? signal)}): ${err}`))
          else resolve(JSON.parse(line) as WorkerReport)
        })
      }),
    )
  })
  await Promise.all(ready)
  writeFileSync(goFile, '')
  return Promise.all(done)
}

function list(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).sort() : []
}

const readOpt = (path: string): string | undefined =>
  existsSync(path) ? readFileSync(path, 'utf8') : undefined

/**
 * The store's files, checked for leftovers, as a comparable description (cache ids are
 * random, so they are left out once checked).
 */
function diskState(root: string, driver = 'vfs'): string[] {
  const layerdb = join(root, 'image', driver, 'layerdb')
  assert.deepEqual(list(join(layerdb, 'tmp')), [], 'a write set (or other work) is left in tmp/')
  assert.deepEqual(list(join(root, 'layerstore', 'inflight')), [], 'an in-flight marker is left')
  assert.deepEqual(list(join(layerdb, 'mounts')), [])
  const names = list(join(layerdb, 'sha256'))
  assert.deepEqual(
    names.filter((n) => !/^[0-9a-f]{64}$/.test(n)),
    [],
    'a -removing record (or a stray file) is left',
  )
  const cacheIds: string[] = []
  const out = names.map((hex) => {
    const dir = join(layerdb, 'sha256', hex)
    cacheIds.push(readFileSync(join(dir, 'cache-id'), 'utf8'))
    return JSON.stringify([
      `sha256:${hex}`,
      readFileSync(join(dir, 'diff'), 'utf8'),
      readFileSync(join(dir, 'size'), 'utf8'),
      readOpt(join(dir, 'parent')) ?? null,
    ])
  })
  assert.deepEqual(
    driver === 'vfs'
      ? list(join(root, 'vfs', 'dir'))
      : list(join(root, driver)).filter((n) => n !== 'l'),
    [...cacheIds].sort(),
    `${driver} directories are not exactly one per layer record`,
  )
  return out
}

/** The layers a fresh open loads (it must load every record without a warning). */
async function freshState(
  root: string,
  driver = 'vfs',
): Promise<{ store: LayerStore; layers: string[] }> {
  const warnings: string[] = []
  const store = await LayerStore.open({
    root,
    driver,
    onWarning: (code, message) => warnings.push(`${code}: ${message}`),
  })
  assert.deepEqual(warnings, [])
  const layers = [...store.map().values()]
    .map((l) =>
      JSON.stringify([l.chainId, l.diffId, l.diffSize, l.size, l.parent?.chainId ?? null]),
    )
    .sort()
  return { store, layers }
}

async function exportsMatch(store: LayerStore): Promise<void> {
  for (const info of store.map().values()) {
    const l: Layer = await store.get(info.chainId)
    const hash = createHash('sha256')
    for await (const c of l.tarStream()) hash.update(c as Buffer)
    assert.equal(`sha256:${hash.digest('hex')}`, l.diffId, `${l.chainId} exports other bytes`)
    store.detach(l)
  }
}

/** Pairs of registrations of the same layer by two workers whose calls overlapped in time. */
function registerRaces(reports: readonly WorkerReport[]): number {
  let races = 0
  reports.forEach((a, i) => {
    for (const b of reports.slice(i + 1))
      for (const x of a.results)
        for (const y of b.results)
          if (
            x.op.startsWith('register') &&
            y.op.startsWith('register') &&
            x.result === y.result &&
            x.t0 < y.t1 &&
            y.t0 < x.t1
          )
            races++
  })
  return races
}

/**
 * Where the roots go: a tmpfs when we may mount one (as root), else a scratch directory. Every
 * registration ends with a syncfs of the root's filesystem; on a disk other tests are writing
 * to, those waits, not the store, would set the run time.
 */
let workBase: Promise<{ dir: string; mounted: boolean }> | undefined
let unmountBase: (() => Promise<void>) | undefined
after(async () => {
  await unmountBase?.()
})

async function workDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  workBase ??= (async () => {
    const { dir, remove } = await scratch('layerstore-conc-')
    let mounted = false
    if (process.getuid?.() === 0) {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=0755', 'tmpfs', dir], {
          stdio: 'pipe',
        })
        mounted = true
      } catch {
        // not allowed here (a container without CAP_SYS_ADMIN): the disk will do
      }
    }
    unmountBase = async () => {
      if (mounted)
        try {
          execFileSync('umount', [dir], { stdio: 'pipe' })
        } catch {
          execFileSync('umount', ['-l', dir], { stdio: 'pipe' }) // still busy: detach it
        }
      await remove()
    }
    return { dir, mounted }
  })()
  const sub = await mkdtemp(join((await workBase).dir, prefix))
  return { dir: sub, remove: () => rm(sub, { recursive: true, force: true }) }
}

const COUNTS = [2, 4, 8] as const

interface Reference {
  readonly results: string[][]
  readonly disk: string[]
  readonly layers: string[]
}

/**
 * The same plans one after another in one process, on one root: the state after the first
 * 2, 4 and 8 plans (a worker's results do not depend on the others, so one run serves all).
 */
async function runSequential(root: string, driver: string): Promise<Map<number, Reference>> {
  const store = await LayerStore.open({ root, driver })
  const out = new Map<number, Reference>()
  const results: string[][] = []
  for (let w = 0; w < Math.max(...COUNTS); w++) {
    results.push((await runOps(store, plan(w))).map((r) => r.result))
    if ((COUNTS as readonly number[]).includes(w + 1))
      out.set(w + 1, {
        results: [...results],
        disk: diskState(root, driver),
        layers: (await freshState(root, driver)).layers,
      })
  }
  return out
}

const references = new Map<string, Promise<Map<number, Reference>>>()

for (const { name: driver, skip } of driversUnderTest())
  for (const n of COUNTS) {
    test(
      `${driver}: ${String(n)} processes registering and releasing overlapping chains at once end as one process does`,
      { skip: skip ?? false },
      async (t) => {
        const plans = Array.from({ length: n }, (_, w) => plan(w))

        let reference = references.get(driver)
        if (reference === undefined) {
          reference = (async () => {
            const { dir, remove } = await workDir('seq-')
            try {
              return await runSequential(join(dir, 'root'), driver)
            } finally {
              await remove()
            }
          })()
          references.set(driver, reference)
        }
        const seq = (await reference).get(n)!

        const { dir, remove } = await workDir('run-')
        t.after(remove)
        const root = join(dir, 'root')
        const began = Date.now()
        const reports = await runWorkers(root, driver, plans)
        const elapsed = Date.now() - began

        // They ran at once: every worker started before any finished, and registrations raced.
        const lastStart = Math.max(...reports.map((r) => r.start))
        const firstEnd = Math.min(...reports.map((r) => r.end))
        assert.ok(
          lastStart < firstEnd,
          `workers did not overlap: ${String(lastStart - firstEnd)} ms`,
        )
        const races = registerRaces(reports)
        // Two workers share only their first layers: a descheduled one may miss them.
        if (n >= 4) assert.ok(races > 0, 'no two registrations of the same layer overlapped')
        const fs = (await workBase!).mounted ? 'tmpfs' : 'disk'
        t.diagnostic(
          `${String(n)} workers on ${fs}: ${String(elapsed)} ms, ${String(races)} overlapping registrations`,
        )

        // Every operation gave what it gives in one process.
        assert.deepEqual(
          reports.map((r) => r.results.map((x) => x.result)),
          seq.results,
        )
        assert.deepEqual(diskState(root, driver), seq.disk)
        const fresh = await freshState(root, driver)
        assert.deepEqual(fresh.layers, seq.layers)
        // The kept chains are all there, and nothing else.
        const kept = new Set(plans.flatMap((_, w) => [w % KEPT.length, (w + 3) % KEPT.length]))
        const expected = new Set<string>()
        for (const c of kept) {
          let parent: string | undefined
          for (const tar of KEPT[c]!) {
            const hash = createHash('sha256')
            for await (const chunk of poolTar(tar)) hash.update(chunk)
            const diffId = `sha256:${hash.digest('hex')}`
            parent =
              parent === undefined
                ? diffId
                : `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}`
            expected.add(parent)
          }
        }
        assert.deepEqual([...fresh.store.map().keys()].sort(), [...expected].sort())
        await exportsMatch(fresh.store)
      },
    )
  }

// ---- known cross-process failures ------------------------------------------------------------
// Two LayerStore instances on one root stand for two processes: each has its own view and its
// own handles, and they share the file lock as processes do. Deterministic, unlike a race.

const small = (name: string): AsyncIterable<Uint8Array> =>
  writeTar([{ header: { name, mode: 0o644, mtime: 1_600_000_000 }, body: Buffer.from(name) }])

async function twoStores(t: { after: (fn: () => Promise<void>) => void }): Promise<{
  root: string
  a: LayerStore
  b: LayerStore
}> {
  const { dir, remove } = await scratch('layerstore-conc-todo-')
  t.after(remove)
  const a = await LayerStore.open({ root: dir, driver: 'vfs' })
  const b = await LayerStore.open({ root: dir, driver: 'vfs' })
  return { root: dir, a, b }
}

test('a parent that another process deletes while a child is registered on it: no record is left without its parent', async (t) => {
  const { root, a, b } = await twoStores(t)
  const parent = await a.register(small('p'))
  let go!: () => void
  let started!: () => void
  const gate = new Promise<void>((r) => (go = r))
  const applying = new Promise<void>((r) => (started = r))
  const slow = async function* (): AsyncGenerator<Uint8Array> {
    started() // b holds the parent, has copied it and is applying its layer
    await gate
    yield* small('c')
  }
  const child = b.register(slow(), parent.chainId)
  await applying
  await a.release(parent) // a's view: no child, no handle of a
  go()
  const registered = await child.then(
    (l) => l.chainId,
    (err: unknown) => err,
  )
  const warnings: string[] = []
  const fresh = await LayerStore.open({
    root,
    driver: 'vfs',
    onWarning: (code, message) => warnings.push(`${code}: ${message}`),
  })
  assert.deepEqual(warnings, [])
  // Either the registration failed and left nothing, or the child is there with its parent.
  if (typeof registered === 'string') {
    assert.equal(fresh.map().get(registered as never)?.parent?.chainId, parent.chainId)
  } else {
    assert.ok(typeof (registered as { code?: unknown }).code === 'string', String(registered))
    assert.deepEqual(diskState(root), [])
  }
})

test('a layer deleted and registered again by another process is seen anew, not as the deleted copy', async (t) => {
  const { a, b } = await twoStores(t)
  const x1 = await a.register(small('x'))
  b.detach(await b.get(x1.chainId)) // b's view now has x
  await a.release(x1) // deleted
  const x2 = await a.register(small('x')) // the same ChainID, new files
  const seen = await b.get(x2.chainId)
  assert.equal(seen.cacheId, x2.cacheId)
  const child = await b.register(small('y'), x2.chainId)
  assert.equal(child.parent?.chainId, x2.chainId)
})

test('a release through a stale view leaves no driver directory without a record', async (t) => {
  const { root, a, b } = await twoStores(t)
  const x1 = await a.register(small('x'))
  const held = await b.get(x1.chainId)
  await a.release(x1)
  const x2 = await a.register(small('x'))
  // b's handle held the layer a deleted; the layer a registered again is another one.
  assert.deepEqual(await b.release(held), [])
  a.detach(x2)
  assert.equal(diskState(root).length, 1, 'the new record and its directory stay, nothing else')
})

test('exporting a layer another process deleted fails with a coded error instead of crashing the process', async (t) => {
  const { dir, remove } = await scratch('layerstore-conc-todo-')
  t.after(remove)
  const store = new URL('./layer-store.js', import.meta.url).href
  const writer = new URL('../tar/writer.js', import.meta.url).href
  const script = `
      import { LayerStore } from ${JSON.stringify(store)}
      import { writeTar } from ${JSON.stringify(writer)}
      import { buffer } from 'node:stream/consumers'
      const root = process.argv[1]
      const tar = writeTar([{ header: { name: 'x', mode: 0o644, mtime: 1 }, body: Buffer.from('x') }])
      const a = await LayerStore.open({ root, driver: 'vfs' })
      const b = await LayerStore.open({ root, driver: 'vfs' })
      const x = await a.register(tar)
      const held = await b.get(x.chainId)
      await a.release(x)
      const r = await buffer(held.tarStream()).then(() => 'resolved', (e) => 'rejected ' + e.code)
      console.log(r)
    `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, dir], {
    encoding: 'utf8',
  })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^rejected [A-Z_]+\n$/)
})
