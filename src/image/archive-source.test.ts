/**
 * ArchiveSource over real archives: directories and tar files written by our fixture builder,
 * by GNU tar (long names, `./` prefixes) and by gzip; byte ranges read back, links followed,
 * escapes refused, truncated and oversized input.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { hasCode } from '../errors.js'
import { buildDockerArchive, makeLayerTar } from '../testing/image-archive.js'
import { TYPE } from '../tar/types.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { openArchiveSource } from './archive-source.js'

function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'archive-source-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of source) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

async function tarOf(entries: TarWriteEntry[]): Promise<Buffer> {
  return collect(writeTar(entries))
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(
    async () => (typeof p === 'function' ? p() : p),
    (err: unknown) => {
      assert.ok(hasCode(err, code), `expected ${code}, got ${String(err)}`)
      return true
    },
  )
}

/** Two images sharing their bottom layer, the top one 3 MiB (blob reads span chunks). */
async function images(): Promise<Parameters<typeof buildDockerArchive>[1]> {
  const base = await makeLayerTar({ 'etc/hostname': 'box\n' })
  const big = await makeLayerTar({ 'data/big': randomBytes(3 << 20) })
  const small = await makeLayerTar({ 'etc/motd': 'hi\n' })
  return [
    { layers: [base, big], repoTags: ['example/a:1'] },
    { layers: [base, small], repoTags: ['example/b:1'] },
  ]
}

test('a docker-archive reads the same as a tar file, a gzip-compressed tar and a directory', async (t) => {
  const dir = scratch(t)
  const imgs = await images()
  await buildDockerArchive(join(dir, 'img'), imgs, { tar: false })
  await buildDockerArchive(join(dir, 'img.tar'), imgs)
  writeFileSync(join(dir, 'img.tar.gz'), gzipSync(readFileSync(join(dir, 'img.tar'))))
  const names = readdirSync(join(dir, 'img', 'blobs', 'sha256'))
  assert.ok(names.length >= 6)
  for (const form of ['img', 'img.tar', 'img.tar.gz']) {
    await using src = await openArchiveSource(join(dir, form))
    for (const path of ['manifest.json', 'index.json', 'oci-layout', 'repositories']) {
      const want = readFileSync(join(dir, 'img', path))
      assert.ok(src.has(path), `${form}: ${path}`)
      assert.equal(src.size(path), want.length)
      assert.deepEqual(await src.read(path), want)
      assert.deepEqual(await src.read(`./${path}`), want, 'a ./ prefix is dropped')
    }
    for (const name of names) {
      const want = readFileSync(join(dir, 'img', 'blobs', 'sha256', name))
      const path = `blobs/sha256/${name}`
      assert.equal(src.size(path), want.length)
      let chunks = 0
      const got = await collect(
        (async function* () {
          for await (const c of src.open(path)) {
            chunks++
            yield c
          }
        })(),
      )
      assert.equal(sha(got), name, `${form}: ${path} streams its own bytes`)
      if (want.length > 2 << 20) assert.ok(chunks > 1, 'a big blob comes in several chunks')
    }
    assert.equal(src.has('blobs'), false, 'a directory is no file')
    assert.equal(src.has('blobs/sha256/0000'), false)
  }
})

test('a legacy docker-archive: a layer linked to another image’s layer.tar reads through the link', async (t) => {
  const dir = scratch(t)
  const base = await makeLayerTar({ 'etc/hostname': 'box\n' })
  const top = await makeLayerTar({ 'etc/motd': 'hi\n' })
  // The shared tar sits at a different chain position in each image: Docker ≤24 links it.
  const imgs = [
    { layers: [base], repoTags: ['a:1'] },
    { layers: [top, base], repoTags: ['b:1'] },
  ]
  await buildDockerArchive(join(dir, 'dir'), imgs, { legacy: true, tar: false })
  await buildDockerArchive(join(dir, 'img.tar'), imgs, { legacy: true })
  const listing = execFileSync('tar', ['tvf', join(dir, 'img.tar')], { encoding: 'utf8' })
  assert.match(listing, /layer\.tar -> \.\.\/[0-9a-f]{64}\/layer\.tar/)
  const manifest = JSON.parse(readFileSync(join(dir, 'dir', 'manifest.json'), 'utf8')) as {
    Layers: string[]
  }[]
  const linked = manifest[1]!.Layers[1]!
  for (const form of ['dir', 'img.tar']) {
    await using src = await openArchiveSource(join(dir, form))
    assert.ok(src.has(linked))
    assert.equal(src.size(linked), base.length)
    assert.deepEqual(await collect(src.open(linked)), base)
  }
})

test('tar names: GNU long names, ./ prefixes, PAX paths, and the last of two entries of a name', async (t) => {
  const dir = scratch(t)
  const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`
  mkdirSync(join(dir, 'tree', 'd'.repeat(120)), { recursive: true })
  writeFileSync(join(dir, 'tree', long), 'long\n')
  writeFileSync(join(dir, 'tree', 'short'), 'short\n')
  execFileSync('tar', ['--format=gnu', '-cf', join(dir, 'gnu.tar'), '-C', join(dir, 'tree'), '.'])
  {
    await using src = await openArchiveSource(join(dir, 'gnu.tar'))
    assert.equal((await src.read(long)).toString(), 'long\n')
    assert.equal((await src.read('short')).toString(), 'short\n')
  }
  const pax = await tarOf([
    { header: { name: long, size: 4 }, body: Buffer.from('pax\n') },
    { header: { name: 'dup', size: 6 }, body: Buffer.from('first\n') },
    { header: { name: './dup', size: 7 }, body: Buffer.from('second\n') },
    { header: { name: 'gone', size: 1 }, body: Buffer.from('x') },
    { header: { name: 'gone', typeflag: TYPE.FIFO } },
    { header: { name: 'hard', typeflag: TYPE.LINK, linkname: 'dup' } },
    { header: { name: '/abs', size: 3 }, body: Buffer.from('abs') },
    { header: { name: '../escape', size: 3 }, body: Buffer.from('esc') },
  ])
  writeFileSync(join(dir, 'pax.tar'), pax)
  await using src = await openArchiveSource(join(dir, 'pax.tar'))
  assert.equal((await src.read(long)).toString(), 'pax\n')
  assert.equal((await src.read('dup')).toString(), 'second\n')
  assert.equal((await src.read('hard')).toString(), 'second\n')
  assert.equal(src.has('gone'), false, 'a fifo replaced the file')
  assert.equal((await src.read('abs')).toString(), 'abs', 'a leading / is dropped, as tar does')
  assert.equal(src.has('escape'), false)
  await rejectsWith(() => src.read('../escape'), 'IMAGE_ARCHIVE_INVALID')
})

test('paths and links that leave the archive are refused, in a directory and in a tar', async (t) => {
  const dir = scratch(t)
  const secret = join(dir, 'secret')
  writeFileSync(secret, 'secret')
  const root = join(dir, 'root')
  mkdirSync(join(root, 'blobs'), { recursive: true })
  writeFileSync(join(root, 'inside'), 'inside')
  symlinkSync(secret, join(root, 'abs-link'))
  symlinkSync('../secret', join(root, 'rel-link'))
  symlinkSync('..', join(root, 'blobs', 'up'))
  symlinkSync('inside', join(root, 'ok-link'))
  symlinkSync('loop', join(root, 'loop'))
  writeFileSync(
    join(dir, 'links.tar'),
    await tarOf([
      { header: { name: 'inside', size: 6 }, body: Buffer.from('inside') },
      { header: { name: 'abs-link', typeflag: TYPE.SYMLINK, linkname: secret } },
      { header: { name: 'rel-link', typeflag: TYPE.SYMLINK, linkname: '../secret' } },
      { header: { name: 'blobs/up', typeflag: TYPE.SYMLINK, linkname: '..' } },
      { header: { name: 'ok-link', typeflag: TYPE.SYMLINK, linkname: 'blobs/../inside' } },
      { header: { name: 'loop', typeflag: TYPE.SYMLINK, linkname: 'loop' } },
    ]),
  )
  for (const form of [root, join(dir, 'links.tar')]) {
    await using src = await openArchiveSource(form)
    assert.equal((await src.read('ok-link')).toString(), 'inside')
    assert.equal(
      (await src.read('blobs/up/inside')).toString(),
      'inside',
      'a link to the root stays inside',
    )
    for (const path of [
      'abs-link',
      'rel-link',
      'blobs/up/rel-link',
      '../secret',
      'blobs/../../secret',
      secret,
      'loop',
    ]) {
      assert.equal(src.has(path), false, path)
      await rejectsWith(() => src.read(path), 'IMAGE_ARCHIVE_INVALID')
      assert.throws(
        () => src.open(path),
        (err) => hasCode(err, 'IMAGE_ARCHIVE_INVALID'),
      )
    }
    await rejectsWith(() => src.read('nope'), 'IMAGE_BLOB_MISSING')
    assert.throws(
      () => src.size('nope'),
      (err) => hasCode(err, 'IMAGE_BLOB_MISSING'),
    )
  }
})

test('read() refuses a file over its limit without reading it; open() streams it', async (t) => {
  const dir = scratch(t)
  const root = join(dir, 'root')
  mkdirSync(root)
  // A sparse 64 MiB manifest: nothing of it is held to find it too large.
  writeFileSync(join(root, 'manifest.json'), '')
  truncateSync(join(root, 'manifest.json'), 64 << 20)
  writeFileSync(join(root, 'small'), 'x'.repeat(100))
  await using src = await openArchiveSource(root)
  const before = process.memoryUsage().arrayBuffers
  await rejectsWith(src.read('manifest.json', 4 << 20), 'IMAGE_FILE_TOO_LARGE')
  await rejectsWith(src.read('manifest.json'), 'IMAGE_FILE_TOO_LARGE')
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20)
  await rejectsWith(src.read('small', 99), 'IMAGE_FILE_TOO_LARGE')
  assert.equal((await src.read('small', 100)).length, 100)
  let n = 0
  for await (const c of src.open('manifest.json')) n += c.length
  assert.equal(n, 64 << 20)
})

test('a truncated tar, a truncated gzip stream and a file that is no tar are invalid archives', async (t) => {
  const dir = scratch(t)
  await buildDockerArchive(join(dir, 'img.tar'), await images())
  const full = readFileSync(join(dir, 'img.tar'))
  writeFileSync(join(dir, 'cut.tar'), full.subarray(0, Math.floor(full.length / 2) + 100))
  writeFileSync(join(dir, 'cut.tar.gz'), gzipSync(full).subarray(0, 5000))
  writeFileSync(join(dir, 'text'), 'this is not a tar archive, not at all\n'.repeat(40))
  for (const name of ['cut.tar', 'cut.tar.gz', 'text'])
    await rejectsWith(openArchiveSource(join(dir, name)), 'IMAGE_ARCHIVE_INVALID')
})

test('a compressed archive is decompressed into a temporary file that close() removes', async (t) => {
  const dir = scratch(t)
  await buildDockerArchive(join(dir, 'img.tar'), await images())
  writeFileSync(join(dir, 'img.tar.gz'), gzipSync(readFileSync(join(dir, 'img.tar'))))
  writeFileSync(
    join(dir, 'cut.tar.gz'),
    gzipSync(readFileSync(join(dir, 'img.tar'))).subarray(0, 9000),
  )
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  const saved = process.env['TMPDIR']
  process.env['TMPDIR'] = tmp
  t.after(() => {
    if (saved === undefined) delete process.env['TMPDIR']
    else process.env['TMPDIR'] = saved
  })
  const src = await openArchiveSource(join(dir, 'img.tar.gz'))
  assert.equal(readdirSync(tmp).length, 1)
  assert.ok(src.has('manifest.json'))
  await src.close()
  await src.close()
  assert.deepEqual(readdirSync(tmp), [])
  assert.throws(() => src.has('manifest.json'), TypeError)
  await rejectsWith(openArchiveSource(join(dir, 'cut.tar.gz')), 'IMAGE_ARCHIVE_INVALID')
  assert.deepEqual(readdirSync(tmp), [], 'a failed open leaves nothing behind')
})
