import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { readdirSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { sha256Through } from './stream-sha256.js'
import { sys } from './sys.js'

async function drain(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = []
  for await (const c of source) out.push(c)
  return Buffer.concat(out)
}

test('the addon has a hash thread on this Node (OpenSSL in the process)', () => {
  const thread = sys.sha256ThreadStart()
  assert.notEqual(thread, undefined)
  assert.equal(
    sys.sha256ThreadEnd(thread!, true)!.toString('hex'),
    createHash('sha256').digest('hex'),
  )
})

test('sha256Through passes every chunk on and gives the digest of all of them', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 70_000 }), { maxLength: 90 }),
      async (chunks) => {
        let hex: string | undefined
        const passed = await drain(sha256Through(chunks, (h) => (hex = h)))
        const whole = Buffer.concat(chunks)
        assert.deepEqual(passed, whole)
        assert.equal(hex, createHash('sha256').update(whole).digest('hex'))
      },
    ),
    { numRuns: 40 },
  )
})

test('sha256Through: a chunk is hashed before the next is pulled, so a source may reuse one buffer', async () => {
  // One buffer, refilled for every chunk: a hash still reading the previous fill would differ.
  const buffer = Buffer.alloc(1 << 20)
  const fills: Buffer[] = []
  async function* reusing(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 40; i++) {
      randomBytes(buffer.length).copy(buffer)
      fills.push(Buffer.from(buffer))
      yield buffer
    }
  }
  let hex: string | undefined
  for await (const chunk of sha256Through(reusing(), (h) => (hex = h))) void chunk
  assert.equal(hex, createHash('sha256').update(Buffer.concat(fills)).digest('hex'))
})

test('sha256Through: a consumer that stops early or a source that fails leaves no thread behind', async () => {
  const data = randomBytes(1 << 20)
  await stat('/') // the thread pool starts now, not during the count
  const threads = (): number => readdirSync('/proc/self/task').length
  const before = threads()
  for (let i = 0; i < 50; i++) {
    let hex: string | undefined
    for await (const chunk of sha256Through([data, data, data], (h) => (hex = h))) {
      void chunk
      break
    }
    assert.equal(hex, undefined)
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield data
      throw new Error('read failed')
    }
    await assert.rejects(drain(sha256Through(failing(), () => undefined)), /read failed/)
  }
  assert.equal(threads(), before)
  // The process still hashes normally afterwards.
  let hex: string | undefined
  await drain(sha256Through([data], (h) => (hex = h)))
  assert.equal(hex, createHash('sha256').update(data).digest('hex'))
})

test('sha256Through, fresh: chunks hashed behind the producer give the same digest', async () => {
  const expected = createHash('sha256')
  async function* fresh(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 100; i++) {
      const chunk = randomBytes(256 * 1024)
      expected.update(chunk)
      yield chunk
    }
  }
  let hex: string | undefined
  for await (const chunk of sha256Through(fresh(), (h) => (hex = h), { fresh: true })) void chunk
  assert.equal(hex, expected.digest('hex'))
})
