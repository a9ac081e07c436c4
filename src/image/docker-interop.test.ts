/**
 * Layers against the real Docker engine (Debian's docker.io, a private dockerd per test): a
 * data root Docker wrote opens in layerstore with Docker's layers, byte-exact; a root layerstore
 * wrote opens in Docker, which uses its layers as its own (load, save, create, export). Images
 * are built by Docker itself without network (legacy builder, FROM scratch, no RUN).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { chainIds, digestHex, type ChainId, type DiffId } from '../digest/index.js'
import { LayerStore } from '../layer/layer-store.js'
import { hostPlatform } from './platform.js'
import type { Layer } from '../layer/types.js'
import { readTar, TYPE, writeTar, type TarWriteEntry } from '../tar/index.js'
import {
  dockerBuild,
  dockerdUnavailable,
  inspectImage,
  startDockerd,
  type Dockerd,
  type DockerdOptions,
} from '../testing/dockerd.js'

const sha256 = (b: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`

/**
 * A scratch directory for one test, removed after it; daemons started through it are stopped
 * and stores cleaned up first, in that order, also when the test fails.
 */
class Session {
  readonly dir = mkdtempSync(join(tmpdir(), 'layerstore-docker-'))
  readonly #daemons: Dockerd[] = []
  readonly #stores: LayerStore[] = []

  constructor(t: TestContext) {
    t.after(async () => {
      for (const d of this.#daemons) await d.stop()
      for (const s of this.#stores) await s.cleanup()
      rmSync(this.dir, { recursive: true, force: true })
    })
  }

  /** A daemon on `root`; a reason to skip is an error here (the test checked it up front). */
  async dockerd(root: string, options: DockerdOptions): Promise<Dockerd> {
    const d = await startDockerd(root, options)
    if ('skip' in d) throw new Error(`dockerd cannot run: ${d.skip}`)
    this.#daemons.push(d)
    return d
  }

  async store(root: string, driver: string, warnings: string[]): Promise<LayerStore> {
    const store = await LayerStore.open({
      root,
      driver,
      onWarning: (code, message) => warnings.push(`${code}: ${message}`),
    })
    this.#stores.push(store)
    return store
  }
}

/** Names in a directory, or none when it does not exist. */
function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : []
}

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b
}

async function tarBytes(entries: TarWriteEntry[]): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of writeTar(entries)) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks)
}

/** The regular files of a tar, by name. */
async function tarFiles(tar: Uint8Array): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for await (const e of readTar(once(tar))) {
    if (e.header.typeflag !== TYPE.REG) continue
    const parts: Buffer[] = []
    for await (const c of e.body) parts.push(Buffer.from(c))
    files.set(e.header.name, Buffer.concat(parts))
  }
  return files
}

/** `docker save` of `ref`: the DiffID of each layer blob, bottom first (manifest.json order). */
async function savedDiffIds(d: Dockerd, ref: string): Promise<string[]> {
  const files = await tarFiles((await d.docker(['save', ref])).stdout)
  const manifest = files.get('manifest.json')
  assert.ok(manifest !== undefined, 'docker save wrote no manifest.json')
  const [image] = JSON.parse(manifest.toString()) as { Layers: string[] }[]
  assert.ok(image !== undefined)
  return image.Layers.map((path) => {
    const blob = files.get(path)
    assert.ok(blob !== undefined, `docker save: no ${path}`)
    return sha256(blob)
  })
}

/** Lines of a daemon log that tell of a layer or image it could not use, or of any error. */
function layerProblems(log: string): string[] {
  return log
    .split('\n')
    .filter((l) =>
      /level=(error|fatal)|failed to load (layer|mount)|layer.*(invalid|corrupt)/i.test(l),
    )
}

// ---- (a) Docker writes, layerstore reads -------------------------------------------------------

const HOUR = 3600
const MTIME = 1_700_000_000

/** A tar for ADD, which Docker extracts: links, a long name, owners and odd modes. */
function addTar(): Promise<Buffer> {
  const long = `${'long-directory-name-'.repeat(4)}end/${'f'.repeat(90)}.txt`
  const h = (
    name: string,
    more: Partial<TarWriteEntry['header']> = {},
  ): TarWriteEntry['header'] => ({
    name,
    mode: 0o644,
    mtime: MTIME,
    ...more,
  })
  return tarBytes([
    { header: h('tree/', { typeflag: TYPE.DIR, mode: 0o750, uid: 1000, gid: 1000 }) },
    { header: h('tree/secret', { mode: 0o600, uid: 1000, gid: 1000 }), body: Buffer.from('s\n') },
    {
      header: h('tree/hard', {
        typeflag: TYPE.LINK,
        linkname: 'tree/secret',
        uid: 1000,
        gid: 1000,
        mode: 0o600,
      }),
    },
    {
      header: h('tree/sym', { typeflag: TYPE.SYMLINK, linkname: '../etc/os-release', mode: 0o777 }),
    },
    { header: h('tree/empty/', { typeflag: TYPE.DIR, mode: 0o755, mtime: MTIME + HOUR }) },
    { header: h(long), body: Buffer.from('a long name\n') },
  ])
}

/** A build context: three layers (COPY, ADD, COPY --chown) between empty ENV and LABEL steps. */
async function writeContext(dir: string): Promise<void> {
  const put = (path: string, data: string | Buffer, mode = 0o644): void => {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), data, { mode })
  }
  put('base/etc/os-release', 'ID=layerstore\n')
  put('base/bin/tool', '#!/bin/sh\necho tool\n', 0o755)
  put('base/data/big.bin', Buffer.alloc(300_000, 7))
  put('base/data/sub/deep/file.txt', 'deep\n')
  put('extra.tar', await addTar())
  put('over/etc/os-release', 'ID=changed\n')
  put('over/data/sub/more.txt', 'more\n')
  put(
    'Dockerfile',
    [
      'FROM scratch',
      'COPY base/ /',
      'ENV PATH=/bin',
      'ADD extra.tar /opt/',
      'LABEL org.example.test=interop',
      'COPY --chown=1000:1000 over/ /',
      '',
    ].join('\n'),
  )
}

for (const driver of ['overlay2', 'vfs'] as const) {
  test(
    `Docker's ${driver} root opens in layerstore with Docker's ChainIDs, each layer exporting to its DiffID`,
    { skip: dockerdUnavailable(driver) ?? false },
    async (t) => {
      const s = new Session(t)
      const root = join(s.dir, 'root')
      const context = join(s.dir, 'context')
      await writeContext(context)

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
      const store = await s.store(root, driver, warnings)
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
      await again.stop()
      assert.deepEqual(layerProblems(again.log()), [])
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
    const s = new Session(t)
    const root = join(s.dir, 'root')
    const warnings: string[] = []
    const store = await s.store(root, 'overlay2', warnings)
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
