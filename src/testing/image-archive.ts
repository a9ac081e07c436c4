/**
 * Builders of image archives for tests, written with our own tar writer and no external
 * program but `zstd` (for zstd layers): docker-archives as `docker save` writes them (the
 * Docker 25+ layout and the Docker ≤24 one) and OCI image layouts, each as a directory or a
 * tar file. Every byte is deterministic: the same images give the same archive.
 *
 * ```ts
 * const layer = await makeLayerTar({ 'etc/hostname': 'box\n' })
 * const { path, ids } = await buildDockerArchive(join(dir, 'img.tar'), [
 *   { layers: [layer], repoTags: ['example/box:1'] },
 * ])
 * ```
 *
 * Configurations are `{architecture, os, [variant], config, created, history, rootfs}` plus
 * the image's extra fields; DiffIDs are computed from the uncompressed tars and the image ID is
 * the sha256 of the configuration's bytes.
 *
 * Layer tars and their compression are in image-archive-layer.ts (re-exported here).
 */
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { hostPlatform } from '../image/platform.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { TYPE } from '../tar/types.js'
import { compressLayer, MTIME, type FixtureCompression } from './image-archive-layer.js'

export { compressLayer, makeLayerTar, type FixtureCompression } from './image-archive-layer.js'

export interface FixtureImage {
  /** Uncompressed layer tars, or tars with the compression their blob is written in. */
  readonly layers: readonly (Buffer | { tar: Buffer; compression: FixtureCompression })[]
  /** Familiar names (`busybox:latest`, `example/a:1`). */
  readonly repoTags?: readonly string[]
  /** Extra fields merged into the configuration (they win over the defaults). */
  readonly config?: Record<string, unknown>
  /** Default: the host's (so that loading without `--platform` picks the image). */
  readonly platform?: { os: string; architecture: string; variant?: string }
}

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const

/** Annotations naming an image in an index (containerd's and the OCI spec's). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name'
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'

/** A fixed time, so that archives are byte-for-byte reproducible (tar entries use MTIME). */
const CREATED = '2024-01-01T00:00:00Z'

const sha256Hex = (data: Uint8Array | string): string =>
  createHash('sha256').update(data).digest('hex')

interface BuiltLayer {
  readonly tar: Buffer
  readonly diffId: string
  readonly blob: Buffer
  readonly blobHex: string
  readonly compression: FixtureCompression
}

interface BuiltImage {
  readonly layers: readonly BuiltLayer[]
  readonly config: Buffer
  readonly configHex: string
  readonly repoTags: readonly string[]
  readonly platform: { os: string; architecture: string; variant?: string }
}

function buildImage(image: FixtureImage): BuiltImage {
  const layers = image.layers.map((l): BuiltLayer => {
    const { tar, compression } = Buffer.isBuffer(l) ? { tar: l, compression: 'none' as const } : l
    const blob = compressLayer(tar, compression)
    return { tar, diffId: `sha256:${sha256Hex(tar)}`, blob, blobHex: sha256Hex(blob), compression }
  })
  const platform = image.platform ?? hostPlatform()
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: {},
      created: CREATED,
      history: layers.map((_, i) => ({ created: CREATED, created_by: `fixture layer ${i}` })),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      ...image.config,
    }),
  )
  return { layers, config, configHex: sha256Hex(config), repoTags: image.repoTags ?? [], platform }
}

/** `busybox` → `docker.io/library/busybox:latest`, as Docker normalizes names (enough for fixtures). */
export function fullName(tag: string): string {
  const slash = tag.indexOf('/')
  const first = slash < 0 ? '' : tag.slice(0, slash)
  const domained = first.includes('.') || first.includes(':') || first === 'localhost'
  let name = domained ? tag : `docker.io/${slash < 0 ? 'library/' : ''}${tag}`
  if (!/:[\w][\w.-]*$/.test(name.slice(name.lastIndexOf('/')))) name += ':latest'
  return name
}

/** The tag part of a familiar name (`a/b:1` → `1`). */
function tagOf(tag: string): string {
  const full = fullName(tag)
  return full.slice(full.lastIndexOf(':') + 1)
}

function layerMediaType(c: FixtureCompression): string {
  switch (c) {
    case 'none':
      return MEDIA_TYPES.ociLayer
    case 'gzip':
      return MEDIA_TYPES.ociLayerGzip
    case 'zstd':
      return MEDIA_TYPES.ociLayerZstd
  }
}

/** An OCI image manifest for `img`, as bytes. */
function ociManifest(img: BuiltImage): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: {
        mediaType: MEDIA_TYPES.ociConfig,
        digest: `sha256:${img.configHex}`,
        size: img.config.length,
      },
      layers: img.layers.map((l) => ({
        mediaType: layerMediaType(l.compression),
        digest: `sha256:${l.blobHex}`,
        size: l.blob.length,
      })),
    }),
  )
}

/** Files of an archive by path; a string value is a symlink target. */
type Files = Map<string, Buffer | { symlink: string }>

/** Writes `files` as a directory at `out`, or as a tar file (directories listed first). */
async function emit(out: string, files: Files, tar: boolean): Promise<string> {
  await rm(out, { recursive: true, force: true })
  const names = [...files.keys()].sort()
  if (!tar) {
    for (const name of names) {
      const path = join(out, name)
      await mkdir(dirname(path), { recursive: true })
      const f = files.get(name)!
      if (Buffer.isBuffer(f)) await writeFile(path, f)
      else await symlink(f.symlink, path)
    }
    await mkdir(out, { recursive: true })
    return out
  }
  const entries: TarWriteEntry[] = []
  const dirs = new Set<string>()
  for (const name of names) {
    const parts = name.split('/').slice(0, -1)
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/')
      if (dirs.has(dir)) continue
      dirs.add(dir)
      entries.push({ header: { name: `${dir}/`, typeflag: TYPE.DIR, mode: 0o755, mtime: MTIME } })
    }
    const f = files.get(name)!
    entries.push(
      Buffer.isBuffer(f)
        ? { header: { name, mode: 0o644, size: f.length, mtime: MTIME }, body: f }
        : {
            header: {
              name,
              typeflag: TYPE.SYMLINK,
              linkname: f.symlink,
              mode: 0o777,
              mtime: MTIME,
            },
          },
    )
  }
  await mkdir(dirname(out), { recursive: true })
  await pipeline(Readable.from(writeTar(entries)), createWriteStream(out))
  return out
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

/** `repositories`: `{repo: {tag: id}}`, familiar repository names as Docker writes them. */
function repositories(images: readonly BuiltImage[], idOf: (img: BuiltImage) => string): Buffer {
  const repos: Record<string, Record<string, string>> = {}
  for (const img of images) {
    for (const tag of img.repoTags) {
      const t = tagOf(tag)
      const repo = tag.endsWith(`:${t}`) ? tag.slice(0, -t.length - 1) : tag
      ;(repos[repo] ??= {})[t] = idOf(img)
    }
  }
  return json(repos)
}

/**
 * A docker-archive of `images` at `out`: the Docker 25+ layout by default (`blobs/sha256/`,
 * `manifest.json`, `index.json`, `oci-layout`, `repositories`), or with `legacy` the Docker
 * ≤24 one (`<id>.json`, `<layer>/layer.tar|VERSION|json`). A tar file unless `tar: false`.
 * Layers shared by images are written once (legacy: a second chain position holding the same
 * tar gets a symlink to the first `layer.tar`, as Docker ≤24 writes it).
 */
export async function buildDockerArchive(
  out: string,
  images: readonly FixtureImage[],
  options: { legacy?: boolean; tar?: boolean } = {},
): Promise<{ path: string; ids: string[] }> {
  const built = images.map(buildImage)
  const files: Files = new Map()
  const manifest: unknown[] = []
  if (options.legacy === true) {
    const byDiffId = new Map<string, string>()
    const topLayer = new Map<BuiltImage, string>()
    for (const img of built) {
      let parent = ''
      const paths: string[] = []
      img.layers.forEach((l, i) => {
        const last = i === img.layers.length - 1
        // Docker's v1 IDs hash the chain (and, for the top layer, the image config).
        const id = sha256Hex(`${parent} ${l.diffId} ${last ? img.configHex : ''}`)
        files.set(`${id}/VERSION`, Buffer.from('1.0'))
        files.set(
          `${id}/json`,
          json({
            id,
            ...(parent === '' ? {} : { parent }),
            created: CREATED,
            container_config: {},
            os: img.platform.os,
          }),
        )
        const first = byDiffId.get(l.diffId)
        if (first === undefined || first === id) {
          files.set(`${id}/layer.tar`, l.blob)
          byDiffId.set(l.diffId, id)
        } else {
          files.set(`${id}/layer.tar`, { symlink: `../${first}/layer.tar` })
        }
        paths.push(`${id}/layer.tar`)
        parent = id
      })
      topLayer.set(img, parent)
      files.set(`${img.configHex}.json`, img.config)
      manifest.push({
        Config: `${img.configHex}.json`,
        RepoTags: img.repoTags.length === 0 ? null : img.repoTags,
        Layers: paths,
      })
    }
    files.set(
      'repositories',
      repositories(built, (img) => topLayer.get(img)!),
    )
  } else {
    const index: unknown[] = []
    for (const img of built) {
      files.set(`blobs/sha256/${img.configHex}`, img.config)
      for (const l of img.layers) files.set(`blobs/sha256/${l.blobHex}`, l.blob)
      const m = ociManifest(img)
      const mHex = sha256Hex(m)
      files.set(`blobs/sha256/${mHex}`, m)
      const desc = { mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${mHex}`, size: m.length }
      if (img.repoTags.length === 0) index.push(desc)
      for (const tag of img.repoTags) {
        index.push({
          ...desc,
          annotations: {
            [ANNOTATION_IMAGE_NAME]: fullName(tag),
            [ANNOTATION_REF_NAME]: tagOf(tag),
          },
        })
      }
      manifest.push({
        Config: `blobs/sha256/${img.configHex}`,
        RepoTags: img.repoTags.length === 0 ? null : img.repoTags,
        Layers: img.layers.map((l) => `blobs/sha256/${l.blobHex}`),
      })
    }
    files.set(
      'index.json',
      json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: index }),
    )
    files.set('oci-layout', json({ imageLayoutVersion: '1.0.0' }))
    files.set(
      'repositories',
      repositories(built, (img) => img.layers.at(-1)?.blobHex ?? img.configHex),
    )
  }
  files.set('manifest.json', json(manifest))
  const path = await emit(out, files, options.tar !== false)
  return { path, ids: built.map((img) => `sha256:${img.configHex}`) }
}

/**
 * An OCI image layout of `images` at `out` (a tar file unless `tar: false`). `index.json` has
 * one entry per image and tag, named by both annotations; with `nestedIndex` it has one entry
 * (per tag of all images) pointing at an image index that lists each image with its platform.
 */
export async function buildOciLayout(
  out: string,
  images: readonly FixtureImage[],
  options: { tar?: boolean; nestedIndex?: boolean } = {},
): Promise<{ path: string; ids: string[]; manifestDigests: string[]; indexDigest?: string }> {
  const built = images.map(buildImage)
  const files: Files = new Map()
  const descs = built.map((img) => {
    files.set(`blobs/sha256/${img.configHex}`, img.config)
    for (const l of img.layers) files.set(`blobs/sha256/${l.blobHex}`, l.blob)
    const m = ociManifest(img)
    const mHex = sha256Hex(m)
    files.set(`blobs/sha256/${mHex}`, m)
    return { mediaType: MEDIA_TYPES.ociManifest, digest: `sha256:${mHex}`, size: m.length }
  })
  const named = (desc: object, tags: readonly string[]): object[] =>
    tags.length === 0
      ? [desc]
      : tags.map((tag) => ({
          ...desc,
          annotations: {
            [ANNOTATION_IMAGE_NAME]: fullName(tag),
            [ANNOTATION_REF_NAME]: tagOf(tag),
          },
        }))
  let entries: object[]
  let indexDigest: string | undefined
  if (options.nestedIndex === true) {
    const inner = json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: descs.map((d, i) => ({ ...d, platform: built[i]!.platform })),
    })
    const hex = sha256Hex(inner)
    files.set(`blobs/sha256/${hex}`, inner)
    indexDigest = `sha256:${hex}`
    const tags = [...new Set(built.flatMap((img) => img.repoTags))]
    entries = named(
      { mediaType: MEDIA_TYPES.ociIndex, digest: indexDigest, size: inner.length },
      tags,
    )
  } else {
    entries = descs.flatMap((d, i) => named(d, built[i]!.repoTags))
  }
  files.set(
    'index.json',
    json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: entries }),
  )
  files.set('oci-layout', json({ imageLayoutVersion: '1.0.0' }))
  const path = await emit(out, files, options.tar !== false)
  return {
    path,
    ids: built.map((img) => `sha256:${img.configHex}`),
    manifestDigests: descs.map((d) => d.digest),
    ...(indexDigest === undefined ? {} : { indexDigest }),
  }
}
