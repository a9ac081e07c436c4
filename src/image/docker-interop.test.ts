/**
 * Layers against the real Docker engine (Debian's docker.io, a private dockerd per test): a
 * data root Docker wrote opens in layerstore with Docker's layers, byte-exact; a root layerstore
 * wrote opens in Docker, which uses its layers as its own (load, save, create, export). Images
 * are built by Docker itself without network (legacy builder, FROM scratch, no RUN).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { chainIds, digestHex, type ChainId, type DiffId } from '../digest/index.js'
import { LayerStore } from '../layer/layer-store.js'
import type { Layer } from '../layer/types.js'
import { readTar, TYPE, type TarWriteEntry } from '../tar/index.js'
import {
  DockerSession,
  layerProblems,
  listDir,
  once,
  savedDiffIds,
  sha256,
  tarBytes,
  writeBuildContext,
} from '../testing/docker-session.js'
import { dockerBuild, dockerdUnavailable, inspectImage } from '../testing/dockerd.js'
import { hostPlatform } from './platform.js'

const MTIME = 1_700_000_000

/** A layer store on `root`, unmounted after the test; warnings collected. */
async function openStore(
  s: DockerSession,
  root: string,
  driver: string,
  warnings: string[],
): Promise<LayerStore> {
  const store = await LayerStore.open({
    root,
    driver,
    onWarning: (code, message) => warnings.push(`${code}: ${message}`),
  })
  s.defer(() => store.cleanup())
  return store
}

// ---- (a) Docker writes, layerstore reads -------------------------------------------------------

for (const driver of ['overlay2', 'vfs'] as const) {
  test(
    `Docker's ${driver} root opens in layerstore with Docker's ChainIDs, each layer exporting to its DiffID`,
    { skip: dockerdUnavailable(driver) ?? false },
    async (t) => {
      const s = new DockerSession(t)
      const root = join(s.dir, 'root')
      const context = join(s.dir, 'context')
      await writeBuildContext(context)

      const d = await s.dockerd(root, { driver })
      const id = await dockerBuild(d, context, 'interop/a:1')
      const image = await inspectImage(d, 'interop/a:1')
      await d.stop()
      assert.equal(image.id, id)
      assert.equal(image.diffIds.length, 3, 'COPY, ADD, COPY: three layers; ENV and LABEL none')
      const chain = chainIds(image.diffIds)
      const layerdb = join(root, 'image', driver, 'layerdb', 'sha256')
      assert.deepEqual(listDir(layerdb).sort(), chain.map(digestHex).sort(), "Docker's layerdb")

      const warnings: string[] = []
      const store = await openStore(s, root, driver, warnings)
      assert.deepEqual(warnings, [])
      assert.equal(store.driver.name, driver)
      assert.deepEqual([...store.map().keys()].sort(), [...chain].sort())
      for (const [i, chainId] of chain.entries()) {
        const info = store.map().get(chainId)
        assert.ok(info !== undefined)
        assert.equal(info.diffId, image.diffIds[i])
        assert.equal(info.parent?.chainId, i === 0 ? undefined : chain[i - 1])
        // Detached, not released: nothing else holds Docker's layers in a layer store alone (its
        // images do, in Docker), so releasing the last hold would delete them, as in Docker.
        const layer: Layer = await store.get(chainId)
        try {
          assert.equal(sha256(await buffer(layer.tarStream())), image.diffIds[i], `layer ${i}`)
        } finally {
          store.detach(layer)
        }
      }
      assert.equal(store.map().size, 3)
      await store.cleanup()

      // Docker still reads its root after layerstore had it open.
      const again = await s.dockerd(root, { driver })
      assert.deepEqual(await savedDiffIds(again, 'interop/a:1'), image.diffIds)
      // Read before the stop: what dockerd logs while shutting down its containerd is noise.
      const problems = layerProblems(again.log())
      await again.stop()
      assert.deepEqual(problems, [])
    },
  )
}

// ---- (b) layerstore writes, Docker reads -------------------------------------------------------

const LONG = `deep/${'x'.repeat(60)}/${'y'.repeat(60)}/file.txt`

/** Three layers: a base, one that deletes and overwrites, one with an opaque directory. */
function layerTars(): Promise<Buffer[]> {
  const dir = (name: string, mode = 0o755): TarWriteEntry => ({
    header: { typeflag: TYPE.DIR, name, mode, mtime: MTIME },
  })
  const file = (name: string, data: string, mode = 0o644): TarWriteEntry => ({
    header: { name, mode, mtime: MTIME, size: Buffer.byteLength(data) },
    body: Buffer.from(data),
  })
  return Promise.all([
    tarBytes([
      dir('bin/'),
      file('bin/tool', '#!/bin/sh\n', 0o755),
      dir('data/'),
      file('data/gone.txt', 'gone\n'),
      file('data/keep.txt', 'keep\n'),
      dir('etc/'),
      file('etc/os-release', 'ID=layerstore\n'),
      {
        header: {
          typeflag: TYPE.LINK,
          name: 'hard',
          linkname: 'data/keep.txt',
          mode: 0o644,
          mtime: MTIME,
        },
      },
      {
        header: {
          typeflag: TYPE.SYMLINK,
          name: 'link',
          linkname: 'etc/os-release',
          mode: 0o777,
          mtime: MTIME,
        },
      },
      dir('opq/'),
      file('opq/old.txt', 'old\n'),
    ]),
    tarBytes([
      dir('data/'),
      file('data/.wh.gone.txt', ''),
      file('data/new.txt', 'new\n'),
      dir('etc/'),
      file('etc/os-release', 'ID=changed\n'),
    ]),
    tarBytes([
      dir('opq/'),
      file('opq/.wh..wh..opq', ''),
      file('opq/fresh.txt', 'fresh\n'),
      file(LONG, 'long\n'),
    ]),
  ])
}

/** The merged tree of layerTars(), as `docker export` should show it. */
const MERGED: Record<string, string> = {
  bin: 'dir 755',
  'bin/tool': 'file 755 #!/bin/sh\n',
  data: 'dir 755',
  'data/keep.txt': 'file 644 keep\n',
  'data/new.txt': 'file 644 new\n',
  deep: 'dir 755',
  [LONG.split('/').slice(0, 2).join('/')]: 'dir 755',
  [LONG.split('/').slice(0, 3).join('/')]: 'dir 755',
  [LONG]: 'file 644 long\n',
  etc: 'dir 755',
  'etc/os-release': 'file 644 ID=changed\n',
  hard: 'file 644 keep\n',
  link: 'symlink etc/os-release',
  opq: 'dir 755',
  'opq/fresh.txt': 'file 644 fresh\n',
}

/** What Docker adds to a container's filesystem (its init layer and mount points). */
const DOCKER_ADDS = /^(\.dockerenv|dev|proc|sys|etc\/(hosts|hostname|resolv\.conf|mtab))(\/|$)/

/** A container filesystem export as `name → kind, mode and content`; hard links resolved. */
async function exportedTree(tar: Buffer): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for await (const e of readTar(once(tar))) {
    const name = e.header.name.replace(/^\.?\/+/, '').replace(/\/+$/, '')
    if (name === '' || DOCKER_ADDS.test(name)) continue
    const mode = (e.header.mode & 0o7777).toString(8)
    const parts: Buffer[] = []
    for await (const c of e.body) parts.push(Buffer.from(c))
    switch (e.header.typeflag) {
      case TYPE.DIR:
        out[name] = `dir ${mode}`
        break
      case TYPE.REG:
        out[name] = `file ${mode} ${Buffer.concat(parts).toString()}`
        break
      case TYPE.LINK:
        out[name] = out[e.header.linkname.replace(/^\.?\/+/, '')] ?? `dangling link`
        break
      case TYPE.SYMLINK:
        out[name] = `symlink ${e.header.linkname}`
        break
      default:
        out[name] = `type ${String(e.header.typeflag)}`
    }
  }
  return out
}

/** A docker-archive of one image whose layer blobs are empty: Docker must have the layers. */
async function archiveWithoutLayers(
  diffIds: readonly DiffId[],
  tag: string,
): Promise<{ tar: Buffer; id: string }> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: hostPlatform().architecture,
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  )
  const id = sha256(config)
  const layers = diffIds.map((_, i) => `layer-${String(i)}.tar`)
  const manifest = Buffer.from(
    JSON.stringify([
      { Config: `${digestHex(id as DiffId)}.json`, RepoTags: [tag], Layers: layers },
    ]),
  )
  const file = (name: string, body: Buffer): TarWriteEntry => ({
    header: { name, mode: 0o644, mtime: MTIME, size: body.length },
    body,
  })
  const tar = await tarBytes([
    file('manifest.json', manifest),
    file(`${digestHex(id as DiffId)}.json`, config),
    ...layers.map((name) => file(name, Buffer.alloc(0))),
  ])
  return { tar, id }
}

test(
  'an overlay2 root layerstore wrote opens in Docker, which loads, saves, creates and exports on its layers',
  { skip: dockerdUnavailable('overlay2') ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const root = join(s.dir, 'root')
    const warnings: string[] = []
    const store = await openStore(s, root, 'overlay2', warnings)
    let parent: ChainId | undefined
    const diffIds: DiffId[] = []
    for (const tar of await layerTars()) {
      const layer: Layer = await store.register(once(tar), parent)
      assert.equal(layer.diffId, sha256(tar))
      diffIds.push(layer.diffId)
      parent = layer.chainId // the handles stay: released, the layers would be deleted
    }
    await store.cleanup()
    assert.deepEqual(warnings, [])
    const chain = chainIds(diffIds)
    const layerdb = join(root, 'image', 'overlay2', 'layerdb', 'sha256')
    const cacheIds = (): string[] =>
      chain.map((c) => readFileSync(join(layerdb, digestHex(c), 'cache-id'), 'utf8'))
    const before = cacheIds()

    const d = await s.dockerd(root, { driver: 'overlay2', logLevel: 'debug' })
    assert.deepEqual(layerProblems(d.log()), [], 'dockerd loaded every layer') // (debug level)
    // The archive has empty layer blobs: the load succeeds only on the layers Docker found.
    const { tar, id } = await archiveWithoutLayers(diffIds, 'interop/b:1')
    const loaded = await d.docker(['load'], tar)
    assert.match(loaded.stdout.toString(), /Loaded image: interop\/b:1/)
    const image = await inspectImage(d, 'interop/b:1')
    assert.equal(image.id, id)
    assert.deepEqual(image.diffIds, diffIds)
    // Docker reassembles each layer from our tar-split metadata and our overlay2 directories.
    assert.deepEqual(await savedDiffIds(d, 'interop/b:1'), diffIds)
    // A container on the chain: Docker mounts our lower directories (l/ links, lower files).
    const container = (await d.docker(['create', 'interop/b:1', '/bin/tool'])).stdout
      .toString()
      .trim()
    const exported = (await d.docker(['export', container])).stdout
    await d.docker(['rm', container])
    await d.stop()

    assert.deepEqual(await exportedTree(exported), MERGED)
    assert.deepEqual(layerProblems(d.log()), [])
    assert.deepEqual(listDir(layerdb).sort(), chain.map(digestHex).sort(), 'the same layers')
    assert.deepEqual(cacheIds(), before, 'Docker used our layer directories, made none')
  },
)
