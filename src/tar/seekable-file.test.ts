/**
 * A tar listed from a SeekableFile (bodies skipped by seeking, never read) gives the same
 * entries, offsets and errors as the same tar read whole, for every uncompressed archive of
 * the corpus; a file cut inside a skipped body is TAR_UNEXPECTED_EOF, not a clean end.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, statSync, truncateSync } from 'node:fs'
import { join } from 'node:path'
import { corpusDir, hasCorpus, manifest, scratch } from '../testing/corpus.js'
import { fileChunks } from '../internal/file-chunks.js'
import type { ByteSource } from './byte-reader.js'
import { TarReader } from './reader.js'
import { SeekableFile } from './seekable-file.js'

/** Name, type, size and offset of every entry, then the error code or 'end'. */
async function listing(source: ByteSource): Promise<string[]> {
  const out: string[] = []
  const reader = new TarReader(source)
  try {
    for (let e = await reader.next(); e !== undefined; e = await reader.next()) {
      const h = e.header
      out.push(`${h.name} ${h.typeflag} ${h.size} ${h.offset}`)
    }
    out.push('end')
  } catch (err) {
    out.push(`error ${String((err as { code?: unknown }).code)}`)
  } finally {
    await reader.close()
  }
  return out
}

test(
  'every uncompressed corpus tar lists the same through a seekable file',
  { skip: !hasCorpus() },
  async () => {
    const rows = manifest().filter(
      (r) =>
        r.file !== undefined &&
        r.compression === 'none' &&
        statSync(join(corpusDir(), r.file)).size < 64 << 20,
    )
    assert.ok(rows.length > 100, `only ${rows.length} archives`)
    for (const r of rows) {
      const path = join(corpusDir(), r.file!)
      const whole = await listing(fileChunks(path))
      const file = await SeekableFile.open(path, 4096)
      assert.deepEqual(await listing(file), whole, r.file)
      await file.close()
    }
  },
)

test('a file cut inside a skipped body is an unexpected end', async (t) => {
  const { dir, remove } = await scratch('layerstore-seekable-')
  t.after(remove)
  const src = manifest().find(
    (r) =>
      r.file?.endsWith('.tar') === true &&
      r.compression === 'none' &&
      (r.uncompressed_size ?? 0) > 1 << 16,
  )
  if (src === undefined) return t.skip('no corpus')
  const path = join(dir, 'cut.tar')
  copyFileSync(join(corpusDir(), src.file!), path)
  truncateSync(path, Math.floor(statSync(path).size / 2) + 100)
  const whole = await listing(fileChunks(path))
  assert.deepEqual(await listing(await SeekableFile.open(path)), whole)
  assert.match(whole.at(-1)!, /^error TAR_/)
})
