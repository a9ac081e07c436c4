/**
 * Child process of the layerdb crash tests (src/metadata/crash.test.ts).
 *
 *   node dist/testing/metadata-crash-child.js LAYERDB point POINT N
 *     runs a fixed scenario that reaches every crash point, and kills itself (SIGKILL) the
 *     N-th time it reaches POINT; exits 0 when it reaches it fewer times.
 *   node dist/testing/metadata-crash-child.js LAYERDB loop SEED
 *     random commits, removals, mount writes and removals, quarantines, until killed.
 *   node dist/testing/metadata-crash-child.js LAYERDB hold
 *     begins a transaction, prints "ready", and waits with it open until killed.
 *
 * Before and after each step it writes "op <step>" / "done <step>" to stdout synchronously,
 * so that the parent knows what was in flight when the process died.
 */
import { writeSync } from 'node:fs'
import { CRASH_POINTS, setCrashHook, type CrashPoint } from '../metadata/crash-points.js'
import { LayerDb } from '../metadata/layer-db.js'
import { commitDerived, damage, deriveLayer, deriveMount, scenario } from './metadata-crash.js'

const [path, mode, arg1, arg2] = process.argv.slice(2)
if (path === undefined || mode === undefined) throw new TypeError('usage: LAYERDB MODE ...')

const say = (line: string): void => {
  writeSync(1, `${line}\n`)
}

async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  say(`op ${name}`)
  await fn()
  say(`done ${name}`)
}

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

async function loop(db: LayerDb, seed: number): Promise<never> {
  const rand = prng(seed)
  const pick = <T>(xs: readonly T[]): T | undefined =>
    xs.length === 0 ? undefined : xs[Math.floor(rand() * xs.length)]
  for (const o of await db.orphans()) await db.finishRemove(o) // as the store does at open
  let { layers, mounts } = await db.list()
  for (let i = 0; ; i++) {
    const r = rand()
    const tag = `${seed}-${i}`
    if (r < 0.4) {
      const l = deriveLayer(rand() < 0.5 ? pick(layers) : undefined, tag)
      await step(`commit ${l.chainId}`, () => commitDerived(db, l))
    } else if (r < 0.55) {
      const id = pick(layers)
      if (id !== undefined)
        await step(`remove ${id}`, async () => {
          await db.finishRemove(await db.beginRemove(id))
        })
    } else if (r < 0.8) {
      const m = deriveMount(`m${Math.floor(rand() * 4)}`, Math.floor(rand() * 1000))
      await step(`mount ${m.name} v${parseInt(m.mountId.slice(0, 8), 16)}`, () => db.writeMount(m))
    } else if (r < 0.9) {
      const name = pick(mounts)
      if (name !== undefined) await step(`remove mount ${name}`, () => db.removeMount(name))
    } else {
      const l = deriveLayer(undefined, `damaged-${tag}`)
      await step(`damage ${l.chainId}`, () => Promise.resolve(damage(db, l, tag)))
      await step(`quarantine ${l.chainId}`, () => db.quarantine('layer', l.chainId, 'damaged'))
    }
    ;({ layers, mounts } = await db.list())
  }
}

const db = await LayerDb.openAt(path)
if (mode === 'point') {
  const point = arg1 as CrashPoint
  if (!CRASH_POINTS.includes(point)) throw new TypeError(`unknown crash point ${String(arg1)}`)
  let left = Number(arg2 ?? '1')
  setCrashHook((p) => {
    if (p === point && --left === 0) {
      say(`crash ${p}`)
      process.kill(process.pid, 'SIGKILL')
    }
  })
  await scenario(db, step)
  say('finished')
} else if (mode === 'loop') {
  await loop(db, Number(arg1 ?? '1'))
} else if (mode === 'hold') {
  const txn = await db.begin()
  const l = deriveLayer(undefined, 'held')
  txn.setDiffId(l.diffId)
  txn.setSize(l.size)
  txn.setCacheId(l.cacheId)
  txn.tarSplitStream().write('partial')
  say(`ready ${txn.path}`)
  setInterval(() => undefined, 1 << 30)
} else {
  throw new TypeError(`unknown mode ${mode}`)
}
