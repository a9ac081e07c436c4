/**
 * Crash consistency of the layerdb: child processes (src/testing/metadata-crash-child.ts) are
 * killed with SIGKILL at every crash point of a scenario, and at random moments of a random
 * workload; the layerdb is then reopened and every visible record must be complete and
 * consistent, `tmp/` swept, and each interrupted change either done or not done at all.
 *
 * SIGKILL loses no written data (the page cache survives the process), so these tests check
 * the order of renames and the sweep, not the fsyncs; those are checked by reading the code
 * (every rename of a record follows fsyncs of its files and directory).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChainId } from '../digest/digest.js'
import {
  deriveLayer,
  deriveMount,
  scenario,
  verifyLayerDb,
  type Verified,
} from '../testing/metadata-crash.js'
import { CRASH_POINTS, setCrashHook, type CrashPoint } from './crash-points.js'
import { LayerDb } from './layer-db.js'

const CHILD = fileURLToPath(new URL('../testing/metadata-crash-child.js', import.meta.url))

/**
 * On tmpfs when there is one: SIGKILL does not test fsync anyway, and on a disk the fsyncs
 * of a few hundred commits would make this file slow.
 */
const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

function tempPath(t: TestContext): string {
  const dir = mkdtempSync(join(BASE, 'layerstore-crash-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'image', 'vfs', 'layerdb')
}

/** Reopens (sweeping), checks every record, and fails on any problem. */
async function reopenAndVerify(path: string, context: string): Promise<Verified> {
  const db = await LayerDb.openAt(path)
  const v = await verifyLayerDb(db)
  assert.deepEqual(v.problems, [], context)
  return v
}

/** The step in flight when the child died: the last "op" without its "done". */
function inFlight(stdout: string): string | undefined {
  let current: string | undefined
  for (const line of stdout.split('\n')) {
    if (line.startsWith('op ')) current = line.slice(3)
    else if (line.startsWith('done ')) current = undefined
  }
  return current
}

const A = deriveLayer(undefined, 'A').chainId
const B = deriveLayer(A, 'B').chainId

/** The step in flight was all or nothing. */
async function checkStep(path: string, v: Verified, step: string | undefined, context: string) {
  const has = (id: ChainId): boolean => v.layers.includes(id)
  const mount = v.mounts.get('m')
  switch (step) {
    case 'commit A':
      assert.ok(!has(B) && v.layers.length <= 1, context)
      break
    case 'commit B':
      assert.ok(has(A), context)
      break
    case 'mount v1':
      assert.ok(mount === undefined || mount === 1, context)
      break
    case 'mount v2': // a replacement never loses the record, and never mixes the two
      assert.ok(mount === 1 || mount === 2, context)
      assert.deepEqual(await (await LayerDb.openAt(path)).readMount('m'), deriveMount('m', mount))
      break
    case 'remove mount':
      assert.ok(mount === undefined || mount === 2, context)
      break
    case 'begin remove B': // visible or an orphan: never both, never neither
      assert.ok(has(B) !== v.orphans.includes(B), context)
      break
    case 'finish remove B':
      assert.ok(!has(B), context)
      break
    case 'damage C':
    case 'quarantine C':
      break
    default:
      assert.fail(`unexpected step ${String(step)}: ${context}`)
  }
}

test('the disk as a crash at each crash point leaves it reopens to complete records', async (t) => {
  const path = tempPath(t)
  const db = await LayerDb.openAt(path)
  const snapshots: { dir: string; point: CrashPoint; n: number; step: string | undefined }[] = []
  const counts = new Map<CrashPoint, number>()
  let current: string | undefined
  setCrashHook((point) => {
    // What SIGKILL here would leave: the files as they are (flocks die with the process, and
    // the copy has none).
    const n = (counts.get(point) ?? 0) + 1
    counts.set(point, n)
    const dir = join(dirname(path), `snapshot-${snapshots.length}`)
    cpSync(path, dir, { recursive: true })
    snapshots.push({ dir, point, n, step: current })
  })
  try {
    await scenario(db, async (name, fn) => {
      current = name
      await fn()
      current = undefined
    })
  } finally {
    setCrashHook(undefined)
  }
  assert.deepEqual(
    CRASH_POINTS.filter((p) => !counts.has(p)),
    [],
    'the scenario reaches every crash point',
  )
  for (const s of snapshots) {
    const context = `crash at ${s.point} #${s.n} during ${String(s.step)}`
    const v = await reopenAndVerify(s.dir, context)
    await checkStep(s.dir, v, s.step, context)
    if (s.point === 'mount:old-moved') {
      const reopened = await LayerDb.openAt(s.dir)
      assert.deepEqual(reopened.swept.restoredMounts, [], 'the first reopen restored it')
      assert.deepEqual(await reopened.readMount('m'), deriveMount('m', 1), context)
    }
  }
  t.diagnostic(`${snapshots.length} crash states checked`)
})

test('a process killed with SIGKILL at a crash point leaves complete records', async (t) => {
  const points: [CrashPoint, number][] = [
    ['commit:synced', 2],
    ['commit:renamed', 2],
    ['mount:old-moved', 1],
    ['remove:renamed', 1],
  ]
  for (const [point, n] of points) {
    const path = tempPath(t)
    const r = spawnSync(process.execPath, [CHILD, path, 'point', point, String(n)], {
      encoding: 'utf8',
    })
    const context = `killed at ${point} #${n}\n${r.stdout}${r.stderr}`
    assert.equal(r.signal, 'SIGKILL', context)
    assert.match(r.stdout, new RegExp(`crash ${point}\n$`), context)
    const v = await reopenAndVerify(path, context)
    await checkStep(path, v, inFlight(r.stdout), context)
  }
})

test('processes killed at random moments leave only complete records', async (t) => {
  const path = tempPath(t)
  const runs = 12
  let progressed = 0
  for (let i = 0; i < runs; i++) {
    const child = spawn(process.execPath, [CHILD, path, 'loop', String(1000 + i)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s))
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s))
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    )
    // Wait for the first step (start-up costs vary), then a random moment of the workload.
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (out.includes('op ') || child.exitCode !== null) resolve()
        else child.stdout.once('data', check)
      }
      check()
    })
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 200)))
    child.kill('SIGKILL')
    const { signal } = await exited
    const context = `run ${i}, in flight: ${String(inFlight(out))}\n${err}`
    assert.equal(signal, 'SIGKILL', context)
    if (out.includes('done ')) progressed++
    await reopenAndVerify(path, context)
  }
  assert.ok(progressed > runs / 2, `only ${progressed} runs got anything done`)
  const v = await reopenAndVerify(path, 'final')
  t.diagnostic(
    `${v.layers.length} layers, ${v.mounts.size} mounts, ${v.orphans.length} orphans at the end`,
  )
})

test("another process's live transaction is not swept; once it dies, it is", async (t) => {
  const path = tempPath(t)
  await LayerDb.openAt(path)
  const child = spawn(process.execPath, [CHILD, path, 'hold'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const line = await new Promise<string>((resolve) =>
    child.stdout.setEncoding('utf8').once('data', (s: string) => resolve(s)),
  )
  const wsPath = /^ready (.+)$/m.exec(line)![1]!
  try {
    const db = await LayerDb.openAt(path)
    assert.deepEqual(db.swept.tmp, [])
    assert.ok(existsSync(wsPath))
  } finally {
    child.kill('SIGKILL')
    await exited
  }
  const db = await LayerDb.openAt(path)
  assert.equal(db.swept.tmp.length, 1)
  assert.ok(!existsSync(wsPath))
})
