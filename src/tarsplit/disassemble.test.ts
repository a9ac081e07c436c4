import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { disassemble, disassembleTo } from './disassemble.js'
import { ArraySink } from './packer.js'
import { assemble, assembleToFile } from './assemble.js'
import { PathFileGetter } from './file-getter.js'
import { crc64 } from './crc64.js'
import { hasCode } from '../errors.js'
import { END, fileEntry, headerBlock } from '../testing/make-tar.js'
import { scratch } from '../testing/corpus.js'
import { sha256Digest } from '../digest/hash.js'
import type { FileEntry, FileGetter, SegmentEntry } from './entry.js'

const tar = Buffer.concat([
  headerBlock({ name: 'etc/', typeflag: '5' }),
  fileEntry('etc/hosts', 'hi\n'),
  END,
  Buffer.alloc(7680), // record padding, as GNU tar writes it
])

test('disassemble: the segments and files of SPEC §4.3, the stream passed through unchanged', async () => {
  const sink = new ArraySink()
  const { stream, done } = disassemble([tar], sink, { digest: true })
  const out: Buffer[] = []
  for await (const c of stream) out.push(c as Buffer)
  const r = await done
  assert.deepEqual(Buffer.concat(out), tar)
  assert.equal(r.diffId, sha256Digest(tar))
  assert.equal(r.size, tar.length)
  const e = sink.entries
  assert.deepEqual(
    e.map((x) => [x.type, x.position, x.type === 2 ? x.payload.length : x.name.toString()]),
    [
      [2, 0, 512],
      [1, 1, 'etc/'],
      [2, 2, 512],
      [1, 3, 'etc/hosts'],
      [2, 4, 509 + 1024],
      [2, 5, 7680],
    ],
  )
  assert.deepEqual((e[3] as FileEntry).crc, crc64(Buffer.from('hi\n')))
  assert.equal((e[1] as FileEntry).crc, undefined)
})

test('disassemble: trailing bytes are recorded in 1 MiB segments', async () => {
  const big = Buffer.concat([fileEntry('a', 'x'), END, Buffer.alloc((1 << 20) + 5, 0x61)])
  const sink = new ArraySink()
  await disassembleTo([big], sink)
  const segs = sink.entries
    .filter((x): x is SegmentEntry => x.type === 2)
    .map((x) => x.payload.length)
  assert.deepEqual(segs.slice(-2), [1 << 20, 5])
})

test('disassemble: waits for a slow consumer (backpressure), memory bounded by the pipe', async () => {
  const chunk = Buffer.alloc(1 << 20)
  let produced = 0
  async function* source() {
    yield Buffer.concat([headerBlock({ name: 'big', size: 64 << 20 })])
    for (let i = 0; i < 64; i++) {
      produced++
      yield chunk
    }
    yield END
  }
  const { stream, done } = disassemble(source(), new ArraySink())
  await sleep(50)
  // Nothing reads the stream: the producer must stop after about the pipe's buffer.
  assert.ok(produced <= 4, `produced ${produced} MiB with no reader`)
  let n = 0
  for await (const c of stream) n += (c as Buffer).length
  await done
  assert.equal(n, 512 + (64 << 20) + 1024)
})

test('disassemble: a consumer that goes away fails the disassembly instead of hanging', async () => {
  async function* source() {
    yield headerBlock({ name: 'big', size: 16 << 20 })
    for (let i = 0; i < 16; i++) yield Buffer.alloc(1 << 20)
    yield END
  }
  const { stream, done } = disassemble(source(), new ArraySink())
  stream.destroy()
  await assert.rejects(done)
})

test('assemble: a file changed on disk fails with TARSPLIT_FILE_INTEGRITY before its bytes go out', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const sink = new ArraySink()
  await disassembleTo([tar], sink)
  await mkdir(join(s.dir, 'etc'))
  await writeFile(join(s.dir, 'etc/hosts'), 'hi\n')
  const ok: Buffer[] = []
  for await (const c of assemble(sink.entries, new PathFileGetter(s.dir))) ok.push(Buffer.from(c))
  assert.deepEqual(Buffer.concat(ok), tar)

  await writeFile(join(s.dir, 'etc/hosts'), 'HI\n')
  const out: Buffer[] = []
  await assert.rejects(
    async () => {
      for await (const c of assemble(sink.entries, new PathFileGetter(s.dir)))
        out.push(Buffer.from(c))
    },
    (e) => hasCode(e, 'TARSPLIT_FILE_INTEGRITY'),
  )
  assert.ok(!Buffer.concat(out).includes(Buffer.from('HI\n')), 'corrupted bytes were emitted')
})

test('assemble: names resolve inside the root; a symlinked parent cannot read outside it', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const outside = join(s.dir, 'outside')
  const root = join(s.dir, 'root')
  await mkdir(outside)
  await mkdir(root)
  await writeFile(join(outside, 'secret'), 'hi\n')
  const { symlink } = await import('node:fs/promises')
  await symlink(outside, join(root, 'etc')) // absolute: chroot-style it means <root>/<outside>
  const sink = new ArraySink()
  await disassembleTo([Buffer.concat([fileEntry('etc/secret', 'hi\n'), END])], sink)
  await assert.rejects(
    async () => {
      for await (const _ of assemble(sink.entries, new PathFileGetter(root))) void _
    },
    (e) => hasCode(e, 'TARSPLIT_FILE_MISSING'),
  )
  // A relative symlink inside the root is followed.
  await mkdir(join(root, 'real'))
  await writeFile(join(root, 'real', 'secret'), 'hi\n')
  const { rm } = await import('node:fs/promises')
  await rm(join(root, 'etc'))
  await symlink('real', join(root, 'etc'))
  const h = createHash('sha256')
  for await (const c of assemble(sink.entries, new PathFileGetter(root))) h.update(c)
  assert.equal(
    'sha256:' + h.digest('hex'),
    sha256Digest(Buffer.concat([fileEntry('etc/secret', 'hi\n'), END])),
  )
})

test('assemble: the same bytes whatever the getter offers (get only, readWhole, readInto/readAt)', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const big = Buffer.alloc((1 << 20) + 4097, 7) // over SMALL_FILE: streamed or read in pieces
  const files: [string, Buffer][] = [
    ['a', Buffer.from('x')],
    ['d/b', Buffer.alloc(5000, 1)],
    ['d/big', big],
    ['e', Buffer.alloc(0)],
  ]
  const tarBytes = Buffer.concat([...files.map(([n, d]) => fileEntry(n, d)), END])
  const sink = new ArraySink()
  await disassembleTo([tarBytes], sink)
  await mkdir(join(s.dir, 'd'))
  for (const [n, d] of files) await writeFile(join(s.dir, n), d)
  const full = new PathFileGetter(s.dir)
  const getters: FileGetter[] = [
    full,
    { get: (n, z, sig) => full.get(n, z, sig), readWhole: (n, z) => full.readWhole(n, z) },
    { get: (n, z, sig) => full.get(n, z, sig) },
  ]
  for (const g of getters) {
    const out: Buffer[] = []
    for await (const c of assemble(sink.entries, g, { readAhead: 2 })) out.push(Buffer.from(c))
    assert.deepEqual(Buffer.concat(out), tarBytes)
  }
  const path = join(s.dir, 'out.tar')
  assert.equal(await assembleToFile(sink.entries, full, path), tarBytes.length)
  assert.deepEqual(await readFile(path), tarBytes)
})

test('assemble: small files read in batches keep their order around files larger than a batch, each checked', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const files: [string, Buffer][] = []
  for (let i = 0; i < 300; i++) files.push([`s/${i}`, Buffer.alloc(1 + ((i * 977) % 9000), i)])
  files.splice(100, 0, ['huge', Buffer.alloc(5 << 20, 3)]) // several batches, read in pieces
  files.splice(200, 0, ['big', Buffer.alloc((1 << 20) + 1, 4)]) // just over SMALL_FILE
  const tarBytes = Buffer.concat([...files.map(([n, d]) => fileEntry(n, d)), END])
  const sink = new ArraySink()
  await disassembleTo([tarBytes], sink)
  await mkdir(join(s.dir, 's'))
  for (const [n, d] of files) await writeFile(join(s.dir, n), d)
  const full = new PathFileGetter(s.dir)
  const withoutBatches: FileGetter = {
    get: (n, z, sig) => full.get(n, z, sig),
    readInto: (n, z, d, o) => full.readInto(n, z, d, o),
    readAt: (n, p, d, o, l) => full.readAt(n, p, d, o, l),
  }
  for (const g of [full, withoutBatches]) {
    const path = join(s.dir, 'out.tar')
    assert.equal(await assembleToFile(sink.entries, g, path), tarBytes.length)
    assert.deepEqual(await readFile(path), tarBytes)
  }
  // A file shorter or longer than recorded, among others in a batch: a coded error.
  for (const changed of [Buffer.alloc(10, 9), Buffer.alloc(20_000, 9)]) {
    await writeFile(join(s.dir, 's/150'), changed)
    await assert.rejects(assembleToFile(sink.entries, full, join(s.dir, 'bad.tar')), (e) =>
      hasCode(e, 'TARSPLIT_FILE_INTEGRITY'),
    )
  }
})
