/** Shared by the readArchive tests (image/read-archive*.test.ts): fixtures, reading with checks. */
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decompress } from '../archive/decompress.js'
import { sha256Stream } from '../digest/hash.js'
import { hasCode } from '../errors.js'
import { makeLayerTar, type FixtureImage } from './image-archive.js'
import { openArchiveSource } from '../image/archive-source.js'
import { hostPlatform } from '../image/platform.js'
import { readArchive } from '../image/read-archive.js'
import type { ArchiveImage, ArchiveSource, Platform } from '../image/types.js'

export function scratch(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'read-archive-test-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export const sha = (b: Uint8Array): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`

export async function rejectsWith(
  p: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(hasCode(err, code), `expected ${code}, got ${String(err)}`)
    if (message !== undefined) assert.match((err as Error).message, message)
    return true
  })
}

export async function read(path: string, platform?: Platform): Promise<ArchiveImage[]> {
  await using source = await openArchiveSource(path)
  const images = await readArchive(source, platform === undefined ? {} : { platform })
  await checkLayers(source, images)
  return images
}

/** Every layer blob hashes to its announced digest and, decompressed, to its DiffID. */
export async function checkLayers(
  source: ArchiveSource,
  images: readonly ArchiveImage[],
): Promise<void> {
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

export const host = hostPlatform()
export const other: Platform =
  host.architecture === 's390x'
    ? { os: 'linux', architecture: 'ppc64le' }
    : { os: 'linux', architecture: 's390x' }

export async function fixtures(): Promise<{ images: FixtureImage[]; diffIds: string[][] }> {
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

export const TAGS = [
  ['docker.io/library/busybox:latest', 'docker.io/example/a:1'],
  ['localhost:5000/b/c:2'],
  [],
]

/** The fields of each image read, per field asked (`{ id: [...], repoTags: [...] }`). */
export function assertImages(
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
