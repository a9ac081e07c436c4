/** readArchive over corrupt archives: each fails with its code, before any image is read. */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import {
  createWriteStream,
  mkdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import {
  buildDockerArchive,
  buildOciLayout,
  makeLayerTar,
  type FixtureImage,
} from '../testing/image-archive.js'
import { fixtures, read, rejectsWith, scratch, sha } from '../testing/read-archive-kit.js'

async function dockerDir(
  t: TestContext,
  options: { legacy?: boolean; image?: Partial<FixtureImage> } = {},
): Promise<{ dir: string; manifest: { Config: string; Layers: string[]; RepoTags: unknown }[] }> {
  const root = scratch(t)
  const layer = await makeLayerTar({ f: 'f' })
  const { path } = await buildDockerArchive(
    join(root, 'img'),
    [{ layers: [layer, { tar: layer, compression: 'gzip' }], repoTags: ['a:1'], ...options.image }],
    { tar: false, legacy: options.legacy === true },
  )
  const manifest = JSON.parse(readFileSync(join(path, 'manifest.json'), 'utf8')) as {
    Config: string
    Layers: string[]
    RepoTags: unknown
  }[]
  return { dir: path, manifest }
}

test('corrupt docker-archives: JSON, fields, DiffID counts, missing blobs, digests', async (t) => {
  const cases: [
    string,
    (d: string, m: { Config: string; Layers: string[]; RepoTags: unknown }[]) => void,
    string,
    RegExp,
  ][] = [
    [
      'manifest not JSON',
      (d) => writeFileSync(join(d, 'manifest.json'), '[{"Config":'),
      'IMAGE_ARCHIVE_INVALID',
      /"manifest.json" is not JSON/,
    ],
    [
      'manifest not a list',
      (d) => writeFileSync(join(d, 'manifest.json'), '{}'),
      'IMAGE_ARCHIVE_INVALID',
      /manifest.json/,
    ],
    [
      'Config of the wrong type',
      (d, m) => writeFileSync(join(d, 'manifest.json'), JSON.stringify([{ ...m[0], Config: 5 }])),
      'IMAGE_ARCHIVE_INVALID',
      /Config/,
    ],
    [
      'Layers missing',
      (d, m) => writeFileSync(join(d, 'manifest.json'), JSON.stringify([{ Config: m[0]!.Config }])),
      'IMAGE_ARCHIVE_INVALID',
      /Layers/,
    ],
    [
      'a RepoTag that is no name',
      (d, m) =>
        writeFileSync(
          join(d, 'manifest.json'),
          JSON.stringify([{ ...m[0], RepoTags: ['UPPER:1'] }]),
        ),
      'IMAGE_ARCHIVE_INVALID',
      /UPPER/,
    ],
    [
      'a layer missing',
      (d, m) => unlinkSync(join(d, m[0]!.Layers[1]!)),
      'IMAGE_BLOB_MISSING',
      /manifest.json/,
    ],
    [
      'the config missing',
      (d, m) => unlinkSync(join(d, m[0]!.Config)),
      'IMAGE_BLOB_MISSING',
      /blobs\/sha256/,
    ],
    [
      'one layer fewer than DiffIDs',
      (d, m) =>
        writeFileSync(
          join(d, 'manifest.json'),
          JSON.stringify([{ ...m[0], Layers: m[0]!.Layers.slice(1) }]),
        ),
      'IMAGE_ARCHIVE_INVALID',
      /2 DiffIDs.*1 layers/,
    ],
    [
      'config bytes that are not its digest',
      (d, m) =>
        writeFileSync(
          join(d, m[0]!.Config),
          readFileSync(join(d, m[0]!.Config), 'utf8').replace('"os"', ' "os"'),
        ),
      'DIGEST_MISMATCH',
      /blobs\/sha256/,
    ],
    [
      'a layer path with ..',
      (d, m) =>
        writeFileSync(
          join(d, 'manifest.json'),
          JSON.stringify([{ ...m[0], Layers: ['../../../etc/passwd', m[0]!.Layers[1]] }]),
        ),
      'IMAGE_ARCHIVE_INVALID',
      /outside the archive/,
    ],
    [
      'an absolute config path',
      (d, m) =>
        writeFileSync(
          join(d, 'manifest.json'),
          JSON.stringify([{ ...m[0], Config: join(d, m[0]!.Config) }]),
        ),
      'IMAGE_ARCHIVE_INVALID',
      /outside the archive/,
    ],
    [
      'a layer symlinked out of the archive',
      (d, m) => {
        unlinkSync(join(d, m[0]!.Layers[0]!))
        symlinkSync('/etc/passwd', join(d, m[0]!.Layers[0]!))
      },
      'IMAGE_ARCHIVE_INVALID',
      /outside the archive/,
    ],
  ]
  for (const [name, breakIt, code, message] of cases) {
    const { dir, manifest } = await dockerDir(t)
    assert.equal((await read(dir)).length, 1, name)
    breakIt(dir, manifest)
    await rejectsWith(read(dir), code, message)
  }
})

test('corrupt legacy docker-archive: a config that is not JSON, DiffIDs that disagree', async (t) => {
  {
    const { dir, manifest } = await dockerDir(t, { legacy: true })
    writeFileSync(join(dir, manifest[0]!.Config), 'not json')
    await rejectsWith(read(dir), 'IMAGE_ARCHIVE_INVALID', /\.json": configuration is not JSON/)
  }
  {
    const extra = `sha256:${'0'.repeat(64)}`
    const { dir } = await dockerDir(t, {
      legacy: true,
      image: { config: { rootfs: { type: 'layers', diff_ids: [extra, extra, extra] } } },
    })
    await rejectsWith(read(dir), 'IMAGE_ARCHIVE_INVALID', /3 DiffIDs.*2 layers/)
  }
  {
    const { dir } = await dockerDir(t, { image: { config: { rootfs: { type: 'layers' } } } })
    await rejectsWith(read(dir), 'IMAGE_ARCHIVE_INVALID', /rootfs.diff_ids/)
  }
  {
    const { dir } = await dockerDir(t, {
      image: { config: { rootfs: { type: 'layers', diff_ids: ['sha256:nothex', 'x'] } } },
    })
    await rejectsWith(read(dir), 'IMAGE_ARCHIVE_INVALID', /diff_ids\[0\]/)
  }
})

/** Writes `head`, then spaces up to `size` bytes, chunk by chunk. */
async function writePadded(path: string, head: string, size: number): Promise<void> {
  const out = createWriteStream(path)
  out.write(head)
  const chunk = Buffer.alloc(64 << 10, ' ')
  for (let n = head.length; n < size; n += chunk.length) {
    if (!out.write(chunk.subarray(0, Math.min(chunk.length, size - n)))) await once(out, 'drain')
  }
  out.end()
  await once(out, 'finish')
}

test('oversized manifest.json, index.json and configuration are refused unread', async (t) => {
  const before = process.memoryUsage().rss
  {
    const { dir } = await dockerDir(t)
    const m = readFileSync(join(dir, 'manifest.json'), 'utf8')
    await writePadded(join(dir, 'manifest.json'), m, (4 << 20) + 1)
    await rejectsWith(read(dir), 'IMAGE_FILE_TOO_LARGE', /manifest\.json/)
    await writePadded(join(dir, 'manifest.json'), m, 4 << 20)
    assert.equal((await read(dir)).length, 1, 'exactly 4 MiB is accepted')
  }
  {
    const dir = scratch(t)
    const { path } = await buildOciLayout(join(dir, 'oci'), [{ layers: [] }], { tar: false })
    const index = readFileSync(join(path, 'index.json'), 'utf8')
    await writePadded(join(path, 'index.json'), index, 5 << 20)
    await rejectsWith(read(path), 'IMAGE_FILE_TOO_LARGE', /index\.json/)
  }
  {
    const big = 'x'.repeat(9 << 20)
    const { dir } = await dockerDir(t, { legacy: true, image: { config: { comment: big } } })
    await rejectsWith(read(dir), 'IMAGE_FILE_TOO_LARGE', /\.json/)
  }
  assert.ok(process.memoryUsage().rss - before < 256 << 20)
})

test('corrupt OCI layouts: missing blobs, digests, sizes, media types, no images, nesting', async (t) => {
  const layer = await makeLayerTar({ f: 'f' })
  const oci = async (): Promise<{ path: string; manifest: string; config: string }> => {
    const { path, manifestDigests, ids } = await buildOciLayout(
      join(scratch(t), 'oci'),
      [{ layers: [{ tar: layer, compression: 'gzip' }], repoTags: ['a:1'] }],
      { tar: false },
    )
    const blob = (d: string): string => join(path, 'blobs', 'sha256', d.slice(7))
    return { path, manifest: blob(manifestDigests[0]!), config: blob(ids[0]!) }
  }
  const edit = (file: string, f: (m: Record<string, unknown>) => void): void => {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    f(m)
    writeFileSync(file, JSON.stringify(m))
  }
  {
    const { path } = await oci()
    unlinkSync(join(path, 'oci-layout'))
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /neither manifest\.json/)
  }
  {
    const { path } = await oci()
    writeFileSync(join(path, 'index.json'), '{"manifests": [')
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /"index.json" is not JSON/)
  }
  {
    const { path, manifest } = await oci()
    unlinkSync(manifest)
    await rejectsWith(read(path), 'IMAGE_BLOB_MISSING', /index\.json/)
  }
  {
    const { path, manifest } = await oci()
    edit(manifest, (m) => (m['schemaVersion'] = 3)) // bytes no longer match the digest
    await rejectsWith(read(path), 'DIGEST_MISMATCH', /manifest/)
  }
  {
    const { path, config } = await oci()
    writeFileSync(config, 'not json')
    await rejectsWith(read(path), 'DIGEST_MISMATCH', /configuration/)
  }
  {
    const { path } = await oci()
    edit(join(path, 'index.json'), (m) => {
      ;(m['manifests'] as Record<string, unknown>[])[0]!['size'] = 1
    })
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /says 1/)
  }
  {
    const { path } = await oci()
    edit(join(path, 'index.json'), (m) => {
      ;(m['manifests'] as Record<string, unknown>[])[0]!['digest'] = 'sha512:abc'
    })
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /not a sha256 digest/)
  }
  {
    const { path } = await oci()
    edit(join(path, 'index.json'), (m) => {
      ;(m['manifests'] as Record<string, unknown>[])[0]!['mediaType'] =
        'application/vnd.example+json'
    })
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /lists no image/)
  }
  {
    const { path } = await oci()
    edit(join(path, 'index.json'), (m) => {
      ;(m['manifests'] as Record<string, unknown>[])[0]!['annotations'] = {
        'io.containerd.image.name': 'Not A Name',
      }
    })
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /Not A Name/)
  }
  {
    // An index nested 9 deep: each level an index of the one below.
    const { path } = await oci()
    const top = JSON.parse(readFileSync(join(path, 'index.json'), 'utf8')) as {
      manifests: Record<string, unknown>[]
    }
    let desc = top.manifests[0]!
    for (let i = 0; i < 9; i++) {
      const bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [desc],
        }),
      )
      writeFileSync(join(path, 'blobs', 'sha256', sha(bytes).slice(7)), bytes)
      desc = {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: sha(bytes),
        size: bytes.length,
      }
    }
    writeFileSync(join(path, 'index.json'), JSON.stringify({ ...top, manifests: [desc] }))
    await rejectsWith(read(path), 'IMAGE_ARCHIVE_INVALID', /deeper than 8/)
  }
})

test('a truncated archive tar fails before any image is read', async (t) => {
  const dir = scratch(t)
  const { images } = await fixtures()
  const { path } = await buildOciLayout(join(dir, 'oci.tar'), images)
  const bytes = readFileSync(path)
  writeFileSync(join(dir, 'cut.tar'), bytes.subarray(0, bytes.length - 3000))
  await rejectsWith(read(join(dir, 'cut.tar')), 'IMAGE_ARCHIVE_INVALID', /cut\.tar/)
})

test('an empty directory is no archive', async (t) => {
  const dir = scratch(t)
  mkdirSync(join(dir, 'empty'))
  await rejectsWith(read(join(dir, 'empty')), 'IMAGE_ARCHIVE_INVALID', /neither/)
})
