/** What the image tests share: scratch directories, small layers, a store's full listing. */
import type { TestContext } from 'node:test'
import { createHash } from 'node:crypto'
import { scratchFor } from './corpus.js'
import { makeLayerTar } from './image-archive.js'
import { snapshot } from './tree.js'

/** A scratch directory removed after the test. */
export function tempDir(t: TestContext, name: string): Promise<string> {
  return scratchFor(t, `layerstore-${name}-`)
}

export const sha = (b: Uint8Array): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`

export async function threeLayers(): Promise<Buffer[]> {
  return [
    await makeLayerTar({ 'etc/os-release': 'ID=example\n', 'bin/sh': 'not really a shell' }),
    await makeLayerTar({ 'app/main.js': 'console.log("hello")\n', 'app/data/': '' }),
    await makeLayerTar({ 'app/main.js': 'console.log("hello, again")\n' }),
  ]
}

/**
 * Every file of a store root with its content hash; directories by name only. overlay2's
 * `committed` markers are left out: creating a layer on a parent marks the parent "used as a
 * lower" (Docker's overlay2 does the same) and the mark stays when the registration fails.
 */
export function listing(root: string): string[] {
  const list = snapshot(root).filter((e) => !/^overlay2\/[^/]+\/committed$/.test(e.path ?? ''))
  return list.map((e) => {
    const path = e.path ?? e.path_b64 ?? ''
    return e.type === 'file' ? `${path} ${e.mode} ${e.sha256 ?? ''}` : `${path} ${e.type} ${e.mode}`
  })
}
