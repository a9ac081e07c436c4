/**
 * The archives of the `image load` crash harness (image-crash.ts) and their content: eight
 * images sharing base layers, written as docker-archives (tar, directory, Docker ≤24's layout)
 * and OCI layouts, some layers gzip, with the image IDs and full names loading each must give.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import {
  buildDockerArchive,
  buildOciLayout,
  fullName,
  makeLayerTar,
  type FixtureImage,
} from './image-archive.js'

/** An archive the parent built: what loading it must give. */
export interface CrashArchive {
  readonly path: string
  readonly images: readonly { readonly id: string; readonly tags: readonly string[] }[]
}

/** `size` deterministic bytes: half a sha256 stream (incompressible), half text. */
function content(name: string, size: number): Buffer {
  const out = Buffer.alloc(size)
  let block = createHash('sha256').update(name).digest()
  const half = size >> 1
  for (let o = 0; o < half; o += block.length) {
    block.copy(out, o, 0, Math.min(block.length, half - o))
    block = createHash('sha256').update(block).digest()
  }
  out.fill(`${name} line\n`, half)
  return out
}

/** A layer of `files` files of `size` bytes under `dir/`. */
function layer(dir: string, files: number, size: number): Promise<Buffer> {
  const entries: Record<string, Buffer> = {}
  for (let i = 0; i < files; i++) entries[`${dir}/f${i}`] = content(`${dir}/${i}`, size)
  return makeLayerTar(entries)
}

/**
 * The archives the child loads, written into `dir`: eight images over twelve layers, the
 * base layer in most of them (uncompressed in some archives, gzip in others).
 */
export async function buildCrashArchives(dir: string): Promise<CrashArchive[]> {
  const base = await layer('usr/base', 8, 96 << 10)
  const mid = await layer('usr/mid', 4, 64 << 10)
  const app = async (name: string, files: number): Promise<Buffer> =>
    layer(`app/${name}`, files, 48 << 10)
  const [a, b, c, d, e, f, o1, o2] = await Promise.all([
    app('a', 4),
    app('b', 3),
    app('c', 6),
    app('d', 2),
    app('e', 5),
    app('f', 3),
    layer('opt/one', 6, 64 << 10),
    layer('opt/two', 2, 32 << 10),
  ])
  const gz = (tar: Buffer) => ({ tar, compression: 'gzip' as const })
  const I0: FixtureImage = { layers: [base], repoTags: ['crash/base:1'] }
  const I1: FixtureImage = { layers: [base, a], repoTags: ['crash/a:1'] }
  const I2: FixtureImage = { layers: [base, mid, gz(b)], repoTags: ['crash/b:1', 'crash/b'] }
  const I3: FixtureImage = { layers: [gz(base), gz(mid), gz(c)], repoTags: ['crash/c:1'] }
  const I4: FixtureImage = { layers: [o1, gz(o2)], repoTags: ['example.com/crash/other:1'] }
  const I5: FixtureImage = { layers: [base, a, d], repoTags: ['crash/d:1'] }
  const I6: FixtureImage = { layers: [base, gz(e)] } // no name
  const I7: FixtureImage = { layers: [gz(base), f], repoTags: ['crash/a:1'] } // takes I1's name
  const built: { path: string; ids: string[]; images: FixtureImage[] }[] = []
  const add = async (
    images: FixtureImage[],
    make: (images: FixtureImage[]) => Promise<{ path: string; ids: string[] }>,
  ): Promise<void> => {
    built.push({ ...(await make(images)), images })
  }
  const at = (name: string): string => join(dir, name)
  await add([I0, I1], (i) => buildDockerArchive(at('a0.tar'), i))
  await add([I2], (i) => buildOciLayout(at('a1.tar'), i))
  await add([I3], (i) => buildDockerArchive(at('a2'), i, { tar: false }))
  await add([I4, I5], (i) => buildOciLayout(at('a3'), i, { tar: false }))
  await add([I6, I1], (i) => buildDockerArchive(at('a4.tar'), i, { legacy: true }))
  await add([I7], (i) => buildDockerArchive(at('a5.tar'), i))
  await add([I2, I3, I5], (i) => buildOciLayout(at('a6.tar'), i))
  return built.map(({ path, ids, images }) => ({
    path,
    images: images.map((img, k) => ({ id: ids[k]!, tags: (img.repoTags ?? []).map(fullName) })),
  }))
}
