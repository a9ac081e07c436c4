import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import fc from 'fast-check'
import {
  chainId,
  chainIds,
  EMPTY_TAR_DIFF_ID,
  parseDigest,
  parseDiffId,
  isDigest,
  sha256Digest,
  sha256Stream,
  VerifyDigest,
  digestHex,
} from './index.js'
import { hasCode } from '../errors.js'

test('EMPTY_TAR_DIFF_ID is the sha256 of 1024 zero bytes', () => {
  assert.equal(sha256Digest(new Uint8Array(1024)), EMPTY_TAR_DIFF_ID)
})

test('chainId follows the OCI formula (SPEC Appendix B vector)', () => {
  const d1 = parseDiffId('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef')
  const d2 = parseDiffId(sha256Digest('hello'))
  assert.equal(d2, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824')
  assert.equal(chainId(undefined, d1), d1)
  assert.equal(
    chainId(chainId(undefined, d1), d2),
    'sha256:4f7d145b49775d3f8b9ae2dabf2e4d368e748f6695e12cd5902305eff78f2447',
  )
  assert.deepEqual(chainIds([d1, d2]), [
    d1,
    'sha256:4f7d145b49775d3f8b9ae2dabf2e4d368e748f6695e12cd5902305eff78f2447',
  ])
})

test('chainIds: each ChainID is the sha256 of "<parent> <diffId>"', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 16 }), { minLength: 1, maxLength: 6 }),
      (blobs) => {
        const diffs = blobs.map((b) => parseDiffId(sha256Digest(b)))
        const ids = chainIds(diffs)
        assert.equal(ids[0], diffs[0])
        for (let i = 1; i < ids.length; i++)
          assert.equal(ids[i], sha256Digest(`${ids[i - 1]!} ${diffs[i]!}`))
      },
    ),
  )
})

test('parseDigest accepts only sha256:<64 lowercase hex>', () => {
  const good = 'sha256:' + 'a'.repeat(64)
  assert.equal(parseDigest(good), good)
  assert.equal(digestHex(parseDigest(good)), 'a'.repeat(64))
  for (const bad of [
    '',
    'sha256:',
    'sha256:' + 'A'.repeat(64),
    'sha512:' + 'a'.repeat(64),
    'sha256:' + 'a'.repeat(63),
    good + '\n',
  ]) {
    assert.equal(isDigest(bad), false, bad)
    assert.throws(() => parseDigest(bad), TypeError)
  }
})

test('sha256Stream hashes a stream without holding it', async () => {
  const chunks = [Buffer.from('hel'), Buffer.from('lo')]
  const r = await sha256Stream(Readable.from(chunks))
  assert.deepEqual(r, { digest: sha256Digest('hello'), size: 5 })
})

test('VerifyDigest passes matching bytes and fails at the end with DIGEST_MISMATCH', async () => {
  const out: Buffer[] = []
  const sink = async (src: AsyncIterable<Buffer>): Promise<void> => {
    for await (const c of src) out.push(c)
  }
  await pipeline(
    Readable.from([Buffer.from('hello')]),
    new VerifyDigest(sha256Digest('hello')),
    sink,
  )
  assert.equal(Buffer.concat(out).toString(), 'hello')
  await assert.rejects(
    pipeline(Readable.from([Buffer.from('hellO')]), new VerifyDigest(sha256Digest('hello')), sink),
    (err) =>
      hasCode(err, 'DIGEST_MISMATCH') &&
      (err as unknown as { actual: string }).actual === sha256Digest('hellO'),
  )
})

test('VerifyDigest holds the last chunk back until the digest is checked', async () => {
  const chunks = ['he', 'll', 'O'].map((s) => Buffer.from(s))
  const seen: string[] = []
  await assert.rejects(
    pipeline(
      Readable.from(chunks),
      new VerifyDigest(sha256Digest('hello')),
      async (src: AsyncIterable<Buffer>) => {
        for await (const c of src) seen.push(c.toString())
      },
    ),
    (err) => hasCode(err, 'DIGEST_MISMATCH'),
  )
  assert.ok(seen.join('').length < 5, seen.join('')) // never the whole (wrong) data
  const ok: string[] = []
  await pipeline(
    Readable.from(chunks.slice(0, 2).concat(Buffer.from('o'))),
    new VerifyDigest(sha256Digest('hello')),
    async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) ok.push(c.toString())
    },
  )
  assert.equal(ok.join(''), 'hello')
})
