import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Crc64, crc64 } from './crc64.js'

/** Bit-at-a-time CRC-64/GO-ISO with BigInt: slow, obviously right, the oracle. */
function reference(data: Uint8Array): string {
  const poly = 0xd800000000000000n
  let crc = 0xffffffffffffffffn
  for (const b of data) {
    crc ^= BigInt(b)
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n
  }
  return (crc ^ 0xffffffffffffffffn).toString(16).padStart(16, '0')
}

test('CRC-64/ISO test vectors from SPEC §4.2', () => {
  assert.equal(crc64(Buffer.from('123456789')).toString('hex'), 'b90956c775a41001')
  assert.equal(crc64(Buffer.from('123456789')).toString('base64'), 'uQlWx3WkEAE=')
  assert.equal(crc64(Buffer.from('hi\n')).toString('base64'), 'YUmYEAAAAAA=')
  assert.equal(crc64(Buffer.from('some test data')).toString('base64'), 'jYS51eXFUHI=')
  assert.equal(crc64(Buffer.alloc(0)).toString('hex'), '0000000000000000')
})

test('CRC-64 equals the bitwise reference, whatever the chunking', () => {
  fc.assert(
    // Up to 3000 bytes and cuts anywhere: the JavaScript and the native paths, mixed.
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(3000)), (data, cuts) => {
      const c = new Crc64()
      let pos = 0
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const end = Math.min(cut, data.length)
        if (end > pos) c.update(data.subarray(pos, end))
        pos = Math.max(pos, end)
      }
      c.update(data.subarray(pos))
      assert.equal(c.digest().toString('hex'), reference(data))
    }),
  )
})

test('CRC-64 of long inputs (the native folding path) matches the JavaScript path', () => {
  // Lengths around the native path's steps (128-byte blocks, 16-byte tail) and an unaligned
  // start, each against the same data fed 100 bytes at a time (under NATIVE_MIN).
  const data = Buffer.alloc((1 << 20) * 2 + 777)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
  for (const [start, length] of [
    [0, data.length],
    [3, 255],
    [1, 256],
    [5, 257],
    [7, 383],
    [0, 4096 + 15],
    [11, 100_003],
  ] as const) {
    const part = data.subarray(start, start + length)
    const whole = new Crc64().update(part).digest()
    const small = new Crc64()
    for (let p = 0; p < part.length; p += 100) small.update(part.subarray(p, p + 100))
    assert.deepEqual(whole, small.digest(), `${length} bytes from ${start}`)
  }
})
