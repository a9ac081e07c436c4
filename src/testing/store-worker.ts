/**
 * A worker of the layer-store concurrency tests (src/layer/concurrency.test.ts): runs a list
 * of store operations on a root, at the same moment as other workers on the same root.
 *
 *   node dist/testing/store-worker.js ROOT DRIVER PLAN.json GO_FILE
 *
 * Opens the store, prints `ready`, waits until GO_FILE exists (the shared start signal), runs
 * the plan, then prints one JSON line: {@link WorkerReport}. Handles still held at the end are
 * left as a process that exits leaves them (detached). The test imports {@link runOps} and
 * {@link poolTar} too, to run the same plans one after another in a single process.
 */
import { existsSync, readFileSync, writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { LayerStore } from '../layer/layer-store.js'
import type { Layer } from '../layer/types.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { TYPE } from '../tar/types.js'
import type { ChainId } from '../digest/digest.js'

/** One operation; `key` names a handle (the last one registered under it). */
export type Op =
  | {
      readonly op: 'register'
      readonly key: string
      readonly tar: number
      readonly parent?: string
    }
  | { readonly op: 'release'; readonly key: string }
  | { readonly op: 'detach'; readonly key: string }
  | { readonly op: 'remove'; readonly key: string }

/** What an operation gave: a ChainID, the ChainIDs a deletion removed, or an error code. */
export interface OpResult {
  readonly op: string
  readonly result: string
  /** Wall-clock start and end (ms since the epoch), to see that workers ran at once. */
  readonly t0: number
  readonly t1: number
}

export interface WorkerReport {
  readonly start: number
  readonly end: number
  readonly results: OpResult[]
}

/** Size of the big file of tar 0, the base most chains start from. */
export const BIG_FILE_SIZE = 1 << 20

/** Deterministic bytes: the same (seed, length) always gives the same data. */
function bytes(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length)
  let s = (seed * 2_654_435_761) >>> 0 || 1
  for (let i = 0; i < length; i += 4) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    b.writeUInt32LE(s >>> 0, Math.min(i, length - 4))
  }
  return b
}

/** The big file's data, 64 KiB at a time (pulled by the tar writer as it is read). */
function* bigBody(): Generator<Uint8Array> {
  for (let off = 0; off < BIG_FILE_SIZE; off += 65_536) yield bytes(off / 65_536 + 1, 65_536)
}

const MTIME = 1_600_000_000

/**
 * Tar `i` of the pool: 0 is a base with a 1 MiB file, 10 the empty layer (1024 zero bytes),
 * others a few small files under `l<i>/` and in a shared directory that several layers
 * overwrite; every fourth one also whites out a file of tar 2. The same `i` always gives the
 * same bytes, in any process.
 */
export function poolTar(i: number): AsyncIterable<Uint8Array> {
  if (i === 10)
    return (async function* () {
      yield await Promise.resolve(Buffer.alloc(1024))
    })()
  const entries: TarWriteEntry[] = []
  const dir = (name: string): void => {
    entries.push({ header: { name, typeflag: TYPE.DIR, mode: 0o755, mtime: MTIME } })
  }
  const file = (name: string, body: Buffer, mode = 0o644): void => {
    entries.push({ header: { name, mode, mtime: MTIME }, body })
  }
  if (i === 0) {
    dir('big/')
    entries.push({
      header: { name: 'big/blob', mode: 0o644, mtime: MTIME, size: BIG_FILE_SIZE },
      body: bigBody(),
    })
    dir('etc/')
    file('etc/os-release', Buffer.from('NAME=pool\n'))
  } else {
    dir(`l${String(i)}/`)
    const files = 2 + (i % 4)
    for (let f = 0; f < files; f++)
      file(
        `l${String(i)}/f${String(f)}`,
        bytes(i * 31 + f, 200 + ((i * 7919 + f * 104_729) % 30_000)),
      )
    dir('shared/')
    file(`shared/f${String(i % 3)}`, bytes(i, 100 + i), 0o600 + (i % 2) * 0o55)
    if (i % 4 === 3) file('l2/.wh.f1', Buffer.alloc(0))
  }
  return writeTar(entries)
}

/** Runs `ops` on `store`; `handles` holds this worker's handles by key across calls. */
export async function runOps(
  store: LayerStore,
  ops: readonly Op[],
  handles: Map<string, Layer[]> = new Map(),
): Promise<OpResult[]> {
  const chainIds = new Map<string, ChainId>()
  const take = (key: string): Layer => {
    const list = handles.get(key)
    const h = list?.pop()
    if (h === undefined) throw new Error(`no handle ${key}`)
    return h
  }
  const out: OpResult[] = []
  for (const op of ops) {
    const t0 = Date.now()
    let result: string
    try {
      switch (op.op) {
        case 'register': {
          const parent = op.parent === undefined ? undefined : chainIds.get(op.parent)
          if (op.parent !== undefined && parent === undefined)
            throw new Error(`unknown parent key ${op.parent}`)
          const l = await store.register(poolTar(op.tar), parent)
          chainIds.set(op.key, l.chainId)
          handles.set(op.key, [...(handles.get(op.key) ?? []), l])
          result = l.chainId
          break
        }
        case 'release':
          result = (await store.release(take(op.key))).map((m) => m.chainId).join(',')
          break
        case 'detach':
          store.detach(take(op.key))
          result = ''
          break
        case 'remove': {
          const id = chainIds.get(op.key)
          if (id === undefined) throw new Error(`unknown key ${op.key}`)
          result = (await store.remove(id)).map((m) => m.chainId).join(',')
          break
        }
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (typeof code !== 'string') throw err
      result = `error:${code}`
    }
    out.push({ op: `${op.op} ${op.key}`, result, t0, t1: Date.now() })
  }
  return out
}

async function main(): Promise<void> {
  const [root, driver, planPath, goFile] = process.argv.slice(2)
  if (root === undefined || driver === undefined || planPath === undefined || goFile === undefined)
    throw new TypeError('usage: store-worker ROOT DRIVER PLAN.json GO_FILE')
  const ops = JSON.parse(readFileSync(planPath, 'utf8')) as Op[]
  const store = await LayerStore.open({ root, driver })
  writeSync(1, 'ready\n')
  while (!existsSync(goFile)) await sleep(1)
  const start = Date.now()
  const results = await runOps(store, ops)
  const report: WorkerReport = { start, end: Date.now(), results }
  writeSync(1, `${JSON.stringify(report)}\n`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
