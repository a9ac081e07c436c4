/**
 * readArchive over real archives: every form our fixture builder writes (docker-archive legacy
 * and 25+, OCI layout, each as a directory and a tar; gzip and zstd layers; nested indexes with
 * several platforms) and docker-archives and OCI layouts written by skopeo from them. Corrupt
 * archives are in read-archive-corrupt.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  buildDockerArchive,
  buildOciLayout,
  makeLayerTar,
  type FixtureImage,
} from '../testing/image-archive.js'
import { formatPlatform } from './platform.js'
import type { Platform } from './types.js'
import {
  assertImages,
  fixtures,
  host,
  other,
  read,
  rejectsWith,
  scratch,
  TAGS,
} from '../testing/read-archive-kit.js'

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
