/**
 * Crash harness of `image load` (issue 6), run per driver by src/image/crash-image-<driver>.test.ts:
 * a child process (image-crash-child.ts) loads archives, removes and tags images on one root
 * and is killed with SIGKILL at a random moment, $LAYERSTORE_CRASH_KILLS times (default 100).
 * The archives are built once, before the first kill: images sharing base layers, as
 * docker-archives (tar, directory, Docker ≤24's layout) and OCI layouts, some layers gzip.
 *
 * After each kill a fresh ImageStore opens cleanly, and after `layers.cleanup()`:
 * - nothing is left over: no journal in `layerstore/loads`, no write set, no `-removing`
 *   record, no driver directory without a record, no `*.tmp` under `image/<driver>/`, no
 *   image metadata without its configuration (and on overlay2 no dangling short link, no mount);
 * - every image has its whole chain of layers, and every layer is in some image's chain (the
 *   child registers no bare layer, so a layer outside every image is one a dead load or removal
 *   left behind);
 * - images and names are as the calls that returned left them: the one call in progress at
 *   the kill may have had its effect or not, name by name and image by image;
 * - layers export bytes that hash to their DiffIDs (a sample per kill, all of them at the end).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChainId } from '../digest/digest.js'
import { ImageStore } from '../image/image-store.js'
import { JOURNALS_DIR } from '../image/journal.js'
import { scratch } from './corpus.js'
import { driversUnderTest } from './drivers.js'
import {
  buildDockerArchive,
  buildOciLayout,
  fullName,
  makeLayerTar,
  type FixtureImage,
} from './image-archive.js'
import { danglingLinks, driverIds, listAll } from './store-crash.js'
import { runAndKill } from './run-and-kill.js'

const CHILD = fileURLToPath(new URL('./image-crash-child.js', import.meta.url))
const KILLS = Number(process.env['LAYERSTORE_CRASH_KILLS'] ?? 100)
/** Kills land this long after the child is ready, at most (its calls take tens of ms). */
const MAX_RUN_MS = 400
/** Layers hashed after each kill (all of them after the last). */
const SAMPLED_LAYERS = 3

/** An archive the parent built: what loading it must give. */
export interface CrashArchive {
  readonly path: string
  readonly images: readonly { readonly id: string; readonly tags: readonly string[] }[]
}

/** `size` deterministic bytes: half a sha256 stream (incompressible), half text. */
function content(name: string, size: number): Buffer {
  const out = Buffer.alloc(size)
  let block = createHash('sha256').update(name).digest()
  const half = size >> 1
  for (let o = 0; o < half; o += block.length) {
    block.copy(out, o, 0, Math.min(block.length, half - o))
    block = createHash('sha256').update(block).digest()
  }
  out.fill(`${name} line\n`, half)
  return out
}

/** A layer of `files` files of `size` bytes under `dir/`. */
function layer(dir: string, files: number, size: number): Promise<Buffer> {
  const entries: Record<string, Buffer> = {}
  for (let i = 0; i < files; i++) entries[`${dir}/f${i}`] = content(`${dir}/${i}`, size)
  return makeLayerTar(entries)
}

/**
 * The archives the child loads, written into `dir`: eight images over twelve layers, the
 * base layer in most of them (uncompressed in some archives, gzip in others).
 */
export async function buildCrashArchives(dir: string): Promise<CrashArchive[]> {
  const base = await layer('usr/base', 8, 96 << 10)
  const mid = await layer('usr/mid', 4, 64 << 10)
  const app = async (name: string, files: number): Promise<Buffer> =>
    layer(`app/${name}`, files, 48 << 10)
  const [a, b, c, d, e, f, o1, o2] = await Promise.all([
    app('a', 4),
    app('b', 3),
    app('c', 6),
    app('d', 2),
    app('e', 5),
    app('f', 3),
    layer('opt/one', 6, 64 << 10),
    layer('opt/two', 2, 32 << 10),
  ])
  const gz = (tar: Buffer) => ({ tar, compression: 'gzip' as const })
  const I0: FixtureImage = { layers: [base], repoTags: ['crash/base:1'] }
  const I1: FixtureImage = { layers: [base, a], repoTags: ['crash/a:1'] }
  const I2: FixtureImage = { layers: [base, mid, gz(b)], repoTags: ['crash/b:1', 'crash/b'] }
  const I3: FixtureImage = { layers: [gz(base), gz(mid), gz(c)], repoTags: ['crash/c:1'] }
  const I4: FixtureImage = { layers: [o1, gz(o2)], repoTags: ['example.com/crash/other:1'] }
  const I5: FixtureImage = { layers: [base, a, d], repoTags: ['crash/d:1'] }
  const I6: FixtureImage = { layers: [base, gz(e)] } // no name
  const I7: FixtureImage = { layers: [gz(base), f], repoTags: ['crash/a:1'] } // takes I1's name
  const built: { path: string; ids: string[]; images: FixtureImage[] }[] = []
  const add = async (
    images: FixtureImage[],
    make: (images: FixtureImage[]) => Promise<{ path: string; ids: string[] }>,
  ): Promise<void> => {
    built.push({ ...(await make(images)), images })
  }
  const at = (name: string): string => join(dir, name)
  await add([I0, I1], (i) => buildDockerArchive(at('a0.tar'), i))
  await add([I2], (i) => buildOciLayout(at('a1.tar'), i))
  await add([I3], (i) => buildDockerArchive(at('a2'), i, { tar: false }))
  await add([I4, I5], (i) => buildOciLayout(at('a3'), i, { tar: false }))
  await add([I6, I1], (i) => buildDockerArchive(at('a4.tar'), i, { legacy: true }))
  await add([I7], (i) => buildDockerArchive(at('a5.tar'), i))
  await add([I2, I3, I5], (i) => buildOciLayout(at('a6.tar'), i))
  return built.map(({ path, ids, images }) => ({
    path,
    images: images.map((img, k) => ({ id: ids[k]!, tags: (img.repoTags ?? []).map(fullName) })),
  }))
}

/** Images and names: image ID, and full name → image ID. */
interface State {
  images: Set<string>
  tags: Map<string, string>
}

type Op =
  | { kind: 'load'; archive: number }
  | { kind: 'remove'; ref: string }
  | { kind: 'tag'; id: string; target: string }

const copy = (s: State): State => ({ images: new Set(s.images), tags: new Map(s.tags) })

/** Applies a call to the model as ImageStore does it; returns the IDs it loads or deletes. */
function apply(state: State, op: Op, archives: readonly CrashArchive[]): string[] {
  switch (op.kind) {
    case 'load': {
      const images = archives[op.archive]!.images
      for (const { id, tags } of images) {
        state.images.add(id)
        for (const t of tags) state.tags.set(t, id) // a name moves to the new image
      }
      return images.map((i) => i.id)
    }
    case 'remove': {
      const byId = op.ref.startsWith('sha256:')
      const id = byId ? op.ref : state.tags.get(op.ref)
      assert.ok(id !== undefined && state.images.has(id), `the child removes ${op.ref}: unknown`)
      if (byId) {
        for (const [t, v] of state.tags) if (v === id) state.tags.delete(t)
      } else {
        state.tags.delete(op.ref)
      }
      if ([...state.tags.values()].includes(id)) return [] // untagged only
      state.images.delete(id)
      return [id]
    }
    case 'tag':
      assert.ok(state.images.has(op.id), `the child tags ${op.id}: unknown`)
      state.tags.set(op.target, op.id)
      return []
  }
}

/**
 * Replays what the child printed on `state`: every call that returned; returns the call in
 * progress at the kill, if any.
 */
function replay(lines: readonly string[], state: State, archives: readonly CrashArchive[]) {
  let pending: Op | undefined
  let loads = 0
  for (const line of lines) {
    const [what, ...args] = line.split(' ')
    switch (what) {
      case 'ready':
        break
      case 'load':
        pending = { kind: 'load', archive: Number(args[0]) }
        break
      case 'remove':
        pending = { kind: 'remove', ref: args[0]! }
        break
      case 'tag':
        pending = { kind: 'tag', id: args[0]!, target: args[1]! }
        break
      case 'loaded':
      case 'removed':
      case 'tagged': {
        assert.ok(pending !== undefined, `"${line}" without its call`)
        const ids = apply(state, pending, archives)
        if (what === 'loaded') loads++
        if (what !== 'tagged')
          assert.deepEqual(args.slice(1).sort(), [...ids].sort(), `the child's "${line}"`)
        pending = undefined
        break
      }
      default:
        assert.fail(`the child printed "${line}"`)
    }
  }
  return { pending, loads }
}

/** Files under `dir` (recursively) whose name ends in `.tmp`. */
function tmpFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...tmpFiles(join(dir, e.name)))
    else if (e.name.endsWith('.tmp')) out.push(join(dir, e.name))
  }
  return out
}

/** Checks the layers and records are consistent and nothing is left over; returns the state. */
async function checkStore(
  images: ImageStore,
  root: string,
  driver: string,
  at: string,
): Promise<State> {
  const layers = images.layers
  await layers.cleanup()
  assert.deepEqual(listAll(join(root, JOURNALS_DIR)), [], `${at}: a journal is left`)
  const imageDir = join(root, 'image', driver)
  const layerdb = join(imageDir, 'layerdb')
  assert.deepEqual(listAll(join(layerdb, 'tmp')), [], `${at}: a write set is left`)
  assert.deepEqual(
    listAll(join(layerdb, 'sha256')).filter((n) => n.endsWith('-removing')),
    [],
    `${at}: an orphan is left`,
  )
  assert.deepEqual(
    listAll(join(root, 'layerstore', 'inflight')),
    [],
    `${at}: an in-flight marker is left`,
  )
  const known = new Set([...layers.map().values()].map((l) => l.cacheId))
  assert.deepEqual(
    driverIds(root, driver).filter((id) => !known.has(id)),
    [],
    `${at}: driver directories without a record`,
  )
  if (driver === 'overlay2') {
    assert.deepEqual(danglingLinks(root), [], `${at}: short links without a layer`)
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    assert.equal(mounts.includes(root), false, `${at}: a mount is left`)
  }
  assert.deepEqual(tmpFiles(imageDir), [], `${at}: temporary files are left`)
  const content = join(imageDir, 'imagedb', 'content', 'sha256')
  assert.deepEqual(
    listAll(join(imageDir, 'imagedb', 'metadata', 'sha256')).filter(
      (hex) => !listAll(content).includes(hex),
    ),
    [],
    `${at}: image metadata without its configuration`,
  )

  const state: State = { images: new Set(), tags: new Map() }
  const used = new Set<string>()
  for (const img of images.list()) {
    state.images.add(img.id)
    for (const t of [...img.repoTags, ...img.repoDigests]) state.tags.set(t, img.id)
    for (const c of img.layers) {
      assert.ok(layers.map().has(c), `${at}: image ${img.id} lacks its layer ${c}`)
      used.add(c)
    }
  }
  const unused = [...layers.map().keys()].filter((c) => !used.has(c))
  assert.deepEqual(unused, [], `${at}: layers no image uses`)
  return state
}

/** Hashes the export of each layer in `chainIds` against its DiffID. */
async function checkExports(images: ImageStore, chainIds: readonly ChainId[], at: string) {
  for (const c of chainIds) {
    const l = await images.layers.get(c)
    const hash = createHash('sha256')
    for await (const chunk of l.tarStream()) hash.update(chunk as Buffer)
    assert.equal(
      `sha256:${hash.digest('hex')}`,
      l.diffId,
      `${at}: ${c} does not export to its DiffID`,
    )
    images.layers.detach(l)
  }
}

/** The observed state must be, name by name and image by image, before or after the call. */
function checkState(observed: State, before: State, after: State, at: string): void {
  const ids = new Set([...before.images, ...after.images, ...observed.images])
  for (const id of ids) {
    const seen = observed.images.has(id)
    assert.ok(
      seen === before.images.has(id) || seen === after.images.has(id),
      `${at}: image ${id} is ${seen ? 'there' : 'gone'}`,
    )
  }
  const names = new Set([...before.tags.keys(), ...after.tags.keys(), ...observed.tags.keys()])
  for (const name of names) {
    const seen = observed.tags.get(name)
    assert.ok(
      seen === before.tags.get(name) || seen === after.tags.get(name),
      `${at}: ${name} points at ${seen ?? 'nothing'}, expected ${before.tags.get(name) ?? 'nothing'}` +
        (after.tags.get(name) !== before.tags.get(name)
          ? ` or ${after.tags.get(name) ?? 'nothing'}`
          : ''),
    )
  }
}

/** Registers the harness as a test on `driver` (skipped where the driver cannot run). */
export function imageCrashHarness(driver: 'vfs' | 'overlay2'): void {
  const skip = driversUnderTest().find((d) => d.name === driver)?.skip
  test(
    `image crash harness on ${driver}: ${KILLS} kills of loads, removals and tags leave consistent images`,
    { timeout: 30 * 60_000, skip: skip ?? false },
    async (t) => {
      const { dir, remove } = await scratch('layerstore-image-crash-')
      try {
        const root = join(dir, 'root')
        const archives = await buildCrashArchives(dir)
        const list = join(dir, 'archives.json')
        writeFileSync(list, JSON.stringify(archives.map((a) => a.path)))
        let state: State = { images: new Set(), tags: new Map() }
        let seed = 12_345
        let loads = 0
        let deadJournals = 0
        let killedInLoad = 0
        for (let i = 0; i < KILLS; i++) {
          seed = (seed * 1_103_515_245 + 12_345) >>> 0
          const at = `kill ${i} (seed ${seed})`
          const lines = await runAndKill(
            CHILD,
            [root, driver, String(seed), list],
            seed % MAX_RUN_MS,
          )
          const before = state
          const run = replay(lines, before, archives) // `before` now holds the calls that returned
          loads += run.loads
          const after = copy(before)
          if (run.pending !== undefined) apply(after, run.pending, archives)
          if (run.pending?.kind === 'load') killedInLoad++
          if (listAll(join(root, JOURNALS_DIR)).length > 0) deadJournals++

          const warnings: string[] = []
          const images = await ImageStore.open({
            root,
            driver,
            onWarning: (code, m) => warnings.push(`${code}: ${m}`),
          })
          assert.deepEqual(
            warnings.filter((w) => w.startsWith('IMAGE_')),
            [],
            `${at}: warnings on open`,
          )
          const observed = await checkStore(images, root, driver, at)
          checkState(observed, before, after, at)
          state = observed
          const all = [...images.layers.map().keys()]
          const sample =
            i === KILLS - 1
              ? all
              : Array.from(
                  { length: Math.min(SAMPLED_LAYERS, all.length) },
                  (_, k) => all[((seed >>> 8) + k * 7_919) % all.length]!,
                )
          await checkExports(images, [...new Set(sample)], at)
        }
        t.diagnostic(
          `${loads} loads returned; ${killedInLoad} kills during a load; ${deadJournals} journals of dead calls found`,
        )
        if (KILLS < 20) return // too few kills to say anything of where they landed
        assert.ok(loads > KILLS / 2, `only ${loads} loads completed: the kills came too early`)
        assert.ok(
          killedInLoad > KILLS / 5 && deadJournals > KILLS / 10,
          `${killedInLoad} kills during a load, ${deadJournals} journals left: too few`,
        )
      } finally {
        await remove()
      }
    },
  )
}

const PAUSE_CHILD = fileURLToPath(new URL('./image-load-pause-child.js', import.meta.url))

/** A load in a child process (image-load-pause-child.ts), stopped at `stop` when told to run. */
function pausedLoad(root: string, driver: string, archive: string, stop: string) {
  const child = spawn(process.execPath, [PAUSE_CHILD, root, driver, archive, stop], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  const waiters: (() => void)[] = []
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    for (const w of waiters.splice(0)) w()
  })
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()))
  const until = async (word: string): Promise<void> => {
    while (!out.includes(`${word}\n`)) {
      if (child.exitCode !== null) throw new Error(`the load ended before "${word}": ${out}`)
      await new Promise<void>((r) => waiters.push(r))
    }
  }
  return {
    until,
    run: () => child.stdin.write('go\n'),
    kill: async () => {
      child.kill('SIGKILL')
      await closed
    },
  }
}

/**
 * The rollback across two loads that die one after the other, the first while the second
 * uses what it left: the layers stay as long as the second runs, and go once it died.
 */
export function rollbackAcrossLoadsTest(driver: 'vfs' | 'overlay2'): void {
  const skip = driversUnderTest().find((d) => d.name === driver)?.skip
  test(
    `ImageStore.open on ${driver} rolls back a dead load's layer that a running load used, once that load died too`,
    { timeout: 60_000, skip: skip ?? false },
    async () => {
      const { dir, remove } = await scratch('layerstore-image-rollback-')
      const loads: ReturnType<typeof pausedLoad>[] = []
      try {
        const root = join(dir, 'root')
        const base = await makeLayerTar({ 'base/f': 'base' })
        const a = await makeLayerTar({ 'a/f': 'a' })
        const b = await makeLayerTar({ 'b/f': 'b' })
        const x = await buildDockerArchive(join(dir, 'x.tar'), [{ layers: [base, a] }])
        const y = await buildDockerArchive(join(dir, 'y.tar'), [{ layers: [base, b] }])
        // A load of x registers the base layer and dies, while a load of y has the store open
        // (so that it does not roll x's load back itself) and then builds on that base.
        const first = pausedLoad(root, driver, x.path, 'after-first-layer')
        loads.push(first)
        await first.until('opened')
        first.run()
        await first.until('paused')
        const second = pausedLoad(root, driver, y.path, 'before-first-layer')
        loads.push(second)
        await second.until('opened')
        await first.kill()
        second.run()
        await second.until('paused')
        const journals = join(root, JOURNALS_DIR)
        assert.equal(listAll(journals).length, 2)

        const during = await ImageStore.open({ root, driver })
        assert.equal(during.layers.map().size, 1, 'the layer the running load uses is kept')

        await second.kill()
        const after = await ImageStore.open({ root, driver })
        await after.layers.cleanup()
        assert.deepEqual(after.list(), [])
        assert.deepEqual([...after.layers.map().keys()], [], 'a layer nothing uses is left')
        assert.deepEqual(listAll(journals), [], 'a journal is left')
      } finally {
        for (const l of loads) await l.kill()
        await remove()
      }
    },
  )
}
