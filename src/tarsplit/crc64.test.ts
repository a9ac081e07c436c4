import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Crc64, crc64 } from './crc64.js'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

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
    // Up to 3000 bytes and cuts anywhere: both the JavaScript and the WebAssembly paths, mixed.
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

test('CRC-64 of inputs over 1 MiB (the WebAssembly path in several pieces) matches the JavaScript path', () => {
  const data = Buffer.alloc((1 << 20) * 2 + 777)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
  const whole = new Crc64().update(data).digest()
  const small = new Crc64()
  for (let p = 0; p < data.length; p += 500) small.update(data.subarray(p, p + 500)) // under WASM_MIN
  assert.deepEqual(whole, small.digest())
})

test(
  'crc64-wasm.ts is what scripts/build-wasm.mjs makes of crc64.wat',
  { skip: !hasWabt() && 'wabt not installed' },
  () => {
    const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { cwd: REPO })
    assert.equal(r.status, 0, r.stderr.toString())
  },
)

function hasWabt(): boolean {
  return existsSync(join(REPO, 'node_modules', 'wabt'))
}
