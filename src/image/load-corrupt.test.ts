/**
 * Corrupt archives (issue 6): a layer that does not match diff_ids, a blob that does not match
 * its digest, a truncated archive, a missing blob, a configuration that is not JSON. Each is a
 * coded error, and the store afterwards is exactly as before (a full listing compared).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { hasCode } from '../errors.js'
import { buildDockerArchive, buildOciLayout } from '../testing/image-archive.js'
import { listing, sha, tempDir, threeLayers } from '../testing/image-test-kit.js'
import { ImageStore } from './image-store.js'

describe('corrupt archives leave the store exactly as it was', () => {
  const cases: {
    name: string
    code: string
    make: (dir: string, layers: Buffer[]) => Promise<string>
  }[] = [
    {
      name: 'a layer whose bytes do not match diff_ids',
      code: 'IMAGE_DIFF_ID_MISMATCH',
      make: async (dir, [a, b]) => {
        const built = await buildDockerArchive(join(dir, 'bad.tar'), [
          {
            layers: [a!, b!],
            repoTags: ['x/bad:1'],
            config: { rootfs: { type: 'layers', diff_ids: [sha(a!), sha(a!)] } },
          },
        ])
        return built.path
      },
    },
    {
      name: 'a gzip layer blob that does not match its digest',
      code: 'DIGEST_MISMATCH',
      make: async (dir, [a, b]) => {
        const built = await buildOciLayout(
          join(dir, 'bad'),
          [{ layers: [a!, { tar: b!, compression: 'gzip' }], repoTags: ['x/bad:1'] }],
          { tar: false },
        )
        // Same size, same uncompressed bytes, other compressed bytes (the gzip header's
        // mtime): only the blob digest can tell.
        const index = JSON.parse(readFileSync(join(built.path, 'index.json'), 'utf8')) as {
          manifests: { digest: string }[]
        }
        const mdigest = index.manifests[0]!.digest
        const manifest = JSON.parse(
          readFileSync(join(built.path, 'blobs', 'sha256', mdigest.slice(7)), 'utf8'),
        ) as { layers: { digest: string }[] }
        const blob = join(built.path, 'blobs', 'sha256', manifest.layers[1]!.digest.slice(7))
        const bytes = readFileSync(blob)
        bytes.writeUInt32LE(bytes.readUInt32LE(4) ^ 0x5a5a5a5a, 4)
        writeFileSync(blob, bytes)
        return built.path
      },
    },
    {
      name: 'a truncated archive',
      code: 'IMAGE_ARCHIVE_INVALID',
      make: async (dir, [a, b]) => {
        const built = await buildDockerArchive(join(dir, 'cut.tar'), [
          { layers: [a!, b!], repoTags: ['x/cut:1'] },
        ])
        truncateSync(built.path, Math.floor(statSync(built.path).size * 0.7))
        return built.path
      },
    },
    {
      name: 'a manifest naming a missing blob',
      code: 'IMAGE_BLOB_MISSING',
      make: async (dir, [a]) => {
        const built = await buildDockerArchive(
          join(dir, 'missing'),
          [{ layers: [a!], repoTags: ['x/missing:1'] }],
          { tar: false },
        )
        const m = JSON.parse(readFileSync(join(built.path, 'manifest.json'), 'utf8')) as {
          Config: string
          Layers: string[]
        }[]
        m[0]!.Layers[0] = 'blobs/sha256/' + '0'.repeat(64)
        writeFileSync(join(built.path, 'manifest.json'), JSON.stringify(m))
        return built.path
      },
    },
    {
      name: 'a config that is not JSON',
      code: 'IMAGE_ARCHIVE_INVALID',
      make: async (dir, [a]) => {
        const built = await buildDockerArchive(
          join(dir, 'notjson'),
          [{ layers: [a!], repoTags: ['x/notjson:1'] }],
          { tar: false },
        )
        const m = JSON.parse(readFileSync(join(built.path, 'manifest.json'), 'utf8')) as {
          Config: string
          Layers: string[]
        }[]
        const text = Buffer.from('{"rootfs": not json')
        const name = `blobs/sha256/${createHash('sha256').update(text).digest('hex')}`
        writeFileSync(join(built.path, name), text)
        m[0]!.Config = name
        writeFileSync(join(built.path, 'manifest.json'), JSON.stringify(m))
        return built.path
      },
    },
  ]
  for (const c of cases) {
    test(`${c.name}: ${c.code}`, async (t) => {
      const dir = await tempDir(t, 'image-corrupt')
      const layers = await threeLayers()
      const root = join(dir, 'root')
      const store = await ImageStore.open({ root })
      const good = await buildDockerArchive(join(dir, 'good.tar'), [
        { layers: [layers[0]!], repoTags: ['x/good:1'] },
      ])
      await store.load(good.path)
      const input = await c.make(dir, layers)
      const before = listing(root)
      await assert.rejects(store.load(input), (e) => {
        assert.ok(hasCode(e, c.code), `expected ${c.code}, got ${String(e)}`)
        return true
      })
      assert.deepEqual(listing(root), before)
      assert.deepEqual(
        store.list().map((i) => i.id),
        good.ids,
      )
    })
  }
})

test('a failed load on a layer that nothing holds leaves that layer', async (t) => {
  const dir = await tempDir(t, 'image-corrupt-unheld')
  const [a, b, c] = await threeLayers()
  const root = join(dir, 'root')
  const store = await ImageStore.open({ root })
  const good = await buildDockerArchive(join(dir, 'good.tar'), [
    { layers: [c!], repoTags: ['x/c:1'] },
  ])
  await store.load(good.path)
  // As `layer register` leaves a layer: recorded, held by nothing once the command exits.
  const base = await store.layers.register(
    (async function* () {
      yield a!
    })(),
  )
  store.layers.detach(base)
  const bad = await buildDockerArchive(join(dir, 'bad.tar'), [
    {
      layers: [a!, b!],
      repoTags: ['x/bad:1'],
      config: { rootfs: { type: 'layers', diff_ids: [sha(a!), sha(a!)] } },
    },
  ])
  const before = listing(root)
  await assert.rejects(store.load(bad.path), (e) => hasCode(e, 'IMAGE_DIFF_ID_MISMATCH'))
  assert.deepEqual(listing(root), before)
  assert.ok(store.layers.map().has(base.chainId))
})
