/**
 * Every hostile case of the corpus (../shared/corpus/hostile) applied to a fresh target that
 * sits inside a sentinel directory full of canaries: the case is rejected with a coded error
 * or neutralised as its README row says, and nothing outside the target changes — not in the
 * sentinel directory (full listing: names, types, modes, owners, sizes, times, contents), not
 * at the host paths the cases aim at.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { apply } from './apply.js'
import { decompress } from './decompress.js'
import { corpusDir, hasCorpus, manifest, scratch } from '../testing/corpus.js'

/** Host paths the cases aim at: they must not appear, or must not change. */
const HOST_TARGETS = [
  '/tmp/corpus-escaped',
  '/tmp/corpus-through-symlink',
  '/etc/corpus-passwd',
  '/etc/corpus-abs',
]

/** What we do with each case: `ok` with a check of the tree, or the code of the rejection. */
type Outcome = { readonly ok: (target: string) => void } | { readonly code: RegExp }

const file = (target: string, p: string): string => readFileSync(join(target, p), 'latin1')
const kind = (target: string, p: string): string => {
  const st = lstatSync(join(target, p))
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'
}
const list = (target: string): string[] => readdirSync(target).sort()

const OUTCOMES: Readonly<Record<string, Outcome>> = {
  'abs-path': { ok: (t) => assert.equal(kind(t, 'etc/corpus-abs'), 'file') },
  'bad-checksum': { code: /^TAR_BAD_CHECKSUM$/ },
  'bomb-1g': { ok: (t) => assert.ok(list(t).length > 0) },
  'component-4096': { code: /^ARCHIVE_INVALID_ENTRY$/ }, // ENAMETOOLONG, entry named
  'deep-10k-single-entry': { code: /^ARCHIVE_INVALID_ENTRY$/ }, // ENAMETOOLONG past PATH_MAX
  'device-nodes': { ok: (t) => assert.ok(list(t).length > 0) },
  'dot-entry-as-file': { ok: (t) => assert.deepEqual(list(t), ['ok']) },
  'dotdot-benign': { ok: (t) => assert.equal(kind(t, 'a/c'), 'file') },
  'dotdot-escape': { code: /^ARCHIVE_BREAKOUT$/ },
  // The last entry wins in a bare apply; the layer store rejects the layer in tar-split.
  'duplicate-entries': { ok: (t) => assert.ok(list(t).length > 0) },
  'empty-archive': { ok: (t) => assert.deepEqual(list(t), []) },
  'file-over-lower-symlink': {
    ok: (t) => {
      assert.equal(kind(t, 'passwd-link'), 'file')
      assert.equal(file(t, 'passwd-link'), 'owned\n')
    },
  },
  'gnu-longname-100mb': { code: /^TAR_FIELD_TOO_LONG$/ },
  'hardlink-abs-missing': { code: /^ARCHIVE_INVALID_ENTRY$/ },
  'hardlink-dotdot': { code: /^ARCHIVE_BREAKOUT$/ },
  'hardlink-to-symlink': {
    ok: (t) => {
      assert.equal(kind(t, 'h'), 'file')
      assert.equal(file(t, 'h'), 'replaced\n')
      assert.equal(kind(t, 's'), 'symlink')
    },
  },
  'missing-eof-marker': { ok: (t) => assert.ok(list(t).length > 0) },
  'negative-size': { code: /^TAR_INVALID_HEADER$/ },
  'nul-in-pax-path': { code: /^TAR_/ },
  'opaque-root': { ok: (t) => assert.deepEqual(list(t), ['new']) },
  'pax-record-huge-length': { code: /^TAR_INVALID_PAX$/ },
  'pax-size-field-huge': { code: /^TAR_FIELD_TOO_LONG$/ },
  'setuid-files': { ok: (t) => assert.ok(list(t).length > 0) },
  'size-beyond-stream': { code: /^TAR_UNEXPECTED_EOF$/ },
  'sparse-map-bomb': { code: /^TAR_/ },
  'symlink-escape-two-layers': { ok: (t) => assert.equal(file(t, 'etc/corpus-passwd'), 'pwned\n') },
  'symlink-loop': { code: /^ARCHIVE_INVALID_ENTRY$/ },
  'symlink-root-then-write': {
    ok: (t) => assert.equal(kind(t, 'tmp/corpus-through-symlink'), 'file'),
  },
  // A bare apply replaces the symlink (never writes through it); the store rejects the layer.
  'symlink-then-file-same-layer': {
    ok: (t) => {
      assert.equal(kind(t, 'passwd-link'), 'file')
      assert.equal(file(t, 'passwd-link'), 'owned\n')
    },
  },
  'trailing-garbage': { ok: (t) => assert.ok(list(t).length > 0) },
  'truncated-mid-header': { code: /^TAR_UNEXPECTED_EOF$/ },
  'wh-dot': { code: /^ARCHIVE_INVALID_ENTRY$/ },
  'wh-dotdot': { code: /^ARCHIVE_INVALID_ENTRY$/ },
  'wh-empty-root': { code: /^ARCHIVE_INVALID_ENTRY$/ },
  'whiteout-through-symlink': { ok: (t) => assert.equal(kind(t, 'etc-link'), 'symlink') },
}

/** Cases whose streams are too big for a test run (10 GiB of output each). */
const TOO_BIG = new Set([
  'bomb-10g',
  'bomb-10g-zstd',
  'bomb-10g-gzip',
  'million-empty-entries',
  'deep-dirs-10k-headers',
])

/** Every name under `dir` with what could change about it. */
function listing(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name)
      const r = `${rel}/${name}`
      const st = lstatSync(p)
      const content = st.isFile()
        ? createHash('sha256').update(readFileSync(p)).digest('hex')
        : st.isSymbolicLink()
          ? readlinkSync(p)
          : ''
      out.push(
        `${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.ino} ${content}`,
      )
      if (st.isDirectory()) walk(p, r)
    }
  }
  walk(dir, '')
  return out
}

function hostState(): string[] {
  const passwd = createHash('sha256').update(readFileSync('/etc/passwd')).digest('hex')
  const st = lstatSync('/etc/passwd')
  return [
    `passwd ${passwd} ${st.mode} ${st.mtimeMs} ${st.nlink}`,
    ...HOST_TARGETS.map((p) => `${p} ${existsSync(p)}`),
  ]
}

/** A sentinel directory with canaries around the target, as deep as the cases climb. */
function sentinel(root: string): string {
  let dir = root
  for (const level of ['s1', 's2', 's3']) {
    writeFileSync(join(dir, 'canary'), `canary at ${level}\n`)
    mkdirSync(join(dir, 'victim'))
    writeFileSync(join(dir, 'victim', 'hello'), 'victim data\n')
    symlinkSync('victim', join(dir, 'victim-link'))
    mkdirSync(join(dir, level))
    dir = join(dir, level)
  }
  const target = join(dir, 'target')
  mkdirSync(target)
  return target
}

const rows = hasCorpus() ? manifest().filter((r) => r.category === 'hostile') : []
const isRoot = process.getuid?.() === 0

for (const format of ['aufs', 'overlay'] as const) {
  test(
    `hostile layers (${format} form) are rejected or neutralised, nothing outside changes`,
    { skip: !hasCorpus() && 'no corpus' },
    async (t) => {
      for (const row of rows) {
        const id = row.id!
        const skip = TOO_BIG.has(id)
          ? 'stream of 10 GiB or a million files'
          : !isRoot
            ? 'needs root'
            : false
        await t.test(id, { skip }, async () => {
          const outcome = OUTCOMES[id]
          assert.ok(outcome !== undefined, `no outcome recorded for new case ${id}`)
          const { dir, remove } = await scratch('layerstore-hostile-')
          try {
            const target = sentinel(dir)
            const before = listing(dir).filter((l) => !l.startsWith('/s1/s2/s3/target'))
            const host = hostState()
            const layers = row.layers ?? []
            const applied: string[] = [] // overlay form: one directory per layer, top first
            let error: unknown
            for (const [i, layer] of layers.entries()) {
              const { stream } = await decompress(createReadStream(join(corpusDir(), layer)))
              const into = format === 'aufs' ? target : join(target, `layer${i}`)
              if (format === 'overlay') mkdirSync(into)
              try {
                await apply(stream, into, { whiteoutFormat: format, lowers: applied })
              } catch (err) {
                if (i < layers.length - 1) throw err // lower layers are well formed
                error = err
              }
              applied.unshift(into)
            }
            const after = listing(dir).filter((l) => !l.startsWith('/s1/s2/s3/target'))
            assert.deepEqual(after, before, 'something outside the target changed')
            assert.deepEqual(hostState(), host, 'a host path changed')
            if ('code' in outcome) {
              assert.ok(error instanceof Error, `${id} (${row.expected ?? ''}) was applied`)
              assert.match(String((error as { code?: unknown }).code), outcome.code, error.message)
              assert.ok(
                row.expected !== 'accept' && row.expected !== 'neutralise',
                `${id} must be accepted`,
              )
            } else {
              assert.equal(error, undefined)
              assert.ok(
                row.expected !== 'reject' ||
                  id === 'duplicate-entries' ||
                  id === 'symlink-then-file-same-layer',
              )
              if (format === 'aufs') outcome.ok(target)
            }
          } finally {
            await remove()
          }
        })
      }
    },
  )
}
