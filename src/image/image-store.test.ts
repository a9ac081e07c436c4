/**
 * ImageStore: load and save in every archive form, image records and names with Docker's
 * semantics, and recovery of a load or removal that died half-way (corrupt archives:
 * load-corrupt.test.ts).
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { driversUnderTest } from '../testing/drivers.js'
import { buildDockerArchive, buildOciLayout, type FixtureImage } from '../testing/image-archive.js'
import { chainIds } from '../digest/chain-id.js'
import type { DiffId } from '../digest/digest.js'
import { hasCode } from '../errors.js'
import { ImageStore } from './image-store.js'
import { openArchiveSource } from './archive-source.js'
import { readArchive } from './read-archive.js'
import type { ProgressEvent } from './types.js'
import { sha, tempDir, threeLayers } from '../testing/image-test-kit.js'

/** The images an archive describes, as the reader sees them: IDs, configs, blob digests. */
async function describeArchive(path: string): Promise<unknown[]> {
  const source = await openArchiveSource(path)
  try {
    const images = await readArchive(source, {})
    const out = []
    for (const i of images) {
      const blobs = []
      for (const l of i.layers) blobs.push(sha(await buffer(source.open(l.path))))
      out.push({ id: i.id, config: sha(i.config), diffIds: i.diffIds, blobs, tags: i.repoTags })
    }
    return out
  } finally {
    await source.close()
  }
}

for (const d of driversUnderTest()) {
  describe(`images on ${d.name}`, { skip: d.skip }, () => {
    const forms: {
      name: string
      build: (out: string, images: FixtureImage[]) => Promise<{ path: string; ids: string[] }>
    }[] = [
      { name: 'docker-archive tar', build: (o, i) => buildDockerArchive(o, i) },
      { name: 'docker-archive dir', build: (o, i) => buildDockerArchive(o, i, { tar: false }) },
      {
        name: 'legacy docker-archive',
        build: (o, i) => buildDockerArchive(o, i, { legacy: true }),
      },
      { name: 'OCI layout tar', build: (o, i) => buildOciLayout(o, i) },
      { name: 'OCI layout dir', build: (o, i) => buildOciLayout(o, i, { tar: false }) },
    ]
    for (const form of forms) {
      test(`${form.name}: load then save gives the same images, configs and layer bytes`, async (t) => {
        const dir = await tempDir(t, `image-rt-${d.name}`)
        const [a, b, c] = await threeLayers()
        const gz = { tar: b!, compression: 'gzip' as const }
        const zst = { tar: c!, compression: 'zstd' as const }
        const images: FixtureImage[] = [
          { layers: [a!, gz], repoTags: ['example/base:1'] },
          { layers: [a!, gz, zst], repoTags: ['example/app:1', 'other.example:5000/app:v2'] },
        ]
        const built = await form.build(join(dir, 'in'), images)
        const store = await ImageStore.open({ root: join(dir, 'root'), driver: d.name })
        const loaded = await store.load(built.path)
        assert.deepEqual(
          loaded.map((i) => i.id),
          built.ids,
        )
        const app = store.inspect('example/app:1')
        assert.equal(app.id, built.ids[1])
        assert.deepEqual(app.layers, chainIds([sha(a!), sha(b!), sha(c!)] as DiffId[]))
        assert.deepEqual(store.inspect('other.example:5000/app:v2').id, app.id)
        // The layers export the uncompressed tars byte for byte.
        for (const [i, tar] of [a!, b!, c!].entries()) {
          const l = await store.layers.get(app.layers[i]!)
          assert.equal(sha(await buffer(l.tarStream())), sha(tar))
          assert.equal(await l.tarSize(), tar.length)
          store.layers.detach(l)
        }
        for (const format of ['docker', 'oci'] as const) {
          const out = join(dir, `out.${format}.tar`)
          await store.save(['example/base:1', 'example/app:1'], out, { format })
          const again = join(dir, `again.${format}.tar`)
          await store.save(['example/base:1', 'example/app:1'], again, { format })
          assert.equal(sha(readFileSync(out)), sha(readFileSync(again)), 'save is deterministic')
          const described = (await describeArchive(out)) as {
            id: string
            diffIds: string[]
            blobs: string[]
          }[]
          assert.deepEqual(
            described.map((x) => x.id),
            built.ids,
          )
          for (const x of described) assert.deepEqual(x.blobs, x.diffIds) // uncompressed blobs
          // A fresh store loads what we saved into the same images.
          const other = await ImageStore.open({
            root: join(dir, `root-${format}`),
            driver: d.name,
          })
          const reloaded = await other.load(out)
          assert.deepEqual(
            reloaded.map((i) => i.id),
            built.ids,
          )
          assert.deepEqual(
            other.record('example/app:1').config,
            store.record('example/app:1').config,
          )
          assert.deepEqual(other.inspect('example/app:1').repoTags, ['docker.io/example/app:1'])
        }
      })
    }
  })
}

describe('image records', () => {
  test('layers already present are not read; shared blobs are read once', async (t) => {
    const dir = await tempDir(t, 'image-skip')
    const [a, b, c] = await threeLayers()
    const first = await buildDockerArchive(join(dir, 'first.tar'), [
      { layers: [a!, b!], repoTags: ['x/base:1'] },
    ])
    const second = await buildDockerArchive(join(dir, 'second.tar'), [
      { layers: [a!, b!, c!], repoTags: ['x/app:1'] },
      { layers: [a!, b!, c!], repoTags: ['x/app:2'], config: { author: 'someone else' } },
    ])
    const store = await ImageStore.open({ root: join(dir, 'root') })
    await store.load(first.path)
    const events: ProgressEvent[] = []
    const loaded = await store.load(second.path, { onProgress: (e) => events.push(e) })
    assert.equal(loaded.length, 2)
    const started = events.filter((e) => e.kind === 'layer-start').map((e) => e.diffId)
    assert.deepEqual(started, [sha(c!)], 'only the new layer is read, once')
    const skipped = events.filter((e) => e.kind === 'layer-done' && e.skipped).length
    assert.equal(skipped, 2 + 3)
  })

  test('tag, rm by name and by ID, conflicts, and layers deleted with the last image', async (t) => {
    const dir = await tempDir(t, 'image-rm')
    const [a, b, c] = await threeLayers()
    const built = await buildDockerArchive(join(dir, 'in.tar'), [
      { layers: [a!, b!], repoTags: ['x/base:1'] },
      { layers: [a!, b!, c!], repoTags: ['x/app:1'] },
    ])
    const root = join(dir, 'root')
    const store = await ImageStore.open({ root })
    await store.load(built.path)
    await store.tag('x/app:1', 'y/app:latest')
    assert.equal(store.resolve('y/app'), built.ids[1])
    assert.equal(store.resolve(built.ids[1]!.slice(7, 19)), built.ids[1], 'an ID prefix')
    // By ID with names in two repositories: refused without force.
    await assert.rejects(store.remove(built.ids[1]!), (e) => hasCode(e, 'IMAGE_CONFLICT'))
    // A read-write layer made from the image: refused too.
    const top = store.inspect('x/app:1').layers.at(-1)!
    const rw = await store.layers.createRwLayer('c1', top)
    // Images pin their layers, in this process and in the next.
    const reopened = await ImageStore.open({ root })
    await assert.rejects(reopened.layers.remove(top), (e) => hasCode(e, 'LAYER_IN_USE'))
    const r1 = await store.remove('y/app')
    assert.deepEqual(r1, { untagged: ['y/app:latest'], deleted: [], layers: [] })
    await assert.rejects(store.remove('x/app:1'), (e) => hasCode(e, 'IMAGE_CONFLICT'))
    await store.layers.releaseRwLayer(rw)
    const r2 = await store.remove('x/app:1')
    assert.deepEqual(r2.untagged, ['x/app:1'])
    assert.deepEqual(r2.deleted, [built.ids[1]])
    assert.deepEqual(
      r2.layers.map((l) => l.chainId),
      [top],
      'the base image keeps the two lower layers',
    )
    const r3 = await store.remove('x/base:1')
    assert.equal(r3.layers.length, 2)
    assert.equal(store.layers.map().size, 0)
    assert.deepEqual(store.list(), [])
    const again = await ImageStore.open({ root })
    assert.deepEqual(again.list(), [])
    const repos: unknown = JSON.parse(
      readFileSync(join(root, 'image', store.layers.driverName, 'repositories.json'), 'utf8'),
    )
    assert.deepEqual(repos, { Repositories: {} })
  })

  test('saving into an existing OCI layout directory keeps the images already there', async (t) => {
    const dir = await tempDir(t, 'image-oci-merge')
    const [a, b] = await threeLayers()
    const built = await buildDockerArchive(join(dir, 'in.tar'), [
      { layers: [a!], repoTags: ['x/one:1'] },
      { layers: [a!, b!], repoTags: ['x/two:1'] },
    ])
    const store = await ImageStore.open({ root: join(dir, 'root') })
    await store.load(built.path)
    await assert.rejects(store.tag('x/one:1', `x/one@sha256:${'0'.repeat(64)}`), (e) =>
      hasCode(e, 'REFERENCE_INVALID'),
    )
    const layout = join(dir, 'layout') + '/'
    await store.save(['x/one:1'], layout, { format: 'oci' })
    await store.save(['x/two:1'], layout, { format: 'oci' })
    await store.save(['x/two:1'], layout, { format: 'oci' }) // the same name again: replaced
    const described = (await describeArchive(layout)) as { id: string; tags: string[] }[]
    assert.deepEqual(
      described.map((x) => [x.id, x.tags]),
      [
        [built.ids[0], ['docker.io/x/one:1']],
        [built.ids[1], ['docker.io/x/two:1']],
      ],
    )
  })

  test('records are Docker files: content by ID, familiar names in repositories.json', async (t) => {
    const dir = await tempDir(t, 'image-files')
    const [a] = await threeLayers()
    const built = await buildDockerArchive(join(dir, 'in.tar'), [
      { layers: [a!], repoTags: ['busybox:latest', 'localhost:5000/team/bb:2'] },
    ])
    const root = join(dir, 'root')
    const store = await ImageStore.open({ root })
    await store.load(built.path)
    const base = join(root, 'image', store.layers.driverName)
    const id = built.ids[0]!
    const content = readFileSync(join(base, 'imagedb', 'content', 'sha256', id.slice(7)))
    assert.equal(sha(content), id)
    const repos = JSON.parse(readFileSync(join(base, 'repositories.json'), 'utf8')) as {
      Repositories: Record<string, Record<string, string>>
    }
    assert.deepEqual(repos, {
      Repositories: {
        busybox: { 'busybox:latest': id },
        'localhost:5000/team/bb': { 'localhost:5000/team/bb:2': id },
      },
    })
    // A digest name as a pull (or dockerd) records it, and the ID forms Docker accepts.
    const digest = `sha256:${'d'.repeat(64)}`
    ;(repos.Repositories as Record<string, Record<string, string>>)['busybox']![
      `busybox@${digest}`
    ] = id
    writeFileSync(join(base, 'repositories.json'), JSON.stringify(repos))
    const again = await ImageStore.open({ root })
    assert.equal(again.resolve(`busybox@${digest}`), id)
    assert.equal(again.resolve(`busybox:latest@${digest}`), id, 'by its digest alone')
    assert.deepEqual(again.inspect(id).repoDigests, [`docker.io/library/busybox@${digest}`])
    assert.equal(again.resolve(id.slice(7)), id, 'a bare 64-hex ID')
    assert.equal(again.resolve(id.slice(0, 12)), id, 'a prefix after sha256:')
    assert.throws(
      () => again.resolve(`busybox@sha256:${'e'.repeat(64)}`),
      (e) => hasCode(e, 'IMAGE_DOES_NOT_EXIST'),
    )
  })

  test('a load that died after registering layers is rolled back at the next open', async (t) => {
    const dir = await tempDir(t, 'image-journal')
    const [a, b] = await threeLayers()
    const root = join(dir, 'root')
    const store = await ImageStore.open({ root })
    const kept = await buildDockerArchive(join(dir, 'kept.tar'), [
      { layers: [a!], repoTags: ['x/kept:1'] },
    ])
    await store.load(kept.path)
    // What a load leaves when killed between its layers and its record: layers and a journal
    // that no process holds.
    const base = await store.layers.get(chainIds([sha(a!)] as DiffId[])[0]!)
    const { Readable } = await import('node:stream')
    const orphan = await store.layers.register(Readable.from([b!]), base.chainId)
    mkdirSync(join(root, 'layerstore', 'loads'), { recursive: true })
    writeFileSync(
      join(root, 'layerstore', 'loads', 'load-dead'),
      `= ${base.chainId}\n+ ${orphan.chainId}\n`,
    )
    const reopened = await ImageStore.open({ root })
    assert.equal(reopened.layers.map().has(orphan.chainId), false, 'the orphan layer is removed')
    assert.equal(reopened.layers.map().has(base.chainId), true, 'the image layer stays')
    assert.equal(reopened.resolve('x/kept:1'), kept.ids[0])
  })
})

test('a save whose layer files were damaged fails with DIGEST_MISMATCH and leaves no file', async (t) => {
  const dir = await tempDir(t, 'image-save-damaged')
  const [a] = await threeLayers()
  const built = await buildDockerArchive(join(dir, 'in.tar'), [
    { layers: [a!], repoTags: ['x/one:1'] },
  ])
  const store = await ImageStore.open({ root: join(dir, 'root') })
  await store.load(built.path)
  const layer = await store.layers.get(store.inspect('x/one:1').layers[0]!)
  const md = await layer.metadata()
  store.layers.detach(layer)
  const files = md['UpperDir'] ?? md['SourceDir']!
  const file = join(files, 'etc', 'os-release')
  const bytes = readFileSync(file)
  bytes[0] = bytes[0]! ^ 1 // same size, other bytes
  writeFileSync(file, bytes)
  const out = join(dir, 'out.tar')
  await assert.rejects(store.save(['x/one:1'], out), (e) => hasCode(e, 'DIGEST_MISMATCH'))
  const { readdirSync } = await import('node:fs')
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.includes('save') || n === 'out.tar'),
    [],
  )
})

test('an image removal that died between the record and the layers is finished at open', async (t) => {
  const dir = await tempDir(t, 'image-rm-journal')
  const [a, b] = await threeLayers()
  const root = join(dir, 'root')
  const built = await buildDockerArchive(join(dir, 'in.tar'), [
    { layers: [a!], repoTags: ['x/base:1'] },
    { layers: [a!, b!], repoTags: ['x/app:1'] },
  ])
  const store = await ImageStore.open({ root })
  await store.load(built.path)
  const app = store.inspect('x/app:1')
  // What `image rm x/app:1` leaves when killed after deleting the record: its journal.
  writeFileSync(
    join(root, 'layerstore', 'loads', 'rm-dead'),
    app.layers.map((c) => `+ ${c}\n`).join(''),
  )
  const { unlinkSync } = await import('node:fs')
  unlinkSync(
    join(root, 'image', store.layers.driverName, 'imagedb', 'content', 'sha256', app.id.slice(7)),
  )
  const reopened = await ImageStore.open({ root })
  assert.deepEqual(
    [...reopened.layers.map().keys()],
    [app.layers[0]],
    'the top layer goes, the base image keeps its layer',
  )
  assert.equal(reopened.resolve('x/base:1'), built.ids[0])
})
