import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { setTimeout as sleep } from 'node:timers/promises'
import { gunzipThread } from './gunzip-thread.js'

const options = { chunkSize: 256 << 10, ahead: 1 << 20 }

/** Writes `input` in `piece`-byte writes, ends, and collects the output. */
async function gunzipAll(input: Buffer, piece: number): Promise<Buffer> {
  const g = gunzipThread(options)
  assert.ok(g, 'no gunzip thread')
  const out: Buffer[] = []
  const done = (async () => {
    for await (const c of g) out.push(c as Buffer)
  })()
  for (let at = 0; at < input.length; at += piece) {
    if (!g.write(input.subarray(at, at + piece)))
      await new Promise((resolve) => g.once('drain', resolve))
  }
  g.end()
  await done
  return Buffer.concat(out)
}

test('this Node has the zlib the gunzip thread needs (else gzip falls back to node:zlib)', () => {
  const g = gunzipThread(options)
  assert.ok(g !== undefined)
  g.destroy()
})

test('members inflate to their concatenation, whatever the write sizes', async () => {
  // Half random (stored blocks), half text (matches across output chunks).
  const plain = Buffer.concat([randomBytes(700_000), Buffer.from('layer '.repeat(300_000))])
  const gz = Buffer.concat([
    gzipSync(plain.subarray(0, 123_457)),
    gzipSync(plain.subarray(123_457)),
  ])
  for (const piece of [1, 4096, 65536, gz.length]) {
    const input = piece === 1 ? gz.subarray(0, 200_000) : gz
    const want = piece === 1 ? undefined : plain
    if (want === undefined) {
      await assert.rejects(gunzipAll(input, piece), /unexpected end of file/)
      continue
    }
    assert.ok((await gunzipAll(input, piece)).equals(want), `writes of ${piece} bytes`)
  }
})

test('a reader that does not read stops the thread and, past 4 MiB of input, the writes', async () => {
  const g = gunzipThread(options)!
  const gz = gzipSync(randomBytes(12 << 20), { level: 0 }) // stored: output size = input size
  for (let at = 0; at < gz.length; at += 1 << 20) g.write(gz.subarray(at, at + (1 << 20)))
  await sleep(100)
  // What the thread took: at most 4 MiB of input ahead, its 4 slots and our buffer.
  const accepted = gz.length - g.writableLength
  assert.ok(accepted <= 7 << 20, `${accepted >> 20} MiB accepted without a reader`)
  assert.ok(accepted >= 2 << 20, `only ${accepted >> 10} KiB accepted`)
  assert.ok(g.readableLength <= 1 << 20, `${g.readableLength} bytes buffered`)
  g.destroy()
})
