/**
 * Access to the shared test corpus (../shared/corpus beside the repository, or
 * $LAYERSTORE_CORPUS): its manifest rows and the decompressed streams of its archives.
 * The corpus is read-only; anything derived goes to a temporary directory.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnSync } from 'node:child_process'
import { createGunzip } from 'node:zlib'
import { pipeline } from 'node:stream/promises'
import { createWriteStream } from 'node:fs'
import type { TestContext } from 'node:test'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * Archives whose sparse files expand to tens of gigabytes (9 GiB, 60 GB of holes): reading
 * their data takes minutes, so tests that read file data leave them out (Go's runs did too).
 */
export const HUGE_SPARSE: ReadonlySet<string> = new Set([
  'conformance/generated/gnutar-gnu-sparse-9g.tar',
  'conformance/go/gnu-sparse-big.tar',
])

export function corpusDir(): string {
  return process.env['LAYERSTORE_CORPUS'] ?? resolve(REPO, '..', 'shared', 'corpus')
}

export function hasCorpus(): boolean {
  return existsSync(join(corpusDir(), 'manifest.jsonl'))
}

export interface ToolResult {
  readonly result: string
  readonly detail?: string
  readonly json_entries?: number
  readonly json?: string
}

export interface ManifestRow {
  readonly file?: string
  readonly category: 'conformance' | 'layer' | 'hostile'
  readonly compression?: 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd'
  readonly diff_id?: string
  readonly uncompressed_size?: number
  readonly tar_split?: Record<string, ToolResult>
  readonly tar_split_roundtrip?: boolean | null
  readonly id?: string
  readonly expected?: string
  readonly detail?: string
  readonly layers?: string[]
  readonly chain?: string
  readonly [k: string]: unknown
}

export function manifest(): ManifestRow[] {
  return readFileSync(join(corpusDir(), 'manifest.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ManifestRow)
}

/** A scratch directory removed by the returned function. */
export async function scratch(
  prefix = 'layerstore-test-',
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

/** A scratch directory removed after the test `t`. */
export async function scratchFor(t: TestContext, prefix = 'layerstore-test-'): Promise<string> {
  const { dir, remove } = await scratch(prefix)
  t.after(remove)
  return dir
}

/**
 * Path of the row's uncompressed stream: the corpus file itself, or a decompressed copy in
 * `dir` (gzip by node:zlib; bzip2, xz and zstd by the system tools).
 */
export async function uncompressedPath(row: ManifestRow, dir: string): Promise<string> {
  const src = join(corpusDir(), row.file!)
  const out = join(dir, 'stream.tar')
  switch (row.compression ?? 'none') {
    case 'none':
      return src
    case 'gzip':
      await pipeline(createReadStream(src), createGunzip(), createWriteStream(out))
      return out
    default: {
      const tool = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' }[
        row.compression as 'bzip2' | 'xz' | 'zstd'
      ]
      const r = spawnSync('sh', ['-c', `${tool} -dc < "$1" > "$2"`, 'sh', src, out])
      if (r.status !== 0) throw new Error(`${tool} failed on ${row.file!}: ${r.stderr.toString()}`)
      return out
    }
  }
}
