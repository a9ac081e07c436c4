import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { encodeEntry, goJsonString, JsonPacker } from './packer.js'
import { decodeEntry, unpack } from './unpacker.js'
import { hasCode } from '../errors.js'
import type { TarSplitEntry } from './entry.js'

async function collect(s: AsyncIterable<unknown>): Promise<unknown[]> {
  const out = []
  for await (const x of s) out.push(x)
  return out
}

async function pack(entries: TarSplitEntry[]): Promise<Buffer> {
  const sink = new PassThrough()
  const parts: Buffer[] = []
  sink.on('data', (c: Buffer) => parts.push(c))
  const p = new JsonPacker(sink)
  for (const e of entries) await p.add(e)
  await p.close()
  return Buffer.concat(parts)
}

test('entries are encoded as Go writes them: key order, omitempty, null payload', () => {
  assert.equal(
    encodeEntry({
      type: 1,
      name: Buffer.from('etc/hosts'),
      size: 3,
      crc: Buffer.from('6149981000000000', 'hex'),
      position: 3,
    }),
    '{"type":1,"name":"etc/hosts","size":3,"payload":"YUmYEAAAAAA=","position":3}\n',
  )
  assert.equal(
    encodeEntry({ type: 1, name: Buffer.from('etc/'), size: 0, position: 1 }),
    '{"type":1,"name":"etc/","payload":null,"position":1}\n',
  )
  assert.equal(
    encodeEntry({ type: 2, payload: Buffer.from('ab'), position: 0 }),
    '{"type":2,"payload":"YWI=","position":0}\n',
  )
  // A name that is not UTF-8 goes to name_raw, base64.
  assert.equal(
    encodeEntry({ type: 1, name: Buffer.from([0x66, 0xe9]), size: 0, position: 0 }),
    '{"type":1,"name_raw":"Zuk=","payload":null,"position":0}\n',
  )
})

test('strings are escaped as Go escapes them (HTML-safe, \\u00XX controls)', () => {
  assert.equal(
    goJsonString('a<b>&"\\\n\r\t\u0001\u007f\u2028\u2029é'),
    '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\r\\t\\u0001\u007f\\u2028\\u2029é"',
  )
})

test('pack then unpack gives the entries back, positions assigned in order', async () => {
  const entries: TarSplitEntry[] = [
    { type: 2, payload: Buffer.alloc(512, 1), position: 0 },
    { type: 1, name: Buffer.from('a'), size: 3, crc: Buffer.alloc(8, 7), position: 0 },
    { type: 1, name: Buffer.from([0xff, 0x2f, 0x62]), size: 0, position: 0 },
    { type: 2, payload: Buffer.alloc(1024), position: 0 },
    // Lines longer than the packer's buffer, multi-byte text, and many lines across flushes.
    { type: 1, name: Buffer.from('é'.repeat(40_000)), size: 1, position: 0 },
    { type: 2, payload: Buffer.alloc(200_000, 3), position: 0 },
    ...Array.from({ length: 3000 }, (_, i): TarSplitEntry => {
      return { type: 1, name: Buffer.from(`dir/ü-${i}`), size: i, position: 0 }
    }),
  ]
  const gz = await pack(entries)
  const back = (await collect(unpack([gz]))) as TarSplitEntry[]
  assert.deepEqual(
    back,
    entries.map((e, i) => ({ ...e, position: i })),
  )
})

test('the packer refuses duplicate paths after cleaning (a, ./a, a/)', async () => {
  // Go's filepath.Clean keeps a leading '/', so '/a' is another path than 'a'.
  for (const second of ['a', './a', 'a/', 'b/../a', 'a//']) {
    const p = new JsonPacker(new PassThrough().resume())
    await p.add({ type: 1, name: Buffer.from('a'), size: 0, position: 0 })
    await assert.rejects(p.add({ type: 1, name: Buffer.from(second), size: 0, position: 0 }), (e) =>
      hasCode(e, 'TARSPLIT_DUPLICATE_PATH'),
    )
    p.destroy()
  }
})

test('the unpacker refuses duplicates, bad base64, bad JSON, and accepts any whitespace and multi-member gzip', async () => {
  const dup = '{"type":1,"name":"x","position":0}\n{"type":1,"name":"./x","position":1}\n'
  await assert.rejects(collect(unpack([gzipSync(dup)])), (e) =>
    hasCode(e, 'TARSPLIT_DUPLICATE_PATH'),
  )
  await assert.rejects(collect(unpack([gzipSync('{"type":2,"payload":"!!","position":0}')])), (e) =>
    hasCode(e, 'TARSPLIT_INVALID_METADATA'),
  )
  await assert.rejects(collect(unpack([gzipSync('{"type":2,')])), (e) =>
    hasCode(e, 'TARSPLIT_INVALID_METADATA'),
  )
  await assert.rejects(collect(unpack([Buffer.from('not gzip at all')])), (e) =>
    hasCode(e, 'TARSPLIT_INVALID_METADATA'),
  )
  const two = Buffer.concat([
    gzipSync('{"type":2,"payload":"YQ==","position":0}  '),
    gzipSync('\n\t{"type":2,"payload":"Yg==","position":1}{"type":9,"position":2}'),
  ])
  const got = (await collect(unpack([two]))) as { type: number }[]
  assert.deepEqual(
    got.map((e) => e.type),
    [2, 2, 9],
  )
})

test('unpacker fuzz: random bytes and mutated metadata fail only with coded errors', async () => {
  const valid =
    '{"type":1,"name":"etc/hosts","size":3,"payload":"YUmYEAAAAAA=","position":3}\n{"type":2,"payload":"YWI=","position":4}\n'
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc
          .tuple(fc.nat(valid.length), fc.integer({ min: 0, max: 127 }))
          .map(([i, c]) =>
            Buffer.from(valid.slice(0, i) + String.fromCharCode(c) + valid.slice(i + 1)),
          ),
      ),
      fc.boolean(),
      async (bytes, gz) => {
        try {
          await collect(unpack([gz ? gzipSync(bytes) : Buffer.from(bytes)], { uncompressed: !gz }))
        } catch (err) {
          assert.ok(
            typeof (err as { code?: unknown }).code === 'string' &&
              (err as { code: string }).code.startsWith('TARSPLIT_'),
            String(err),
          )
        }
      },
    ),
  )
})

test('decodeEntry keeps unknown types and reads name_raw over name', () => {
  assert.deepEqual(decodeEntry('{"type":7,"position":5}'), { type: 7, position: 5 })
  const e = decodeEntry(
    '{"type":1,"name":"ignored","name_raw":"Zuk=","size":1,"payload":"AAAAAAAAAAA=","position":0}',
  ) as { name: Buffer }
  assert.deepEqual(e.name, Buffer.from([0x66, 0xe9]))
})

test('payloads are accepted exactly when they are padded standard base64', () => {
  // The grammar as first written (a slow regular expression), against the unpacker's check.
  const padded = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
  const text = fc.string({
    unit: fc.constantFrom(...'AZaz09+/=-_ '.split('')),
    maxLength: 13,
  })
  fc.assert(
    fc.property(text, (s) => {
      let accepted = true
      try {
        decodeEntry(JSON.stringify({ type: 2, payload: s, position: 0 }))
      } catch (err) {
        assert.ok(hasCode(err, 'TARSPLIT_INVALID_METADATA'))
        accepted = false
      }
      assert.equal(accepted, padded.test(s), JSON.stringify(s))
    }),
    { numRuns: 20000 },
  )
})
