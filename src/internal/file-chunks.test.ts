import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileChunks } from './file-chunks.js'
import { scratch } from '../testing/corpus.js'

test('fileChunks: the file in order, in fresh buffers or through a ring of reused ones', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const data = randomBytes(10 * 4096 + 123)
  const path = join(s.dir, 'f')
  await writeFile(path, data)
  const fresh: Buffer[] = []
  for await (const c of fileChunks(path, { chunkSize: 4096 })) fresh.push(Buffer.from(c))
  assert.deepEqual(Buffer.concat(fresh), data)
  const ring = Array.from({ length: 5 }, () => new Uint8Array(4096))
  const seen = new Set<ArrayBufferLike>()
  const copied: Buffer[] = []
  for await (const c of fileChunks(path, { ring, ahead: 3 })) {
    seen.add(c.buffer)
    copied.push(Buffer.from(c)) // a ring's chunk is only valid until two more are asked for
  }
  assert.deepEqual(Buffer.concat(copied), data)
  assert.ok(
    [...seen].every((b) => ring.some((r) => r.buffer === b)),
    'read outside the ring',
  )
  await assert.rejects(async () => {
    for await (const _ of fileChunks(path, { ring: ring.slice(0, 4), ahead: 3 })) void _
  }, RangeError)
})
