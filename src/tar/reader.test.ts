import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { TarReader } from './reader.js'
import { TarError } from './errors.js'
import { TYPE } from './types.js'
import { corpusDir, HUGE_SPARSE, hasCorpus, manifest } from '../testing/corpus.js'
import { chunked, END, fileEntry, headerBlock } from '../testing/make-tar.js'
import { formatPaxRecord } from './pax.js'

/**
 * `data` through a ring of `n` reused buffers, as fileChunks hands out chunks with
 * `ahead = n - 2`: when chunk i is handed out, the buffer of chunk i - 2 is being refilled
 * (here: scribbled over).
 */
function* ring(data: Uint8Array, size: number, n = 5): Generator<Uint8Array> {
  const buffers = Array.from({ length: n }, () => Buffer.alloc(size))
  for (let i = 0, pos = 0; pos < data.length; i++, pos += size) {
    buffers[(i + n - 2) % n]!.fill(0xa5)
    const b = buffers[i % n]!
    b.set(data.subarray(pos, pos + size))
    yield b.subarray(0, Math.min(size, data.length - pos))
  }
}

/** Everything a reader reports about a stream, for comparing two ways of feeding it. */
async function eventLog(
  source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<string[]> {
  const log: string[] = []
  const r = new TarReader(source, { rawAccounting: true })
  try {
    for (;;) {
      const e = await r.next()
      const raw = r.takeRaw()
      log.push(`raw ${createHash('sha256').update(raw).digest('hex')} ${raw.length}`)
      if (e === undefined) break
      const h = e.header
      const hash = createHash('sha256')
      let n = 0
      for await (const c of e.body) {
        hash.update(c)
        n += c.length
      }
      log.push(
        JSON.stringify({
          ...h,
          nameRaw: h.nameRaw.toString('hex'),
          linknameRaw: h.linknameRaw.toString('hex'),
          pax: h.pax && [...h.pax].map(([k, v]) => [k, v.toString('hex')]),
          xattrs: h.xattrs && [...h.xattrs].map(([k, v]) => [k, v.toString('hex')]),
          body: `${hash.digest('hex')} ${n}`,
        }),
      )
    }
    const rest = createHash('sha256')
    for await (const p of r.rest()) rest.update(p)
    log.push(`rest ${rest.digest('hex')}`)
  } catch (err) {
    log.push(`error ${(err as TarError).code} ${(err as TarError).offset}`)
  }
  return log
}

const small = hasCorpus()
  ? manifest().filter(
      (r) =>
        r.file !== undefined &&
        (r.compression ?? 'none') === 'none' &&
        r.category !== 'hostile' &&
        !HUGE_SPARSE.has(r.file) &&
        // 10 GiB of sparse holes, read five times over: the conformance test reads it once.
        !r.file.endsWith('test_read_format_gtar_sparse_skip_entry.tar') &&
        statSync(join(corpusDir(), r.file)).size <= 4 << 20,
    )
  : []

test(
  'reader: same results fed whole, byte by byte and in random splits (corpus)',
  { skip: small.length === 0 && 'no corpus' },
  async () => {
    for (const row of small) {
      const data = readFileSync(join(corpusDir(), row.file!))
      const whole = await eventLog([data])
      const rnd = fc.sample(fc.array(fc.nat(data.length), { maxLength: 64 }), {
        numRuns: 3,
        seed: data.length,
      })
      for (const cuts of rnd)
        assert.deepEqual(
          await eventLog(chunked(data, cuts)),
          whole,
          `${row.file!} split at ${cuts.length} points`,
        )
      assert.deepEqual(await eventLog(ring(data, 1000)), whole, `${row.file!} through a ring`)
      if (data.length <= 64 << 10) {
        const bytes = (function* () {
          for (let i = 0; i < data.length; i++) yield data.subarray(i, i + 1)
        })()
        assert.deepEqual(await eventLog(bytes), whole, `${row.file!} byte by byte`)
      }
    }
  },
)

test('reader: holds no view of a chunk once it has asked for the one after next (a ring of reused buffers)', async () => {
  const pax = Buffer.concat([
    formatPaxRecord('path', 'p/' + 'x'.repeat(3000)),
    formatPaxRecord('mtime', '1700000000.5'),
  ])
  const tar = Buffer.concat([
    fileEntry('PaxHeaders/a', pax, { typeflag: 'x' }),
    fileEntry('a', 'y'.repeat(2500)),
    fileEntry('././@LongLink', 'l/' + 'z'.repeat(2100) + '\0', { typeflag: 'L', magic: 'gnu' }),
    fileEntry('b', 'hello', { magic: 'gnu' }),
    END,
    Buffer.alloc(3000, 7), // trailing bytes, read back in one piece longer than two chunks
  ])
  const whole = await eventLog([tar])
  assert.ok(whole.some((l) => l.includes(Buffer.from('p/xxx').toString('hex'))))
  for (const size of [512, 700, 1000]) assert.deepEqual(await eventLog(ring(tar, size)), whole)
})

test('reader: a body left unread is skipped, and reading it late is refused', async () => {
  const tar = Buffer.concat([fileEntry('a', 'x'.repeat(700)), fileEntry('b', 'hello'), END])
  const r = new TarReader([tar])
  const a = (await r.next())!
  const b = (await r.next())!
  assert.equal(b.header.name, 'b')
  let text = ''
  for await (const c of b.body) text += Buffer.from(c).toString()
  assert.equal(text, 'hello')
  await assert.rejects(async () => {
    for await (const _ of a.body) void _
  }, TypeError)
  assert.equal(await r.next(), undefined)
})

test('reader: truncated stream fails with TAR_UNEXPECTED_EOF at the byte offset', async () => {
  const tar = Buffer.concat([fileEntry('a', 'x'.repeat(100)), fileEntry('b', 'y'.repeat(600)), END])
  // Cut inside the second header.
  await assert.rejects(read(tar.subarray(0, 512 + 512 + 100)), (e) =>
    isTarError(e, 'TAR_UNEXPECTED_EOF', 1024),
  )
  // Cut inside the second entry's data.
  await assert.rejects(read(tar.subarray(0, 1024 + 512 + 300)), (e) =>
    isTarError(e, 'TAR_UNEXPECTED_EOF', 1024 + 512 + 300),
  )
})

test('reader: a bad checksum fails with TAR_BAD_CHECKSUM at the header offset', async () => {
  const tar = Buffer.concat([fileEntry('a', 'x'), headerBlock({ name: 'b', checksum: false }), END])
  await assert.rejects(read(tar), (e) => isTarError(e, 'TAR_BAD_CHECKSUM', 1024))
})

test('reader: garbage in a numeric field fails with TAR_INVALID_NUMBER at the header offset', async () => {
  const tar = Buffer.concat([
    fileEntry('a', 'x'),
    headerBlock({ name: 'b', sizeField: '12x45\0\0\0\0\0\0\0' }),
    END,
  ])
  await assert.rejects(read(tar), (e) => isTarError(e, 'TAR_INVALID_NUMBER', 1024))
  const mtime = Buffer.concat([headerBlock({ name: 'c', mtime: '9999999999z\0' }), END])
  await assert.rejects(read(mtime), (e) => isTarError(e, 'TAR_INVALID_NUMBER', 0))
})

test('reader: a zero block followed by a non-zero block is an error; one zero block then EOF ends', async () => {
  const bad = Buffer.concat([fileEntry('a', 'x'), Buffer.alloc(512), headerBlock({ name: 'b' })])
  await assert.rejects(read(bad), (e) => isTarError(e, 'TAR_INVALID_HEADER', 1536))
  const warnings: string[] = []
  const one = Buffer.concat([fileEntry('a', 'x'), Buffer.alloc(512)])
  assert.deepEqual(await read(one, (c) => warnings.push(c)), ['a'])
  assert.deepEqual(warnings, ['TAR_MISSING_EOF_MARKER'])
})

test('reader: base-256 numbers and legacy \\0 type flags as Go reads them', async () => {
  const h = headerBlock({ name: 'dir/', typeflag: '\0', magic: 'v7' })
  const r = new TarReader([Buffer.concat([h, END])])
  const e = (await r.next())!
  assert.equal(e.header.typeflag, TYPE.DIR)
  const b = headerBlock({
    name: 'big',
    sizeField: '\x80' + '\0'.repeat(6) + '\x00\x00\x00\x00\x05',
  })
  // re-checksum after writing a binary size: build by hand
  const blk = Buffer.from(b)
  blk.write('        ', 148, 'latin1')
  let sum = 0
  for (const c of blk) sum += c
  blk.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  const tar = Buffer.concat([blk, Buffer.from('hello'), Buffer.alloc(507), END])
  const r2 = new TarReader([tar])
  assert.equal((await r2.next())!.header.size, 5)
})

test('reader property: random bytes and mutated archives fail only with TarError carrying an offset', async () => {
  const seed = Buffer.concat([
    fileEntry('a/b', 'hello world'),
    fileEntry('c'.repeat(99), 'x'.repeat(1000), { magic: 'gnu' }),
    END,
  ])
  const seeds: Buffer[] = [seed]
  if (hasCorpus())
    for (const f of [
      'conformance/go/pax.tar',
      'conformance/go/gnu.tar',
      'conformance/go/sparse-formats.tar',
      'conformance/generated/gnutar-posix-all.tar',
    ]) {
      try {
        seeds.push(readFileSync(join(corpusDir(), f)))
      } catch {
        // not in this corpus share
      }
    }
  const mutated = fc
    .tuple(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.option(fc.nat()),
    )
    .map(([base, edits, cut]) => {
      const b = Buffer.from(base)
      for (const [i, v] of edits) b[i % b.length] = v
      return cut === null ? b : b.subarray(0, cut % (b.length + 1))
    })
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        mutated,
        fc.uint8Array({ maxLength: 3000 }).map((u) => Buffer.from(u)),
      ),
      async (data) => {
        try {
          const r = new TarReader([data], { rawAccounting: true })
          for (;;) {
            const e = await r.next()
            if (e === undefined) break
            for await (const _ of e.body) void _
          }
          for await (const _ of r.rest()) void _
        } catch (err) {
          assert.ok(err instanceof TarError, `not a TarError: ${String(err)}`)
          assert.ok(
            Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= data.length,
            `offset ${err.offset}`,
          )
        }
      },
    ),
    { numRuns: 300 },
  )
})

async function read(tar: Buffer, onWarning?: (code: string) => void): Promise<string[]> {
  const names: string[] = []
  const r = new TarReader([tar], onWarning ? { onWarning } : {})
  for (;;) {
    const e = await r.next()
    if (e === undefined) return names
    names.push(e.header.name)
    for await (const _ of e.body) void _
  }
}

function isTarError(e: unknown, code: string, offset: number): boolean {
  assert.ok(e instanceof TarError, String(e))
  assert.equal(e.code, code)
  assert.equal(e.offset, offset)
  return true
}
