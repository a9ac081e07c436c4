/**
 * Decompression by magic number, with the real programs (bzip2, xz, zstd) and real data: every
 * compressed archive of the shared corpus must decompress to its manifest DiffID, and a
 * consumer that stops early must leave no process, zombie or descriptor behind.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import { decompress, detectCompression, type Compression } from './decompress.js'
import { hasCode } from '../errors.js'
import { END, fileEntry, headerBlock } from '../testing/make-tar.js'
import { corpusDir, hasCorpus, manifest, scratch } from '../testing/corpus.js'
import { sha256Digest } from '../digest/hash.js'

const MODULE = join(dirname(fileURLToPath(import.meta.url)), 'decompress.js')

const installed = (program: string): boolean =>
  spawnSync(program, ['--version'], { stdio: 'ignore' }).status === 0
const PROGRAMS_MISSING = ['bzip2', 'xz', 'zstd'].filter((p) => !installed(p))
const needPrograms = PROGRAMS_MISSING.length > 0 && `not installed: ${PROGRAMS_MISSING.join(' ')}`
const needCorpus = !hasCorpus() && 'no corpus'
const hasProc = existsSync('/proc/self/stat')

/** A small but real tar: text, incompressible bytes, a directory, the end blocks. */
const TAR = Buffer.concat([
  headerBlock({ name: 'etc/', typeflag: '5' }),
  fileEntry('etc/os-release', 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n'.repeat(40)),
  fileEntry('usr/lib/blob.bin', randomBytes(48 * 1024)),
  END,
])

/** `data` compressed by the real program (gzip by node:zlib). */
function compress(format: Exclude<Compression, 'none'>, data: Uint8Array): Buffer {
  if (format === 'gzip') return gzipSync(data)
  const r = spawnSync(format, ['-c', '-q'], { input: data, maxBuffer: 1 << 30 })
  assert.equal(r.status, 0, `${format} failed: ${r.stderr.toString()}`)
  return r.stdout
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Uint8Array[] = []
  for await (const c of stream) out.push(c)
  return Buffer.concat(out)
}

/** `data` a byte at a time, then (past `bytes`) in 1000-byte chunks. */
async function* bytewise(data: Uint8Array, bytes = Infinity): AsyncGenerator<Uint8Array> {
  let i = 0
  for (; i < Math.min(bytes, data.length); i++) yield data.subarray(i, i + 1)
  for (; i < data.length; i += 1000) yield data.subarray(i, i + 1000)
}

async function decompressAll(
  data: Uint8Array,
  chunks: 'whole' | 'bytes' = 'whole',
): Promise<{ compression: Compression; out: Buffer }> {
  // The first 1 KiB a byte at a time covers the sniffing and the engines' headers.
  const source = chunks === 'whole' ? Readable.from([data]) : bytewise(data, 1024)
  const { compression, stream } = await decompress(source)
  return { compression, out: await collect(stream) }
}

/** Decompression fails with DECOMPRESS_FAILED for `format`, with a detail to show. */
async function assertFails(data: Uint8Array, format: Compression, why: string): Promise<void> {
  await assert.rejects(
    async () => decompressAll(data),
    (err: unknown) => {
      assert.ok(hasCode(err, 'DECOMPRESS_FAILED'), `${why}: ${String(err)}`)
      const e = err as unknown as { compression: string; detail: string }
      assert.equal(e.compression, format)
      assert.notEqual(e.detail, '')
      return true
    },
    why,
  )
}

interface Proc {
  readonly pid: number
  readonly comm: string
  readonly state: string
}

/** Our child processes, from /proc (zombies included: they still have an entry). */
function children(): Proc[] {
  const out: Proc[] = []
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8')
    } catch {
      continue // exited meanwhile
    }
    const close = stat.lastIndexOf(')')
    const [state, ppid] = stat.slice(close + 2).split(' ')
    if (Number(ppid) === process.pid)
      out.push({ pid: Number(d), comm: stat.slice(stat.indexOf('(') + 1, close), state: state! })
  }
  return out
}

/** Bytes of a compressed stream that hold little more than its magic number. */
const SNIFF_PROBE = 12

/** Resolves once `s` has closed, whatever it closed with. */
const closed = (s: Readable): Promise<void> =>
  s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))

const openFds = (): number => readdirSync('/proc/self/fd').length

test('detectCompression knows Docker magic numbers, zstd skippable frames included', () => {
  const b = (...x: number[]): Uint8Array => Uint8Array.from(x)
  assert.equal(detectCompression(b(0x1f, 0x8b, 0x08, 0, 0)), 'gzip')
  assert.equal(detectCompression(Buffer.from('BZh91AY&SY')), 'bzip2')
  assert.equal(detectCompression(b(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4)), 'xz')
  assert.equal(detectCompression(b(0x28, 0xb5, 0x2f, 0xfd)), 'zstd')
  assert.equal(detectCompression(b(0x5f, 0x2a, 0x4d, 0x18, 4, 0, 0, 0)), 'zstd') // skippable
  assert.equal(detectCompression(b(0x50, 0x2a, 0x4d, 0x18, 4, 0, 0)), 'none') // needs 8 bytes
  assert.equal(detectCompression(b(0x1f, 0x8b, 0x07)), 'none') // deflate only, as Docker
  assert.equal(detectCompression(b(0x1f, 0x8b)), 'none')
  assert.equal(detectCompression(b(0xfd, 0x37, 0x7a, 0x58, 0x5a)), 'none')
  assert.equal(detectCompression(b()), 'none')
  assert.equal(detectCompression(TAR), 'none')
  // A view into a larger buffer, at an odd offset.
  const big = Buffer.concat([Buffer.from([9]), b(0x51, 0x2a, 0x4d, 0x18, 0, 0, 0, 0)])
  assert.equal(detectCompression(big.subarray(1)), 'zstd')
})

const corpusRows = hasCorpus()
  ? manifest().filter(
      (r) =>
        r.file !== undefined &&
        r.compression !== undefined &&
        r.compression !== 'none' &&
        !(r.file.startsWith('hostile/') && basename(r.file).startsWith('bomb-')),
    )
  : []

test(
  'every compressed corpus archive decompresses to its DiffID and size',
  { skip: needCorpus || needPrograms },
  async (t) => {
    assert.ok(corpusRows.length >= 10, 'too few compressed archives in the corpus')
    for (const row of corpusRows)
      await t.test(row.file, async () => {
        const { compression, stream } = await decompress(
          createReadStream(join(corpusDir(), row.file!)),
        )
        assert.equal(compression, row.compression)
        const hash = createHash('sha256')
        let size = 0
        for await (const c of stream as AsyncIterable<Buffer>) {
          hash.update(c)
          size += c.length
        }
        assert.equal(`sha256:${hash.digest('hex')}`, row.diff_id)
        assert.equal(size, row.uncompressed_size)
      })
  },
)

test('an uncompressed stream passes through byte for byte, chunk for chunk', async () => {
  const chunks = [TAR.subarray(0, 3), TAR.subarray(3, 700), TAR.subarray(700)]
  const { compression, stream } = await decompress(Readable.from(chunks))
  assert.equal(compression, 'none')
  const out = await collect(stream)
  assert.ok(out.equals(TAR))
})

test('an empty input is "none" and yields nothing', async () => {
  for (const source of [Readable.from([]), bytewise(new Uint8Array(0))]) {
    const { compression, stream } = await decompress(source)
    assert.equal(compression, 'none')
    assert.equal((await collect(stream)).length, 0)
  }
})

test('inputs shorter than a magic number pass through', async () => {
  for (const short of [[0x1f], [0x1f, 0x8b], [0x42, 0x5a], [0xfd, 0x37, 0x7a, 0x58, 0x5a]]) {
    const data = Uint8Array.from(short)
    for (const chunks of ['whole', 'bytes'] as const) {
      const r = await decompressAll(data, chunks)
      assert.equal(r.compression, 'none')
      assert.deepEqual([...r.out], short)
    }
  }
})

for (const format of ['gzip', 'bzip2', 'xz', 'zstd'] as const) {
  const skip = format !== 'gzip' && !installed(format) && `${format} not installed`

  test(
    `${format}: decompresses what the real compressor wrote, fed whole or a byte at a time`,
    { skip },
    async () => {
      const data = compress(format, TAR)
      for (const chunks of ['whole', 'bytes'] as const) {
        const r = await decompressAll(data, chunks)
        assert.equal(r.compression, format)
        assert.equal(sha256Digest(r.out), sha256Digest(TAR), `fed ${chunks}`)
      }
    },
  )

  test(`${format}: concatenated streams decompress to the concatenation`, { skip }, async () => {
    const cut = 5000
    const data = Buffer.concat([
      compress(format, TAR.subarray(0, cut)),
      compress(format, TAR.subarray(cut)),
    ])
    const r = await decompressAll(data)
    assert.ok(r.out.equals(TAR))
  })

  test(`${format}: truncated or corrupt data fails with DECOMPRESS_FAILED`, { skip }, async () => {
    const data = compress(format, TAR)
    await assertFails(data.subarray(0, data.length >> 1), format, 'cut in half')
    await assertFails(data.subarray(0, data.length - 1), format, 'last byte missing')
    await assertFails(data.subarray(0, SNIFF_PROBE), format, 'magic number only')
    const corrupt = Buffer.from(data)
    corrupt[corrupt.length >> 1]! ^= 0x55
    await assertFails(corrupt, format, 'a byte flipped in the middle')
  })
}

test('gzip: garbage after the last member fails, as with Go', async () => {
  await assertFails(Buffer.concat([gzipSync(TAR), Buffer.from('garbage')]), 'gzip', 'garbage')
})

test(
  'corpus: truncated corpus archives fail with DECOMPRESS_FAILED',
  { skip: needCorpus || needPrograms },
  async () => {
    const seen = new Set<string>()
    for (const row of corpusRows) {
      if (seen.has(row.compression!) || row.file!.startsWith('hostile/')) continue
      seen.add(row.compression!)
      const data = readFileSync(join(corpusDir(), row.file!))
      await assertFails(data.subarray(0, data.length - 4), row.compression!, row.file!)
    }
    assert.deepEqual([...seen].sort(), ['bzip2', 'gzip', 'zstd'])
  },
)

test(
  'a missing program gives DECOMPRESSOR_MISSING with the program and its package',
  { skip: needPrograms },
  async (t) => {
    const empty = await scratch()
    t.after(empty.remove)
    const inputs = { xz: compress('xz', TAR), bzip2: compress('bzip2', TAR) }
    const path = process.env['PATH']
    process.env['PATH'] = empty.dir
    try {
      for (const [format, program, pkg] of [
        ['xz', 'xz', 'xz-utils'],
        ['bzip2', 'bzip2', 'bzip2'],
      ] as const) {
        const source = Readable.from([inputs[format]])
        await assert.rejects(decompress(source), (err: unknown) => {
          assert.ok(hasCode(err, 'DECOMPRESSOR_MISSING'), String(err))
          const e = err as unknown as { program: string; package: string; compression: string }
          assert.deepEqual([e.compression, e.program, e.package], [format, program, pkg])
          assert.match((err as Error).message, new RegExp(`"${pkg}"`))
          return true
        })
        assert.ok(source.destroyed, 'the source was not released')
      }
    } finally {
      process.env['PATH'] = path
    }
  },
)

test(
  'a consumer that stops early kills the program: no process, zombie or descriptor left',
  { skip: needCorpus || needPrograms || (!hasProc && 'no /proc') },
  async (t) => {
    const bomb = join(corpusDir(), 'hostile', 'bomb-10g.tar.bz2') // 7.5 kB -> 10 GiB
    // Warm up: libuv opens its SIGCHLD pipe on the first spawn and keeps it.
    await collect((await decompress(Readable.from([compress('bzip2', TAR)]))).stream)
    const fds = openFds()
    const source = createReadStream(bomb)
    const { compression, stream } = await decompress(source)
    t.after(() => stream.destroy()) // when an assertion fails before the break
    assert.equal(compression, 'bzip2')
    let first = 0
    const rss = process.memoryUsage().rss
    for await (const c of stream as AsyncIterable<Buffer>) {
      first += c.length
      // The consumer pauses: bzip2 must block on the full pipe, not fill our memory.
      await sleep(1000)
      // At most its read-ahead (1 MiB) and the chunk that crossed it.
      assert.ok(stream.readableLength <= 1280 * 1024, `${stream.readableLength} bytes buffered`)
      break
    }
    assert.ok(first > 0)
    const growth = process.memoryUsage().rss - rss
    assert.ok(growth < 64 << 20, `RSS grew by ${growth >> 20} MiB while the consumer paused`)
    await closed(stream)
    await closed(source)
    assert.deepEqual(children(), [], 'a decompressor is still there')
    assert.equal(openFds(), fds, 'descriptors leaked')
  },
)

test(
  'the program is killed when the signal aborts, even while the source stalls',
  { skip: needPrograms || (!hasProc && 'no /proc') },
  async (t) => {
    const data = compress('xz', TAR)
    const source = new Readable({ read: () => undefined })
    source.push(data.subarray(0, 100)) // then nothing, ever
    const ac = new AbortController()
    t.after(() => ac.abort()) // when an assertion fails before the abort
    const { compression, stream } = await decompress(source, { signal: ac.signal })
    assert.equal(compression, 'xz')
    const running = children()
    assert.deepEqual(
      running.map((p) => p.comm),
      ['xz'],
    )
    const failed = assert.rejects(collect(stream), { name: 'AbortError' })
    await sleep(50)
    ac.abort()
    await failed
    await closed(stream)
    assert.ok(source.destroyed, 'the stalled source was not released')
    assert.ok(!existsSync(`/proc/${running[0]!.pid}`), 'xz is still there (not reaped)')
  },
)

test('an abort while sniffing a stalled source rejects at once', async (t) => {
  const source = new Readable({ read: () => undefined })
  source.push(Buffer.from([0x1f, 0x8b])) // fewer bytes than a decision needs
  t.after(() => source.destroy())
  const ac = new AbortController()
  const pending = decompress(source, { signal: ac.signal })
  await sleep(20)
  ac.abort()
  await assert.rejects(pending, { name: 'AbortError' })
  assert.ok(source.destroyed)
  await assert.rejects(decompress(Readable.from([TAR]), { signal: ac.signal }), {
    name: 'AbortError',
  })
})

test(
  'a failing source fails the stream with its own error and stops the program',
  { skip: needPrograms || (!hasProc && 'no /proc') },
  async () => {
    const data = compress('zstd', TAR)
    const boom = new Error('network reset')
    async function* source(): AsyncGenerator<Uint8Array> {
      yield data.subarray(0, data.length >> 1)
      await sleep(20)
      throw boom
    }
    const { stream } = await decompress(source())
    await assert.rejects(collect(stream), (err) => err === boom)
    await closed(stream)
    assert.deepEqual(children(), [])
  },
)

test('the 1 GiB gzip bomb streams with flat memory', { skip: needCorpus }, () => {
  const row = manifest().find((r) => r.file === 'hostile/bomb-1g.tar.gz')
  assert.ok(row, 'bomb-1g is not in the manifest')
  const script = `
    import { createReadStream } from 'node:fs'
    import { createHash } from 'node:crypto'
    const { decompress } = await import(${JSON.stringify(pathToFileURL(MODULE).href)})
    const { compression, stream } = await decompress(createReadStream(process.argv[1]))
    const hash = createHash('sha256')
    let size = 0
    for await (const c of stream) { hash.update(c); size += c.length }
    const maxRssKb = process.resourceUsage().maxRSS
    console.log(JSON.stringify({ compression, size, diffId: 'sha256:' + hash.digest('hex'), maxRssKb }))
  `
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', script, join(corpusDir(), row.file!)],
    { encoding: 'utf8' },
  )
  assert.equal(r.status, 0, r.stderr)
  const res = JSON.parse(r.stdout) as {
    compression: string
    size: number
    diffId: string
    maxRssKb: number
  }
  assert.equal(res.compression, 'gzip')
  assert.equal(res.size, row.uncompressed_size)
  assert.equal(res.diffId, row.diff_id)
  assert.ok(res.maxRssKb < 200 * 1024, `peak RSS ${res.maxRssKb >> 10} MiB`)
})
