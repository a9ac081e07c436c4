/**
 * The `layer` and `rw` commands as a user runs them: separate processes on one root (state
 * lives on disk, not in a daemon), JSON shapes of DESIGN.md's CLI contract, exact exports,
 * coded errors with their exit statuses, and two processes registering at once.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { corpusDir, hasCorpus, scratch } from '../testing/corpus.js'
import { driversUnderTest } from '../testing/drivers.js'
import { isMountpoint } from '../drivers/overlay2/mounts.js'
import { EXIT } from './exit-codes.js'
import { CLI_PROGRAM } from '../testing/cli-program.js'

const MAIN = CLI_PROGRAM

/** The CLI on one root and driver, as separate processes. */
function cli(root: string, driver = 'vfs') {
  const run = (
    args: string[],
    input?: Buffer,
  ): { status: number; out: string; err: string; raw: Buffer } => {
    const r = spawnSync(process.execPath, [MAIN, '--root', root, '--driver', driver, ...args], {
      input: input ?? Buffer.alloc(0),
      maxBuffer: 1 << 28,
    })
    return {
      status: r.status ?? -1,
      out: r.stdout.toString(),
      err: r.stderr.toString(),
      raw: r.stdout,
    }
  }
  /** The command's --json output, in the shape the caller expects. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  const json = <T>(args: string[], input?: Buffer): T => {
    const r = run(['--json', ...args], input)
    assert.equal(r.status, 0, r.err)
    return JSON.parse(r.out) as T
  }
  return { run, json }
}

/** The CLI on a fresh root (removed after the test). */
async function cliOnScratch(t: TestContext, driver = 'vfs') {
  const { dir: root, remove } = await scratch('layerstore-cli-')
  t.after(remove)
  return { root, ...cli(root, driver) }
}

interface LayerJson {
  chainId: string
  diffId: string
  parent: string | null
  size: number
  diffSize: number
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`
const chain = (name: string, n: number): string =>
  join(corpusDir(), 'layers', name, `layer${n}.tar`)

for (const { name: driver, skip } of driversUnderTest())
  test(
    `cli on ${driver}: register, ls, inspect, export byte for byte, rm child first`,
    { skip: skip ?? (!hasCorpus() && 'no corpus') },
    async (t) => {
      const { root, run, json } = await cliOnScratch(t, driver)
      const gz = join(corpusDir(), 'layers', 'gzip-chain', 'layer1.tar.gz')
      const l1 = json<LayerJson>(['layer', 'register', gz]) // gzip, detected by magic
      const plain = gunzipSync(readFileSync(gz))
      assert.equal(l1.diffId, sha256(plain))
      assert.equal(l1.chainId, l1.diffId)
      assert.equal(l1.parent, null)
      const l2 = json<LayerJson>(
        ['layer', 'register', '--parent', l1.chainId, '-'],
        readFileSync(chain('basic-two-layers', 2)),
      )
      assert.equal(l2.parent, l1.chainId)
      assert.equal(l2.size, l1.size + l2.diffSize)
      const again = json<LayerJson>(['layer', 'register', gz])
      assert.deepEqual(again, l1) // the same content is the same layer

      const ls = json<LayerJson[]>(['layer', 'ls'])
      assert.deepEqual(ls.map((l) => l.chainId).sort(), [l1.chainId, l2.chainId].sort())
      assert.deepEqual(json<LayerJson>(['layer', 'inspect', l2.chainId]), l2)

      const exported = run(['layer', 'export', l1.chainId])
      assert.equal(exported.status, 0, exported.err)
      assert.deepEqual(exported.raw, plain)
      const out = join(root, 'l2.tar')
      assert.equal(run(['layer', 'export', l2.chainId, '-o', out]).status, 0)
      assert.deepEqual(readFileSync(out), readFileSync(chain('basic-two-layers', 2)))

      const inUse = run(['--json', 'layer', 'rm', l1.chainId])
      assert.equal(inUse.status, EXIT.conflict)
      assert.match(inUse.err, /^layerstore: LAYER_IN_USE: /)
      assert.equal(
        (JSON.parse(inUse.err.split('\n')[1]!) as { error: { code: string } }).error.code,
        'LAYER_IN_USE',
      )
      const removed = json<{ chainId: string }[]>(['layer', 'rm', l2.chainId])
      assert.deepEqual(
        removed.map((r) => r.chainId),
        [l2.chainId, l1.chainId],
      )
      assert.deepEqual(json<unknown[]>(['layer', 'ls']), [])

      const missing = run(['layer', 'inspect', l1.chainId])
      assert.equal(missing.status, EXIT['not-found'])
      assert.match(missing.err, /LAYER_DOES_NOT_EXIST/)
      assert.equal(run(['layer', 'inspect', 'not-a-digest']).status, EXIT.usage)
    },
  )

test(
  'cli: register of several files is a chain, each on the one before; a bad one leaves none',
  { skip: !hasCorpus() && 'no corpus' },
  async (t) => {
    const { root, run, json } = await cliOnScratch(t)
    const files = [chain('basic-two-layers', 1), chain('basic-two-layers', 2)]
    const made = json<LayerJson[]>(['layer', 'register', ...files])
    assert.deepEqual(
      made.map((l) => l.diffId),
      files.map((f) => sha256(readFileSync(f))),
    )
    assert.deepEqual(
      made.map((l) => l.parent),
      [null, made[0]!.chainId],
    )
    const text = run(['layer', 'register', ...files]) // the same layers again, as text
    assert.equal(text.out, made.map((l) => `${l.chainId}\n`).join(''))
    for (const [i, l] of made.entries())
      assert.deepEqual(run(['layer', 'export', l.chainId]).raw, readFileSync(files[i]!))
    assert.equal(run(['layer', 'register', files[0]!, '-']).status, EXIT.usage)

    const other = join(root, 'other.tar')
    writeFileSync(other, readFileSync(chain('whiteout-file', 1)))
    const bad = join(root, 'bad.tar')
    writeFileSync(bad, Buffer.alloc(1536, 'x')) // no tar
    const failed = run(['layer', 'register', '--parent', made[1]!.chainId, other, bad])
    assert.notEqual(failed.status, 0)
    assert.deepEqual(
      json<LayerJson[]>(['layer', 'ls'])
        .map((l) => l.chainId)
        .sort(),
      made.map((l) => l.chainId).sort(),
      'the layer made before the bad one is gone',
    )
  },
)

for (const { name: driver, skip } of driversUnderTest())
  test(
    `cli on ${driver}: a read-write layer across processes: create, mount, write, changes, diff, commit, rm`,
    { skip: skip ?? (!hasCorpus() && 'no corpus') },
    async (t) => {
      const { run, json } = await cliOnScratch(t, driver)
      const base = json<LayerJson>(['layer', 'register', chain('basic-two-layers', 1)])
      const created = json<{ name: string; parent: string; mountId: string }>([
        'rw',
        'create',
        'c1',
        '--parent',
        base.chainId,
      ])
      assert.deepEqual([created.name, created.parent], ['c1', base.chainId])
      assert.match(created.mountId, /^[0-9a-f]{64}$/)
      const conflict = run(['rw', 'create', 'c1'])
      assert.equal(conflict.status, EXIT['already-exists'])
      assert.match(conflict.err, /MOUNT_NAME_CONFLICT/)

      const { path } = json<{ path: string }>(['rw', 'mount', 'c1'])
      assert.equal(run(['rw', 'mount', 'c1']).out.trim(), path) // without --json: the bare path
      writeFileSync(join(path, 'etc', 'motd'), 'hello\n')
      const changes = json<{ path: string; kind: string }[]>(['rw', 'changes', 'c1'])
      assert.deepEqual(changes, [
        { path: '/etc', kind: 'C' },
        { path: '/etc/motd', kind: 'A' },
      ])
      const diff = run(['rw', 'diff', 'c1'])
      assert.equal(diff.status, 0, diff.err)
      assert.ok(diff.raw.includes(Buffer.from('hello\n')))
      // Two mounts by two processes, balanced by two unmounts by two more.
      assert.equal(run(['rw', 'unmount', 'c1']).status, 0)
      if (driver === 'overlay2') assert.ok(isMountpoint(path), 'one mount is left')
      assert.equal(run(['rw', 'unmount', 'c1']).status, 0)
      assert.equal(isMountpoint(path), false)

      const committed = json<LayerJson>(['rw', 'commit', 'c1'])
      assert.equal(committed.parent, base.chainId)
      const exported = run(['layer', 'export', committed.chainId])
      assert.equal(sha256(exported.raw), committed.diffId) // a commit exports to its DiffID

      assert.equal(json<unknown[]>(['rw', 'ls']).length, 1)
      assert.deepEqual(json<unknown[]>(['rw', 'rm', 'c1']), [])
      // Image layers stay until `layer rm`, also one that only the read-write layer was on.
      json(['rw', 'create', 'c2', '--parent', committed.chainId])
      json(['rw', 'mount', 'c2']) // left mounted: rm unmounts
      assert.deepEqual(json<unknown[]>(['rw', 'rm', 'c2']), [])
      assert.equal(json<LayerJson[]>(['layer', 'ls']).length, 2)
      assert.deepEqual(json<unknown[]>(['rw', 'ls']), [])
      assert.equal(run(['rw', 'rm', 'c1']).status, EXIT['not-found'])
    },
  )

test(
  'cli: two processes registering the same layer at once get one layer',
  { skip: !hasCorpus() && 'no corpus' },
  async (t) => {
    const { root, json } = await cliOnScratch(t)
    const tar = chain('basic-two-layers', 1)
    const one = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const p = spawn(process.execPath, [
          MAIN,
          '--root',
          root,
          '--driver',
          'vfs',
          '--json',
          'layer',
          'register',
          tar,
        ])
        let out = ''
        let err = ''
        p.stdout.on('data', (d: Buffer) => (out += d.toString()))
        p.stderr.on('data', (d: Buffer) => (err += d.toString()))
        p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))))
      })
    const results = await Promise.all([one(), one(), one()])
    const ids = new Set(results.map((r) => (JSON.parse(r) as LayerJson).chainId))
    assert.equal(ids.size, 1)
    assert.equal(json<unknown[]>(['layer', 'ls']).length, 1)
    // The losers' copies were removed: one layer directory in the driver.
    const vfs = spawnSync('ls', [join(root, 'vfs', 'dir')])
      .stdout.toString()
      .trim()
      .split('\n')
    assert.equal(vfs.length, 1)
  },
)
