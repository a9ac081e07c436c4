/**
 * readArchive over real archives: every form our fixture builder writes (docker-archive legacy
 * and 25+, OCI layout, each as a directory and a tar; gzip and zstd layers; nested indexes with
 * several platforms), docker-archives and OCI layouts written by skopeo from them, and corrupt
 * ones, each failing with its code.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { gzipSync } from 'node:zlib'
import { decompress } from '../archive/decompress.js'
import { sha256Stream } from '../digest/hash.js'
import { hasCode } from '../errors.js'
import {
  buildDockerArchive,
  buildOciLayout,
  makeLayerTar,
  type FixtureImage,
} from '../testing/image-archive.js'
import { openArchiveSource } from './archive-source.js'
import { formatPlatform, hostPlatform } from './platform.js'
import { readArchive } from './read-archive.js'
import type { ArchiveImage, ArchiveSource, Platform } from './types.js'

function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'read-archive-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(hasCode(err, code), `expected ${code}, got ${String(err)}`)
    if (message !== undefined) assert.match((err as Error).message, message)
    return true
  })
}

async function read(path: string, platform?: Platform): Promise<ArchiveImage[]> {
  await using source = await openArchiveSource(path)
  const images = await readArchive(source, platform === undefined ? {} : { platform })
  await checkLayers(source, images)
  return images
}

/** Every layer blob hashes to its announced digest and, decompressed, to its DiffID. */
async function checkLayers(source: ArchiveSource, images: readonly ArchiveImage[]): Promise<void> {
  for (const img of images) {
    assert.equal(sha(img.config), img.id)
    for (const [i, layer] of img.layers.entries()) {
      const blob = await sha256Stream(source.open(layer.path))
      if (layer.digest !== undefined) assert.equal(blob.digest, layer.digest)
      if (layer.size !== undefined) assert.equal(blob.size, layer.size)
      const { stream } = await decompress(source.open(layer.path))
      assert.equal((await sha256Stream(stream)).digest, img.diffIds[i])
    }
  }
}

const host = hostPlatform()
const other: Platform =
  host.architecture === 's390x'
    ? { os: 'linux', architecture: 'ppc64le' }
    : { os: 'linux', architecture: 's390x' }

async function fixtures(): Promise<{ images: FixtureImage[]; diffIds: string[][] }> {
  const base = await makeLayerTar({ 'etc/hostname': 'box\n', 'bin/': '' })
  const gz = await makeLayerTar({ 'etc/motd': 'gzip\n' })
  const zst = await makeLayerTar({ 'usr/share/doc/z': 'zstd\n' })
  const images: FixtureImage[] = [
    {
      layers: [base, { tar: gz, compression: 'gzip' }],
      repoTags: ['busybox', 'example/a:1'],
    },
    {
      layers: [base, { tar: zst, compression: 'zstd' }],
      repoTags: ['localhost:5000/b/c:2'],
      config: { config: { Env: ['A=1'] } },
    },
    { layers: [] },
  ]
  return { images, diffIds: [[sha(base), sha(gz)], [sha(base), sha(zst)], []] }
}

const TAGS = [
  ['docker.io/library/busybox:latest', 'docker.io/example/a:1'],
  ['localhost:5000/b/c:2'],
  [],
]

/** The fields of each image read, per field asked (`{ id: [...], repoTags: [...] }`). */
function assertImages(
  got: readonly ArchiveImage[],
  want: Partial<Record<'id' | 'diffIds' | 'repoTags' | 'manifestDigest', readonly unknown[]>>,
): void {
  for (const [k, v] of Object.entries(want)) {
    const key = k as keyof typeof want
    assert.deepEqual(
      got.map((i) => i[key]),
      v,
      k,
    )
  }
}

for (const legacy of [false, true]) {
  for (const tar of [true, false]) {
    test(`a docker-archive (${legacy ? 'Docker ≤24' : 'Docker 25+'} layout, ${tar ? 'tar' : 'directory'}) gives its images, tags and layers`, async (t) => {
      const dir = scratch(t)
      const { images, diffIds } = await fixtures()
      const { path, ids } = await buildDockerArchive(join(dir, 'img'), images, { legacy, tar })
      const got = await read(path)
      assertImages(got, { id: ids, diffIds: diffIds, repoTags: TAGS })
      for (const img of got) {
        assert.equal(img.manifestDigest, undefined)
        for (const l of img.layers) {
          if (legacy) {
            assert.match(l.path, /^[0-9a-f]{64}\/layer\.tar$/)
            assert.equal(l.digest, undefined)
          } else assert.equal(l.path, `blobs/${String(l.digest).replace(':', '/')}`)
        }
      }
      // An explicit platform that no configuration names.
      await rejectsWith(read(path, other), 'IMAGE_NO_MATCHING_PLATFORM')
      assert.equal((await read(path, host)).length, 3)
    })
  }
}

test('a gzip-compressed docker-archive tar (docker save | gzip) reads as the plain one', async (t) => {
  const dir = scratch(t)
  const { images } = await fixtures()
  const { path, ids } = await buildDockerArchive(join(dir, 'img.tar'), images)
  writeFileSync(join(dir, 'img.tar.gz'), gzipSync(readFileSync(path)))
  const got = await read(join(dir, 'img.tar.gz'))
  assertImages(got, { id: ids, repoTags: TAGS })
})

for (const tar of [true, false]) {
  test(`an OCI layout (${tar ? 'tar' : 'directory'}): manifests, media types, gzip and zstd layers`, async (t) => {
    const dir = scratch(t)
    const { images, diffIds } = await fixtures()
    const { path, ids, manifestDigests } = await buildOciLayout(join(dir, 'oci'), images, { tar })
    const got = await read(path)
    assertImages(got, {
      id: ids,
      manifestDigest: manifestDigests,
      diffIds: diffIds,
      repoTags: TAGS,
    })
    assert.deepEqual(
      got.map((i) => i.layers.map((l) => l.mediaType)),
      [
        ['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzip'],
        ['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+zstd'],
        [],
      ],
    )
  })
}

test('an image listed twice is returned once, with the tags of both', async (t) => {
  const dir = scratch(t)
  const layer = await makeLayerTar({ a: 'a' })
  // Same DiffIDs, so the same configuration: one image, two manifests (gzip, zstd).
  const images: FixtureImage[] = [
    { layers: [{ tar: layer, compression: 'gzip' }], repoTags: ['x:1'] },
    { layers: [{ tar: layer, compression: 'zstd' }], repoTags: ['y:2', 'x:1'] },
  ]
  const oci = await buildOciLayout(join(dir, 'oci'), images, { tar: false })
  const docker = await buildDockerArchive(join(dir, 'docker.tar'), images)
  assert.equal(oci.ids[0], oci.ids[1])
  for (const path of [oci.path, docker.path]) {
    const got = await read(path)
    assert.equal(got.length, 1)
    assert.equal(got[0]!.id, oci.ids[0])
    assert.deepEqual(got[0]!.repoTags, ['docker.io/library/x:1', 'docker.io/library/y:2'])
  }
})

test('a nested index with two platforms: the host’s by default, another with --platform', async (t) => {
  const dir = scratch(t)
  const a = await makeLayerTar({ which: 'host' })
  const b = await makeLayerTar({ which: 'other' })
  const images: FixtureImage[] = [
    { layers: [a], repoTags: ['multi:1'], platform: host },
    { layers: [b], platform: other },
  ]
  for (const tar of [false, true]) {
    const { path, ids, manifestDigests } = await buildOciLayout(join(dir, `oci-${tar}`), images, {
      tar,
      nestedIndex: true,
    })
    const mine = await read(path)
    assert.deepEqual(
      mine.map((i) => [i.id, i.manifestDigest, i.repoTags]),
      [[ids[0], manifestDigests[0], ['docker.io/library/multi:1']]],
    )
    const theirs = await read(path, other)
    assert.deepEqual(
      theirs.map((i) => [i.id, i.manifestDigest, i.repoTags]),
      [[ids[1], manifestDigests[1], ['docker.io/library/multi:1']]],
    )
    await rejectsWith(
      read(path, { os: 'windows', architecture: 'amd64' }),
      'IMAGE_NO_MATCHING_PLATFORM',
      /windows\/amd64/,
    )
  }
})

test('platform matching: arm64 variants, arm fallbacks, amd64 running 386, best match first', async (t) => {
  const dir = scratch(t)
  const mk = async (p: Platform): Promise<FixtureImage> => ({
    layers: [await makeLayerTar({ p: formatPlatform(p) })],
    platform: p,
  })
  const build = async (name: string, ps: Platform[]): Promise<{ path: string; ids: string[] }> =>
    buildOciLayout(join(dir, name), await Promise.all(ps.map(mk)), {
      tar: false,
      nestedIndex: true,
    })
  const arm = await build('arm', [
    { os: 'linux', architecture: 'arm', variant: 'v6' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
    { os: 'linux', architecture: 'arm', variant: 'v7' },
  ])
  const pick = async (path: string, p: Platform): Promise<string | undefined> =>
    (await read(path, p))[0]?.id
  assert.equal(await pick(arm.path, { os: 'linux', architecture: 'arm64' }), arm.ids[1])
  assert.equal(
    await pick(arm.path, { os: 'linux', architecture: 'aarch64', variant: 'v8' }),
    arm.ids[1],
  )
  assert.equal(
    await pick(arm.path, { os: 'linux', architecture: 'arm', variant: 'v7' }),
    arm.ids[2],
  )
  assert.equal(
    await pick(arm.path, { os: 'linux', architecture: 'arm' }),
    arm.ids[2],
    'arm is arm/v7',
  )
  assert.equal(
    await pick(arm.path, { os: 'linux', architecture: 'arm', variant: 'v6' }),
    arm.ids[0],
  )
  await rejectsWith(
    read(arm.path, { os: 'linux', architecture: 'arm', variant: 'v5' }),
    'IMAGE_NO_MATCHING_PLATFORM',
  )
  const x86 = await build('x86', [{ os: 'linux', architecture: '386' }])
  assert.equal(
    await pick(x86.path, { os: 'linux', architecture: 'amd64' }),
    x86.ids[0],
    'amd64 runs 386',
  )
  const v7only = await build('v7', [{ os: 'linux', architecture: 'arm', variant: 'v7' }])
  assert.equal(await pick(v7only.path, { os: 'linux', architecture: 'arm64' }), v7only.ids[0])
  // Top-level manifests with platforms: the best of them only.
  const flat = await buildOciLayout(
    join(dir, 'flat'),
    [
      await mk({ os: 'linux', architecture: '386' }),
      await mk({ os: 'linux', architecture: 'amd64' }),
    ],
    { tar: false },
  )
  const idx = JSON.parse(readFileSync(join(flat.path, 'index.json'), 'utf8')) as {
    manifests: Record<string, unknown>[]
  }
  idx.manifests[0]!['platform'] = { os: 'linux', architecture: '386' }
  idx.manifests[1]!['platform'] = { os: 'linux', architecture: 'amd64' }
  writeFileSync(join(flat.path, 'index.json'), JSON.stringify(idx))
  assert.deepEqual(
    (await read(flat.path, { os: 'linux', architecture: 'amd64' })).map((i) => i.id),
    [flat.ids[1]],
  )
})

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0

test(
  'archives written by skopeo: an OCI layout copied to a docker-archive and back',
  { skip: hasSkopeo ? false : 'skopeo is not installed (Debian package skopeo)' },
  async (t) => {
    const dir = scratch(t)
    const { images } = await fixtures()
    // skopeo 1.9 writes no zstd layer to a docker-archive: a second image with a plain layer.
    const plain = await makeLayerTar({ 'etc/issue': 'plain\n' })
    const { path, ids } = await buildOciLayout(
      join(dir, 'oci'),
      [images[0]!, { layers: [plain], repoTags: ['b:2'] }],
      { tar: false },
    )
    const skopeo = (...args: string[]): void => {
      execFileSync(
        'skopeo',
        ['--insecure-policy', '--override-os', host.os, 'copy', '-q', ...args],
        {
          stdio: 'pipe',
        },
      )
    }
    // The fixture's ref names are the bare tags: `1` and `2`.
    skopeo(`oci:${path}:1`, `docker-archive:${join(dir, 'a.tar')}:example/a:1`)
    skopeo(`oci:${path}:2`, `docker-archive:${join(dir, 'b.tar')}`)
    const a = await read(join(dir, 'a.tar'))
    assert.deepEqual(
      a.map((i) => [i.id, i.repoTags]),
      [[ids[0], ['docker.io/example/a:1']]],
    )
    const b = await read(join(dir, 'b.tar'))
    assert.deepEqual(
      b.map((i) => [i.id, i.repoTags]),
      [[ids[1], []]],
    )
    // skopeo writes its own docker-archive layout: `<hex>.tar` layers, `<hex>.json` config.
    assert.match(b[0]!.layers[0]!.path, /^[0-9a-f]{64}\.tar$/)
    // Back to an OCI layout, gzip-compressed by skopeo.
    skopeo(`docker-archive:${join(dir, 'a.tar')}`, `oci:${join(dir, 'back')}:again`)
    const back = await read(join(dir, 'back'))
    // skopeo rewrites the configuration for OCI (a new image ID); the layers stay.
    assert.deepEqual(
      back.map((i) => [i.diffIds, i.repoTags]),
      [[a[0]!.diffIds, []]],
      'a bare ref name gives no tag',
    )
    assert.ok(back[0]!.layers.every((l) => l.mediaType?.endsWith('tar+gzip') === true))
    skopeo(`docker-archive:${join(dir, 'a.tar')}`, `oci:${join(dir, 'back')}:example.com/x/y:3`)
    const both = await read(join(dir, 'back'))
    assert.deepEqual(
      both.map((i) => [i.id, i.repoTags]),
      [[back[0]!.id, ['example.com/x/y:3']]],
    )
  },
)

/** A docker-archive directory of one image, and the parsed manifest.json to break. */
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
