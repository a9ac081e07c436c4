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
 *
 * The archives are in image-crash-archives.ts, the model of the expected state and the checks
 * in image-crash-checks.ts; this file holds the tests.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ImageStore } from '../image/image-store.js'
import { JOURNALS_DIR } from '../image/journal.js'
import { scratch } from './corpus.js'
import { driversUnderTest } from './drivers.js'
import { buildDockerArchive, makeLayerTar } from './image-archive.js'
import { buildCrashArchives } from './image-crash-archives.js'
import {
  apply,
  checkExports,
  checkState,
  checkStore,
  copy,
  replay,
  type State,
} from './image-crash-checks.js'
import { listAll } from './store-crash.js'
import { runAndKill } from './run-and-kill.js'

export { buildCrashArchives, type CrashArchive } from './image-crash-archives.js'

const CHILD = fileURLToPath(new URL('./image-crash-child.js', import.meta.url))
const KILLS = Number(process.env['LAYERSTORE_CRASH_KILLS'] ?? 100)
/** Kills land this long after the child is ready, at most (its calls take tens of ms). */
const MAX_RUN_MS = 400
/** Layers hashed after each kill (all of them after the last). */
const SAMPLED_LAYERS = 3

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
