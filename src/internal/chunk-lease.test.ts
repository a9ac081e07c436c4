import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, open } from 'node:fs/promises'
import { join } from 'node:path'
import { holdChunk, leaseChunk, releaseChunk } from './chunk-lease.js'
import { writeChunks, writeChunksToFile } from './chunk-file.js'
import { sha256Through } from './stream-sha256.js'
import { scratchFor } from '../testing/corpus.js'

// A size no other code leases, so that the pool's idle buffers of it are this file's.
const SIZE = 3 * 65536 + 7

test('a released chunk comes back; a held one only after every holder released it', () => {
  const a = leaseChunk(SIZE)
  holdChunk(a.subarray(10, 20)) // a subarray counts as its buffer
  releaseChunk(a)
  const b = leaseChunk(SIZE)
  assert.notEqual(b.buffer, a.buffer, 'still held: not handed out again')
  releaseChunk(a.subarray(5))
  releaseChunk(a) // one release too many: ignored
  const c = leaseChunk(SIZE)
  assert.equal(c.buffer, a.buffer, 'idle after the last release')
  const d = leaseChunk(SIZE)
  assert.notEqual(d.buffer, a.buffer, 'leased once, not twice')
  for (const x of [b, c, d]) releaseChunk(x)
  releaseChunk(Buffer.alloc(4)) // not leased: nothing happens
})

test('sha256Through holds leased chunks until hashed: a consumer releasing at once cannot corrupt the digest', async () => {
  const data = randomBytes(100 * SIZE) // past the 8 MiB the hash may lag
  // The source leases a chunk per slice and fills it; the consumer releases each chunk as
  // soon as it has copied it, so the source would refill it under the hash thread if
  // sha256Through did not hold it.
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let at = 0; at < data.length; at += SIZE) {
      const chunk = leaseChunk(SIZE)
      data.copy(chunk, 0, at, at + SIZE)
      yield chunk
    }
  }
  let hex = ''
  const copy: Buffer[] = []
  let reused = 0
  const seen = new Set<ArrayBufferLike>()
  for await (const chunk of sha256Through(source(), (h) => (hex = h), { fresh: true })) {
    if (seen.has(chunk.buffer)) reused++
    seen.add(chunk.buffer)
    copy.push(Buffer.from(chunk))
    releaseChunk(chunk)
  }
  assert.deepEqual(Buffer.concat(copy), data)
  assert.equal(hex, createHash('sha256').update(data).digest('hex'))
  assert.ok(reused > 0, 'the buffers were recycled along the way')
})

test('writeChunks writes in order, a few in flight, and gives leased chunks back once written', async (t) => {
  const dir = await scratchFor(t)
  const data = randomBytes(25 * SIZE + 1234)
  const buffers = new Set<ArrayBufferLike>()
  function* chunks(): Generator<Uint8Array> {
    for (let at = 0; at < data.length; at += SIZE) {
      const end = Math.min(at + SIZE, data.length)
      const chunk = leaseChunk(SIZE)
      buffers.add(chunk.buffer)
      data.copy(chunk, 0, at, end)
      yield chunk.subarray(0, end - at)
    }
  }
  const path = join(dir, 'out')
  assert.equal(await writeChunksToFile(chunks(), path), data.length)
  assert.deepEqual(await readFile(path), data)
  assert.ok(buffers.size <= 4, `${buffers.size} buffers for 26 chunks`)
})

test('writeChunks: a failing source or write rejects, after the writes in flight ended', async (t) => {
  const dir = await scratchFor(t)
  const path = join(dir, 'out')
  function* failing(): Generator<Uint8Array> {
    yield Buffer.alloc(1000, 1)
    yield Buffer.alloc(1000, 2)
    throw new Error('source broke')
  }
  await assert.rejects(writeChunksToFile(failing(), path), /source broke/)
  assert.equal((await readFile(path)).length, 2000)
  const readOnly = await open(path, 'r')
  try {
    await assert.rejects(writeChunks([Buffer.alloc(10)], readOnly), { code: 'EBADF' })
  } finally {
    await readOnly.close()
  }
})
