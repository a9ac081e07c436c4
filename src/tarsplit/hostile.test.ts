/**
 * Every hostile stream of the shared corpus through the tar reader and the disassembler, in a
 * child process whose peak memory is measured: a coded error or a clean result, never an
 * uncaught exception, never memory that grows with a size the stream claims.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { corpusDir, hasCorpus, manifest, type ManifestRow } from '../testing/corpus.js'

const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'testing', 'disasm-child.js')
/**
 * Peak RSS allowed: node and the pipeline's buffers take ~75 MB; the largest claimed sizes
 * are gigabytes. A million entries add ~150 MB (230 MB measured): the set of names that
 * duplicate detection needs, which Go's tar-split keeps too, and the garbage of a million
 * entries; that case gets more room.
 */
const MAX_RSS_MB = 200
const MAX_RSS_MB_FOR: Record<string, number> = { 'million-empty-entries': 384 }

/** 10 GiB of decompression; the 1 GiB gzip bomb covers the tar level, issue 3 the rest. */
const SKIP: Record<string, string> = {
  'bomb-10g': 'bzip2 decompression of 10 GiB belongs to the decompression tests',
  'bomb-10g-zstd': 'zstd decompression of 10 GiB belongs to the decompression tests',
  'bomb-10g-gzip': 'a 10 GiB generated gzip stream belongs to the decompression tests',
}

interface ChildResult {
  ok: boolean
  code?: string
  message?: string
  diffId?: string
  files?: number
  maxRssKb: number
}

function runChild(row: ManifestRow): ChildResult {
  const args = [CHILD]
  let r
  if (row.file !== undefined) {
    r = spawnSync(process.execPath, [...args, join(corpusDir(), row.file)], { maxBuffer: 1 << 20 })
  } else {
    const gen = String(row['generator'])
    r = spawnSync('sh', ['-c', `${gen} | "${process.execPath}" "${CHILD}" -`], {
      cwd: corpusDir(),
      maxBuffer: 1 << 20,
    })
  }
  assert.equal(r.status, 0, `child crashed: ${r.stderr.toString()}`)
  assert.equal(r.stderr.toString().trim(), '', 'child wrote to stderr (uncaught error?)')
  return JSON.parse(r.stdout.toString()) as ChildResult
}

const rows = hasCorpus()
  ? manifest().filter(
      (r) => r.category === 'hostile' && (r.file === undefined || !r.file.includes('.lower')),
    )
  : []

for (const row of rows) {
  const id = row.id!
  test(`hostile stream: ${id}`, { skip: !hasCorpus() ? 'no corpus' : (SKIP[id] ?? false) }, () => {
    const res = runChild(row)
    const limit = MAX_RSS_MB_FOR[id] ?? MAX_RSS_MB
    assert.ok(res.maxRssKb < limit * 1024, `peak RSS ${Math.round(res.maxRssKb / 1024)} MB`)
    const go = row.tar_split?.['debian-0.11.2']?.result
    if (go === 'disasm-error' || id === 'gnu-longname-100mb') {
      assert.equal(res.ok, false, `accepted a stream Go refuses`)
      assert.match(res.code ?? '', /^(TAR|TARSPLIT)_/)
      if (id === 'gnu-longname-100mb') assert.equal(res.code, 'TAR_FIELD_TOO_LONG')
      return
    }
    if (id === 'sparse-map-bomb') {
      // Go expands it; we may refuse a map over the limit. Either way with bounded memory.
      if (!res.ok) assert.match(res.code ?? '', /^TAR_(FIELD_TOO_LONG|INVALID_SPARSE)$/)
      return
    }
    assert.equal(res.ok, true, `refused: ${res.code ?? ''}: ${res.message ?? ''}`)
    assert.equal(res.diffId, row.diff_id ?? row['generator_diff_id'])
  })
}
