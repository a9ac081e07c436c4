/**
 * Crash harness (issue "LayerStore"), run per driver by src/layer/crash-<driver>.test.ts: a
 * child process works on a store (register, release, read-write layers mounted and written)
 * and is killed with SIGKILL at a random moment, $LAYERSTORE_CRASH_KILLS times (default 200,
 * the minimum, per driver) on one root. After each kill a fresh store opens cleanly;
 * after cleanup() nothing is left over (no write set, no `-removing` record, no driver
 * directory without a record, no in-flight marker, no overlay2 short link without its layer,
 * no mount); every layer it lists exports bytes that hash to its DiffID; and every layer
 * whose register call had returned, and that was not being released, is still there.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LayerStore } from '../layer/layer-store.js'
import { scratch } from './corpus.js'
import { driversUnderTest } from './drivers.js'
import { runAndKill } from './run-and-kill.js'

const CHILD = fileURLToPath(new URL('./store-crash-child.js', import.meta.url))
const KILLS = Number(process.env['LAYERSTORE_CRASH_KILLS'] ?? 200)

export function listAll(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : []
}

/** The driver's layer directories. */
export function driverIds(root: string, driver: string): string[] {
  if (driver === 'vfs') return listAll(join(root, 'vfs', 'dir'))
  return listAll(join(root, driver)).filter((n) => n !== 'l')
}

/** overlay2 short links whose target is gone. */
export function danglingLinks(root: string): string[] {
  const links = join(root, 'overlay2', 'l')
  return listAll(links).filter((n) => {
    try {
      statSync(join(links, n))
      return false
    } catch {
      return true
    }
  })
}

/** Registers the harness as a test on `driver` (skipped where the driver cannot run). */
export function crashHarness(driver: 'vfs' | 'overlay2'): void {
  const skip = driversUnderTest().find((d) => d.name === driver)?.skip
  test(
    `crash harness on ${driver}: ${KILLS} kills at random points leave a consistent store`,
    { timeout: 30 * 60_000, skip: skip ?? false },
    async () => {
      const { dir: root, remove } = await scratch('layerstore-crash-')
      try {
        const mustExist = new Set<string>()
        let seed = 12_345
        let registered = 0
        for (let i = 0; i < KILLS; i++) {
          seed = (seed * 1_103_515_245 + 12_345) >>> 0
          const lines = await runAndKill(CHILD, [root, driver, String(seed)], seed % 250)
          for (const line of lines) {
            const [what, id] = line.split(' ')
            if (what === 'registered') {
              mustExist.add(id!)
              registered++
            } else if (what === 'releasing') mustExist.delete(id!)
          }
          const store = await LayerStore.open({ root, driver })
          await store.cleanup()
          const layerdb = join(root, 'image', driver, 'layerdb')
          assert.deepEqual(listAll(join(layerdb, 'tmp')), [], `kill ${i}: a write set is left`)
          assert.deepEqual(
            listAll(join(layerdb, 'sha256')).filter((n) => n.endsWith('-removing')),
            [],
            `kill ${i}: an orphan is left`,
          )
          assert.deepEqual(
            listAll(join(root, 'layerstore', 'inflight')),
            [],
            `kill ${i}: an in-flight marker is left`,
          )
          const known = new Set<string>()
          for (const l of store.map().values()) known.add(l.cacheId)
          for (const m of store.rwLayers()) known.add(m.mountId)
          const driverDirs = driverIds(root, driver).filter(
            (id) => !known.has(id.replace(/-init$/, '')),
          )
          assert.deepEqual(driverDirs, [], `kill ${i}: driver directories without a record`)
          if (driver === 'overlay2') {
            assert.deepEqual(danglingLinks(root), [], `kill ${i}: short links without a layer`)
            const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
            assert.equal(mounts.includes(root), false, `kill ${i}: a mount is left`)
          }
          for (const id of mustExist)
            assert.ok(store.map().has(id as never), `kill ${i}: registered layer ${id} is gone`)
          for (const info of store.map().values()) {
            const l = await store.get(info.chainId)
            const hash = createHash('sha256')
            for await (const c of l.tarStream()) hash.update(c as Buffer)
            assert.equal(
              `sha256:${hash.digest('hex')}`,
              l.diffId,
              `kill ${i}: ${l.chainId} does not export to its DiffID`,
            )
            store.detach(l)
          }
        }
        assert.ok(
          registered > KILLS / 4,
          `only ${registered} registrations completed: the kills came too early`,
        )
      } finally {
        await remove()
      }
    },
  )
}
