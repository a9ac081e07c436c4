/**
 * Images against the real Docker engine (Debian's docker.io, a private dockerd per step) and
 * skopeo: what `docker save` writes loads into layerstore with Docker's IDs; what layerstore
 * saves loads into Docker with the same IDs; a root layerstore wrote opens in Docker with its
 * images, names and layers, and a root Docker wrote opens in layerstore likewise; skopeo reads
 * both archive formats layerstore writes.
 *
 * One image is built by Docker (legacy builder, FROM scratch, three layers, ENV and LABEL) and
 * saved once for the whole file; another comes from an OCI layout with gzip layers and a
 * whiteout, written by the test builders, so that layerstore is its first reader.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { chainIds, parseDiffId, type DiffId } from '../digest/index.js'
import {
  DockerSession,
  layerProblems,
  savedDiffIds,
  sha256,
  writeBuildContext,
} from '../testing/docker-session.js'
import { dockerBuild, dockerdUnavailable, inspectImage, startDockerd } from '../testing/dockerd.js'
import { buildOciLayout, makeLayerTar } from '../testing/image-archive.js'
import { ImageStore } from './image-store.js'

const NO_DOCKER = dockerdUnavailable('overlay2')
const NO_SKOPEO =
  spawnSync('skopeo', ['--version']).status === 0 ? undefined : 'skopeo is not installed'

/** Files shared by the tests of this file (the archives), removed at the end. */
const shared = mkdtempSync(join(tmpdir(), 'layerstore-docker-images-'))
after(() => {
  rmSync(shared, { recursive: true, force: true })
})

interface Fixture {
  /** The archive: a tar file (`docker save` or the test builder). */
  readonly archive: string
  readonly id: string
  readonly diffIds: readonly DiffId[]
  /** The name it carries, familiar (`interop/a:1`) and normalized. */
  readonly tag: string
  readonly fullTag: string
}

interface DockerBuilt extends Fixture {
  /** The data root Docker built it in (its daemon stopped). */
  readonly root: string
  /** Every image ID in that root (`docker images -a`): the legacy builder keeps one per step. */
  readonly allIds: readonly string[]
}

let built: Promise<DockerBuilt> | undefined

/**
 * The image Docker builds (see writeBuildContext), saved by `docker save` to a tar; the data
 * root Docker wrote stays (stopped) for the test that opens it. Built once, on first use.
 */
function dockerBuilt(): Promise<DockerBuilt> {
  built ??= (async () => {
    const dir = join(shared, 'docker-built')
    const context = join(dir, 'context')
    const root = join(dir, 'root')
    const archive = join(dir, 'a.tar')
    await writeBuildContext(context)
    const d = await startDockerd(root, { driver: 'overlay2' })
    if ('skip' in d) throw new Error(`dockerd cannot run: ${d.skip}`)
    try {
      const id = await dockerBuild(d, context, 'interop/a:1')
      const image = await inspectImage(d, 'interop/a:1')
      assert.equal(image.id, id)
      await d.docker(['save', '--output', archive, 'interop/a:1'])
      const all = await d.docker(['images', '--all', '--no-trunc', '--quiet'])
      return {
        allIds: [...new Set(all.stdout.toString().trim().split('\n'))].sort(),
        archive,
        root,
        id,
        diffIds: image.diffIds,
        tag: 'interop/a:1',
        fullTag: 'docker.io/interop/a:1',
      }
    } finally {
      await d.stop()
    }
  })()
  return built
}

let oci: Promise<Fixture> | undefined

/** An OCI layout (tar) with two gzip layers, the second deleting a file of the first. */
function ociFixture(): Promise<Fixture> {
  oci ??= (async () => {
    const base = await makeLayerTar({
      'etc/os-release': 'ID=oci\n',
      'data/keep.txt': 'keep\n',
      'data/gone.txt': 'gone\n',
    })
    const top = await makeLayerTar({ 'data/.wh.gone.txt': '', 'data/new.txt': 'new\n' })
    const { path, ids } = await buildOciLayout(join(shared, 'oci.tar'), [
      {
        layers: [
          { tar: base, compression: 'gzip' },
          { tar: top, compression: 'gzip' },
        ],
        repoTags: ['interop/oci:1'],
        config: { config: { Env: ['A=1'], Labels: { 'org.example.test': 'oci' } } },
      },
    ])
    const [id] = ids
    assert.ok(id !== undefined)
    return {
      archive: path,
      id,
      diffIds: [base, top].map((t) => parseDiffId(sha256(t))),
      tag: 'interop/oci:1',
      fullTag: 'docker.io/interop/oci:1',
    }
  })()
  return oci
}

/** An image store on `root`, its layers unmounted after the test; warnings collected. */
async function openImages(
  s: DockerSession,
  root: string,
  driver: 'overlay2' | 'vfs',
  warnings: string[],
): Promise<ImageStore> {
  const images = await ImageStore.open({
    root,
    driver,
    onWarning: (code, message) => warnings.push(`${code}: ${message}`),
  })
  s.defer(() => images.layers.cleanup())
  return images
}

/** Each layer of an image, read back from the store, hashes to its DiffID. */
async function exportsExactly(images: ImageStore, diffIds: readonly DiffId[]): Promise<void> {
  for (const [i, chainId] of chainIds(diffIds).entries()) {
    const layer = await images.layers.get(chainId)
    try {
      assert.equal(sha256(await buffer(layer.tarStream())), diffIds[i], `layer ${String(i)}`)
    } finally {
      images.layers.detach(layer) // the image holds it; nothing to release
    }
  }
}

// ---- (c) docker save → layerstore load ---------------------------------------------------------

for (const driver of ['overlay2', 'vfs'] as const) {
  test(
    `an image Docker saved loads into layerstore (${driver}) with Docker's image ID and ChainIDs`,
    { skip: NO_DOCKER ?? false },
    async (t) => {
      const s = new DockerSession(t)
      const fixture = await dockerBuilt()
      const warnings: string[] = []
      const images = await openImages(s, join(s.dir, 'root'), driver, warnings)
      const loaded = await images.load(fixture.archive)
      assert.equal(loaded.length, 1)
      const [info] = loaded
      assert.ok(info !== undefined)
      assert.equal(info.id, fixture.id)
      assert.deepEqual(info.diffIds, fixture.diffIds)
      assert.deepEqual(info.layers, chainIds(fixture.diffIds))
      assert.deepEqual(info.repoTags, [fixture.fullTag])

      const inspected = images.inspect(fixture.tag)
      assert.equal(inspected.id, fixture.id)
      const config = inspected.config as { config?: { Env?: string[]; Labels?: object } }
      assert.ok(config.config?.Env?.includes('PATH=/bin'), 'ENV of the Dockerfile')
      assert.deepEqual(config.config?.Labels, { 'org.example.test': 'interop' })
      await exportsExactly(images, fixture.diffIds)
      assert.deepEqual(warnings, [])
    },
  )
}

test(
  "layerstore opens Docker's own data root with Docker's images, names and layers",
  { skip: NO_DOCKER ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const fixture = await dockerBuilt() // its daemon has stopped
    const warnings: string[] = []
    const images = await openImages(s, fixture.root, 'overlay2', warnings)
    const listed = images.list()
    assert.deepEqual(listed.map((i) => i.id).sort(), fixture.allIds)
    assert.ok(fixture.allIds.length > 1, 'the intermediate images of the legacy builder')
    assert.deepEqual(
      listed.filter((i) => i.repoTags.length > 0).map((i) => [i.id, i.repoTags]),
      [[fixture.id, [fixture.fullTag]]],
    )
    assert.deepEqual(images.inspect(fixture.tag).layers, chainIds(fixture.diffIds))
    await exportsExactly(images, fixture.diffIds)
    assert.deepEqual(warnings, [])
  },
)

// ---- (d) layerstore save → docker load ---------------------------------------------------------

test(
  'images layerstore saves (docker format) load into Docker with the same image IDs and DiffIDs',
  { skip: NO_DOCKER ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const fixtures = [await dockerBuilt(), await ociFixture()]
    const images = await openImages(s, join(s.dir, 'store'), 'overlay2', [])
    for (const f of fixtures) await images.load(f.archive)
    const out = join(s.dir, 'saved.tar')
    await images.save(
      fixtures.map((f) => f.tag),
      out,
      { format: 'docker' },
    )

    const d = await s.dockerd(join(s.dir, 'docker'))
    const loaded = (await d.docker(['load', '--input', out])).stdout.toString()
    for (const f of fixtures) {
      assert.match(loaded, new RegExp(`Loaded image: ${f.tag}\\n`))
      const image = await inspectImage(d, f.tag)
      assert.equal(image.id, f.id, f.tag)
      assert.deepEqual(image.diffIds, f.diffIds, f.tag)
      assert.deepEqual(await savedDiffIds(d, f.tag), f.diffIds, `docker save ${f.tag}`)
    }
    // Read before the stop: what dockerd logs while shutting down its containerd is noise.
    const problems = layerProblems(d.log())
    await d.stop()
    assert.deepEqual(problems, [])
  },
)

// ---- (e) a root layerstore wrote, opened by dockerd -------------------------------------------

test(
  'dockerd on a root layerstore wrote lists its images by tag with the same IDs and saves their layers',
  { skip: NO_DOCKER ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const [a, o] = [await dockerBuilt(), await ociFixture()]
    const root = join(s.dir, 'root')
    const warnings: string[] = []
    const images = await openImages(s, root, 'overlay2', warnings)
    await images.load(a.archive)
    await images.load(o.archive)
    await images.tag(o.tag, 'interop/oci:extra')
    await images.layers.cleanup()

    const d = await s.dockerd(root, { driver: 'overlay2', logLevel: 'debug' })
    assert.deepEqual(layerProblems(d.log()), [], 'dockerd loaded every layer')
    const listed = (
      await d.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])
    ).stdout
      .toString()
      .trim()
      .split('\n')
      .sort()
    assert.deepEqual(
      listed,
      [`${a.tag} ${a.id}`, `interop/oci:extra ${o.id}`, `${o.tag} ${o.id}`].sort(),
    )
    for (const f of [a, o]) {
      assert.deepEqual((await inspectImage(d, f.tag)).diffIds, f.diffIds, f.tag)
      assert.deepEqual(await savedDiffIds(d, f.tag), f.diffIds, `docker save ${f.tag}`)
    }
    // Read before the stop: what dockerd logs while shutting down its containerd is noise.
    const problems = layerProblems(d.log())
    await d.stop()
    assert.deepEqual(problems, [])

    // And back: layerstore reads the root Docker has run on.
    const again = await openImages(s, root, 'overlay2', warnings)
    assert.deepEqual(
      again
        .list()
        .map((i) => `${i.id} ${[...i.repoTags].sort().join(',')}`)
        .sort(),
      [
        `${a.id} ${a.fullTag}`,
        `${o.id} docker.io/interop/oci:1,docker.io/interop/oci:extra`,
      ].sort(),
    )
    assert.deepEqual(warnings, [])
  },
)

// ---- (f) skopeo reads what layerstore saves ----------------------------------------------------

function skopeo(args: readonly string[]): Buffer {
  return execFileSync('skopeo', args, { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] })
}

interface OciManifest {
  mediaType?: string
  config: { digest: string; mediaType: string }
  layers: { digest: string; mediaType: string }[]
}

test(
  'skopeo reads what layerstore saves: docker-archive, oci-archive and an OCI layout directory',
  { skip: NO_SKOPEO ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const o = await ociFixture()
    const images = await openImages(s, join(s.dir, 'root'), 'vfs', [])
    await images.load(o.archive)
    const dockerTar = join(s.dir, 'docker.tar')
    const ociTar = join(s.dir, 'oci.tar')
    const ociDir = join(s.dir, 'oci')
    await images.save([o.tag], dockerTar, { format: 'docker' })
    await images.save([o.tag], ociTar, { format: 'oci' })
    mkdirSync(ociDir)
    execFileSync('tar', ['-xf', ociTar, '-C', ociDir])

    // docker-archive: the configuration is the image's, the layers are the uncompressed tars.
    const inspected = JSON.parse(skopeo(['inspect', `docker-archive:${dockerTar}`]).toString()) as {
      Layers: string[]
      Env?: string[]
    }
    assert.deepEqual(inspected.Layers, o.diffIds)
    assert.deepEqual(inspected.Env, ['A=1'])
    assert.equal(
      sha256(skopeo(['inspect', '--config', '--raw', `docker-archive:${dockerTar}`])),
      o.id,
    )

    // OCI: one manifest, whose config is the image and whose layers hold the DiffIDs.
    const manifests: Buffer[] = []
    for (const ref of [`oci-archive:${ociTar}`, `oci:${ociDir}`, `oci-archive:${dockerTar}`]) {
      const raw = skopeo(['inspect', '--raw', ref])
      const m = JSON.parse(raw.toString()) as OciManifest
      assert.equal(m.config.digest, o.id, ref)
      assert.equal(m.layers.length, o.diffIds.length, ref)
      assert.equal(sha256(skopeo(['inspect', '--config', '--raw', ref])), o.id, ref)
      manifests.push(raw)
      // A copy reads every blob and checks it against its digest.
      const copy = join(s.dir, `copy-${String(manifests.length)}`)
      skopeo(['copy', '--quiet', '--insecure-policy', ref, `dir:${copy}`])
      assert.equal(sha256(readFileSync(join(copy, 'manifest.json'))), sha256(raw), ref)
    }
    assert.deepEqual(manifests[0], manifests[1], 'the same manifest in the tar and the directory')
  },
)
