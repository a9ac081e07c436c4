import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { Readable } from 'node:stream'
import fc from 'fast-check'
import { corpusDir, hasCorpus, manifest, scratch } from '../testing/corpus.js'
import { encodeHeader, type TarHeaderInput } from './encode.js'
import { readTar } from './reader.js'
import { TYPE, type TarHeader } from './types.js'
import { TarWriter, writeTar, writeTarStream, type TarWriteEntry } from './writer.js'
import { sha256Stream } from '../digest/hash.js'

const EMPTY_TAR = '5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef'

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of source) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

async function readBack(tar: Uint8Array): Promise<{ header: TarHeader; body: Buffer }[]> {
  const out = []
  for await (const e of readTar(Readable.from([tar])))
    out.push({ header: e.header, body: await collect(e.body) })
  return out
}

const bytesOf = (raw: Uint8Array | undefined, s: string | undefined): Buffer =>
  raw !== undefined ? Buffer.from(raw) : Buffer.from(s ?? '')

/** The whole body of a test entry (given in one piece or as an array of chunks). */
const bodyOf = ({ body: b = [] }: TarWriteEntry): Buffer =>
  Buffer.concat(b instanceof Uint8Array ? [b] : (b as Uint8Array[]))

const { LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO } = TYPE
const HEADER_ONLY = new Set<number>([LINK, SYMLINK, CHAR, BLOCK, DIR, FIFO])
const byKey = (a: [string, unknown], b: [string, unknown]): number =>
  Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]))

/** What reading back must give for what was written (sub-second parts only when kept). */
function assertSame(got: TarHeader, want: TarHeaderInput, precise: boolean): void {
  const typeflag = want.typeflag ?? TYPE.REG
  const xattrs = [...(want.xattrs ?? [])].map(([k, v]): [string, Buffer] => [k, Buffer.from(v)])
  assert.deepEqual(
    {
      typeflag: got.typeflag,
      name: got.nameRaw,
      link: got.linknameRaw,
      size: got.size,
      ids: [got.mode, got.uid, got.gid, got.devmajor, got.devminor],
      names: [got.uname, got.gname],
      mtime: [got.mtime, got.mtimeNsec],
      times: [got.atime, got.ctime],
      xattrs: [...(got.xattrs ?? [])].sort(byKey),
    },
    {
      typeflag,
      name: bytesOf(want.nameRaw, want.name),
      link: bytesOf(want.linknameRaw, want.linkname),
      size: HEADER_ONLY.has(typeflag) ? 0 : (want.size ?? 0),
      ids: [want.mode, want.uid, want.gid, want.devmajor, want.devminor].map((n) => n ?? 0),
      names: [want.uname ?? '', want.gname ?? ''],
      mtime: [want.mtime ?? 0, precise ? (want.mtimeNsec ?? 0) : 0],
      times: precise ? [want.atime, want.ctime] : [undefined, undefined],
      xattrs: xattrs.sort(byKey),
    },
  )
}

const body = (n: number, seed = 7): Buffer =>
  Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * seed) & 0xff))
const LONG_NAME = `${'deep/'.repeat(40)}${'n'.repeat(90)}.txt` // 294 bytes
const LATIN1 = Buffer.from('intl/caf\xe9-\xff.txt', 'latin1') // not UTF-8

/** One of every kind of entry, with the edges that need PAX or base-256. */
const TABLE: TarWriteEntry[] = [
  { header: { name: 'dir/', typeflag: TYPE.DIR, mode: 0o755, mtime: 1700000000 } },
  { header: { name: 'dir/file', mode: 0o644, mtime: 1700000000, uname: 'root' }, body: body(1000) },
  { header: { name: 'dir/exact', mode: 0o600, size: 512 }, body: [body(100), body(412, 3)] },
  { header: { name: LONG_NAME, mode: 0o644, size: 5 }, body: body(5) },
  { header: { nameRaw: LATIN1, mode: 0o644, mtime: 1 }, body: body(3) },
  { header: { name: 'own/biguid', uid: 2097152, gid: 4294967294, uname: 'ü'.repeat(20) } },
  { header: { name: 'time/neg', mtime: -31536000, mode: 0o644 }, body: body(2) },
  { header: { name: 'time/past-octal', mtime: 2 ** 33, mode: 0o644 } },
  { header: { name: 'dir/hard', typeflag: TYPE.LINK, linkname: 'dir/file', mode: 0o644 } },
  { header: { name: 'sym', typeflag: TYPE.SYMLINK, linkname: `../${'t'.repeat(200)}` } },
  { header: { name: 'dev/null', typeflag: TYPE.CHAR, devmajor: 1, devminor: 3, mode: 0o666 } },
  { header: { name: 'dev/sda', typeflag: TYPE.BLOCK, devmajor: 8, devminor: 2 ** 22 } },
  { header: { name: 'dev/fifo', typeflag: TYPE.FIFO, mode: 0o4755 } },
  { header: { name: 'weird-mode', mode: 2 ** 40 }, body: body(1) },
  {
    header: {
      name: 'x/caps',
      mode: 0o755,
      xattrs: new Map([
        ['security.capability', Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0xff, 0x0a])],
        ['user.text', Buffer.from('a=b\nc')],
      ]),
    },
    body: body(10),
  },
]

test('writeTar() of no entries is exactly two zero blocks, the empty-tar DiffID', async () => {
  const tar = await collect(writeTar([]))
  assert.deepEqual(tar, Buffer.alloc(1024))
  assert.equal(createHash('sha256').update(tar).digest('hex'), EMPTY_TAR)
  const tw = new TarWriter()
  const [out] = await Promise.all([collect(tw), tw.finish()])
  assert.deepEqual(out, Buffer.alloc(1024))
  const { digest } = await sha256Stream(writeTarStream([]))
  assert.equal(digest, `sha256:${EMPTY_TAR}`)
})

test('entries of every kind read back equal through TarReader', async () => {
  const tar = await collect(writeTar(TABLE))
  assert.equal(tar.length % 512, 0)
  assert.deepEqual(tar.subarray(-1024), Buffer.alloc(1024))
  const read = await readBack(tar)
  assert.equal(read.length, TABLE.length)
  for (const [i, e] of TABLE.entries()) {
    assertSame(read[i]!.header, { size: bodyOf(e).length, ...e.header }, false)
    assert.deepEqual(read[i]!.body, bodyOf(e))
  }
})

test('sub-second, atime and ctime go to PAX records only with subSecondTimes', async () => {
  const h: TarHeaderInput = { name: 'f', mtime: 7, mtimeNsec: 999999999 }
  assert.equal(encodeHeader(h).format, 'ustar') // cut to 7 s, as Docker does
  assert.equal(encodeHeader(h, { subSecondTimes: true }).format, 'pax')
  const times = { ...h, mtime: -2, atime: { sec: 5, nsec: 1 }, ctime: { sec: -1, nsec: 9 } }
  const plain = await collect(writeTar([{ header: times }]))
  assert.match(plain.toString('latin1'), /\b12 mtime=-2\n/)
  assertSame((await readBack(plain))[0]!.header, times, false)
  const precise = await collect(writeTar([{ header: times }], { subSecondTimes: true }))
  assert.match(precise.toString('latin1'), / mtime=-1\.000000001\n/)
  assert.match(precise.toString('latin1'), / ctime=-0\.999999991\n/)
  assertSame((await readBack(precise))[0]!.header, times, true)
})

test('headers are USTAR when they fit, as Go writes them', () => {
  const h = encodeHeader({ name: 'bin/sh', mode: 0o755, size: 5, mtime: 0o13727410000 })
  assert.equal(h.format, 'ustar')
  assert.equal(h.bytes.length, 512)
  const field = (off: number, len: number): string => h.bytes.toString('latin1', off, off + len)
  assert.equal(field(100, 8), '0000755\0')
  assert.equal(field(124, 12), '00000000005\0')
  assert.equal(field(136, 12), '13727410000\0')
  assert.equal(field(257, 8), 'ustar\x0000')
  assert.equal(field(329, 16), '0000000\x000000000\0')
  assert.match(field(148, 8), /^[0-7]{6}\0 $/)
  const split = encodeHeader({ name: `${'p'.repeat(120)}/${'n'.repeat(90)}` })
  assert.equal(split.format, 'ustar')
  assert.equal(split.bytes.toString('latin1', 345, 465), 'p'.repeat(120))
})

test('values that do not fit USTAR go to one sorted PAX header named like Go', () => {
  const h = encodeHeader({ name: 'own/huge', uid: 4294967294, gid: 2097152, size: 2 ** 33 })
  assert.equal(h.format, 'pax')
  assert.equal(h.dataSize, 2 ** 33)
  assert.equal(h.bytes.toString('latin1', 0, 21), 'own/PaxHeaders.0/huge')
  assert.equal(h.bytes[156], TYPE.X_HEADER)
  assert.equal(
    h.bytes.toString('latin1', 512, 512 + 52),
    '15 gid=2097152\n19 size=8589934592\n18 uid=4294967294\n',
  )
  const main = h.bytes.subarray(1024)
  assert.equal(main.toString('latin1', 108, 136), '0000000\0'.repeat(2) + '00000000000\0')
})

test('a header read back and written again gives the same bytes (Go-written layers too)', async () => {
  const rewrite = async (tar: Uint8Array): Promise<Buffer> =>
    collect(writeTar((await readBack(tar)).map((e) => ({ header: e.header, body: e.body }))))
  const tar = await collect(writeTar(TABLE))
  assert.deepEqual(await rewrite(tar), tar)
  if (!hasCorpus()) return
  const rows = manifest().filter((r) => String(r['producer']).startsWith('go-mobydiff'))
  assert.ok(rows.length >= 20)
  for (const { file = '', compression } of rows) {
    let original = readFileSync(join(corpusDir(), file))
    if (compression === 'gzip') original = gunzipSync(original)
    assert.ok((await rewrite(original)).equals(original), `${file} re-encodes byte for byte`)
  }
})

test('GNU tar and Python tarfile list and read what we wrote', async (t) => {
  const { dir, remove } = await scratch()
  t.after(remove)
  const file = join(dir, 'out.tar')
  writeFileSync(file, await collect(writeTar(TABLE)))
  const regular = TABLE.filter((e) => (e.header.typeflag ?? TYPE.REG) === TYPE.REG)

  const gnu = spawnSync('tar', ['--numeric-owner', '--quoting-style=literal', '-tvf', file])
  if (gnu.error !== undefined) t.diagnostic('GNU tar not installed')
  else {
    assert.equal(gnu.status, 0, gnu.stderr.toString())
    assert.equal(gnu.stderr.length, 0, gnu.stderr.toString())
    const lines = gnu.stdout.toString('latin1').trimEnd().split('\n')
    assert.equal(lines.length, TABLE.length)
    for (const [i, e] of TABLE.entries()) {
      const name = bytesOf(e.header.nameRaw, e.header.name).toString('latin1')
      const line = lines[i] ?? ''
      assert.ok(line.includes(` ${name}`), `${line} names ${name}`)
      if (regular.includes(e)) assert.match(line, new RegExp(` ${bodyOf(e).length} `))
    }
    assert.match(lines[5]!, / 2097152\/4294967294 /)
  }

  const script = `import tarfile, sys, json, hashlib, os
with tarfile.open(sys.argv[1]) as tf:
  print(json.dumps([[os.fsencode(m.name).hex(), m.size, m.type.decode(), m.uid, m.mtime,
    hashlib.sha256(tf.extractfile(m).read()).hexdigest() if m.isreg() else None] for m in tf]))`
  const py = spawnSync('python3', ['-c', script, file])
  if (py.error !== undefined) return t.diagnostic('python3 not installed')
  assert.equal(py.status, 0, py.stderr.toString())
  const listed = JSON.parse(py.stdout.toString()) as [string, number, string, number][]
  const read = await readBack(readFileSync(file))
  assert.deepEqual(
    listed,
    read.map(({ header: h, body: b }) => [
      Buffer.from(h.nameRaw).toString('hex').replace(/2f$/, ''), // tarfile drops a final '/'
      h.size,
      String.fromCharCode(h.typeflag),
      h.uid,
      h.mtime,
      h.typeflag === TYPE.REG ? createHash('sha256').update(b).digest('hex') : null,
    ]),
  )
})

test('a body of the wrong length fails with TAR_WRITE_SIZE_MISMATCH', async () => {
  const cases: TarWriteEntry[] = [
    { header: { name: 'short', size: 10 }, body: body(9) },
    { header: { name: 'long', size: 10 }, body: [body(6), body(6)] },
    { header: { name: 'none', size: 1 } },
    { header: { name: 'dir/', typeflag: TYPE.DIR }, body: body(1) },
  ]
  for (const e of cases) {
    await assert.rejects(collect(writeTar([e])), { code: 'TAR_WRITE_SIZE_MISMATCH' })
    const tw = new TarWriter()
    const output = collect(tw)
    await assert.rejects(tw.add(e.header, e.body), { code: 'TAR_WRITE_SIZE_MISMATCH' })
    await assert.rejects(output, { code: 'TAR_WRITE_SIZE_MISMATCH' })
    await assert.rejects(tw.add({ name: 'after' }), { code: 'TAR_WRITE_SIZE_MISMATCH' })
  }
})

test('unrepresentable headers fail with codes and leave a TarWriter usable', async () => {
  const bad: TarHeaderInput[] = [
    { name: 'a\0b' },
    { name: 'ok', linkname: 'x\0', typeflag: TYPE.SYMLINK },
    { name: 'file/' },
    { name: 'x', xattrs: new Map([['a=b', 'v']]) },
    { name: 'x', typeflag: TYPE.GNU_LONGNAME },
  ]
  for (const h of bad) assert.throws(() => encodeHeader(h), { code: 'TAR_UNREPRESENTABLE' })
  assert.throws(() => encodeHeader({ name: 'x', pax: new Map([['c', 'x'.repeat(1 << 20)]]) }), {
    code: 'TAR_FIELD_TOO_LONG',
  })
  assert.throws(() => encodeHeader({ name: 'x', size: -1 }), RangeError)
  assert.throws(() => encodeHeader({ name: 'x', mtime: 1.5 }), RangeError)
  assert.throws(() => encodeHeader({}), TypeError)
  const tw = new TarWriter()
  const output = collect(tw)
  await assert.rejects(tw.add({ name: 'a\0b' }), { code: 'TAR_UNREPRESENTABLE' })
  await tw.add({ name: 'good' }, body(3))
  await tw.finish()
  assert.deepEqual(
    (await readBack(await output)).map((e) => e.header.name),
    ['good'],
  )
})

test('TarWriter is pulled: add() waits for the reader, bodies are read as needed', async () => {
  let produced = 0
  async function* big(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < 64; i++) {
      produced++
      yield body(1 << 16)
    }
  }
  const tw = new TarWriter()
  let added = false
  const adding = tw.add({ name: 'big', size: 64 << 16 }, big()).then(() => (added = true))
  const it = tw[Symbol.asyncIterator]()
  assert.equal(((await it.next()).value as Uint8Array).length, 512) // the header
  await it.next() // the first chunk of data
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(produced, 1)
  assert.equal(added, false)
  for (let i = 1; i < 64; i++) await it.next()
  const trailer = it.next() // asking for more means the entry was read
  await adding
  void tw.finish()
  assert.deepEqual((await trailer).value, Buffer.alloc(1024))
  assert.equal((await it.next()).done, true)
  assert.equal(tw.bytesWritten, 512 + (64 << 16) + 1024)
})

test('closing the output early or aborting rejects pending and later adds', async () => {
  const tw = new TarWriter()
  const stream = tw.readable()
  const pending = tw.add({ name: 'f', size: 1 << 20 }, [body(1 << 20)])
  stream.destroy()
  await assert.rejects(pending, { code: 'TAR_WRITER_CLOSED' })
  await assert.rejects(tw.add({ name: 'g' }), { code: 'TAR_WRITER_CLOSED' })
  await assert.rejects(tw.finish(), { code: 'TAR_WRITER_CLOSED' })
  const ac = new AbortController()
  const aborted = new TarWriter({ signal: ac.signal })
  const output = collect(aborted)
  await aborted.add({ name: 'a' })
  ac.abort()
  await assert.rejects(output, { name: 'AbortError' })
  await assert.rejects(aborted.add({ name: 'b' }), { name: 'AbortError' })
})

test('a global PAX header round-trips as an entry', async () => {
  const pax = new Map([['comment', Buffer.from('made by layerstore')]])
  const tar = await collect(writeTar([{ header: { typeflag: TYPE.X_GLOBAL_HEADER, pax } }]))
  const [g] = await readBack(tar)
  assert.deepEqual([g!.header.typeflag, g!.header.name], [TYPE.X_GLOBAL_HEADER, 'GlobalHead.0.0'])
  assert.deepEqual(g!.header.pax, pax)
})

const NAME = fc.oneof(
  fc
    .array(fc.stringMatching(/^[a-z0-9._-]{1,30}$/), { minLength: 1, maxLength: 12 })
    .map((parts) => Buffer.from(parts.join('/'))),
  fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b.map((c) => c || 1))),
)
const TEXT = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replaceAll('\0', ''))
const INT = (max: number): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 0, max: 0o7777 }), fc.integer({ min: 0, max }))
const TIME = fc
  .tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.nat(999999999))
  .map(([sec, nsec]) => ({ sec, nsec }))
const TYPES = [TYPE.REG, TYPE.DIR, TYPE.SYMLINK, TYPE.LINK, TYPE.CHAR, TYPE.BLOCK, TYPE.FIFO]
const ENTRY = fc
  .record({
    typeflag: fc.constantFrom(...TYPES),
    nameRaw: NAME,
    linknameRaw: NAME,
    mode: fc.oneof(INT(0o7777), fc.integer({ min: -(2 ** 40), max: 2 ** 40 })),
    uid: INT(2 ** 40),
    gid: INT(2 ** 32),
    uname: TEXT,
    gname: TEXT,
    mtime: TIME,
    times: fc.array(TIME, { maxLength: 2 }),
    devmajor: INT(2 ** 30),
    devminor: INT(2 ** 30),
    xattrs: fc.dictionary(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((k) => !/[=\0]/.test(k)),
      fc.uint8Array({ minLength: 1, maxLength: 40 }),
      { maxKeys: 3 },
    ),
    data: fc.uint8Array({ maxLength: 2000 }),
    cuts: fc.array(fc.nat(2000), { maxLength: 4 }),
  })
  .map(({ typeflag, nameRaw, linknameRaw, mtime, times, data, cuts, xattrs, ...rest }) => {
    const isData = typeflag === TYPE.REG
    const slash = nameRaw.at(-1) === 0x2f && typeflag !== TYPE.DIR
    const linked = typeflag === TYPE.LINK || typeflag === TYPE.SYMLINK
    const header: TarHeaderInput = {
      ...rest,
      typeflag,
      nameRaw: slash ? Buffer.concat([nameRaw, Buffer.of(0x61)]) : nameRaw,
      linknameRaw: linked ? linknameRaw : Buffer.alloc(0),
      size: isData ? data.length : 0,
      mtime: mtime.sec,
      mtimeNsec: mtime.nsec,
      xattrs: new Map(Object.entries(xattrs)),
      ...(times[0] === undefined ? {} : { atime: times[0] }),
      ...(times[1] === undefined ? {} : { ctime: times[1] }),
    }
    const points = [0, ...cuts.filter((c) => c < data.length).sort((a, b) => a - b), data.length]
    const chunks = points.slice(1).map((end, i) => data.subarray(points[i], end))
    return { header, body: isData ? chunks : [] }
  })

test('property: random headers and chunked bodies round-trip through writer and reader', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(ENTRY, { maxLength: 5 }), fc.boolean(), async (entries, precise) => {
      const tar = await collect(writeTar(entries, { subSecondTimes: precise }))
      const read = await readBack(tar)
      assert.equal(read.length, entries.length)
      for (const [i, e] of entries.entries()) {
        assertSame(read[i]!.header, e.header, precise)
        assert.deepEqual(read[i]!.body, Buffer.concat(e.body))
      }
      const again = read.map((e) => ({ header: e.header, body: e.body }))
      assert.ok((await collect(writeTar(again, { subSecondTimes: precise }))).equals(tar))
    }),
  )
})
