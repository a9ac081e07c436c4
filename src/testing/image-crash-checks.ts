/**
 * The checks of the `image load` crash harness (image-crash.ts): a model of the images and
 * names the store must hold (State, Op, apply, and replay of what the child printed), and the
 * checks of a reopened store against it (checkStore: nothing left over and chains whole;
 * checkExports: layers export to their DiffIDs; checkState: each call had its effect or not).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChainId } from '../digest/digest.js'
import type { ImageStore } from '../image/image-store.js'
import { JOURNALS_DIR } from '../image/journal.js'
import type { CrashArchive } from './image-crash-archives.js'
import { danglingLinks, driverIds, listAll } from './store-crash.js'

/** Images and names: image ID, and full name → image ID. */
export interface State {
  images: Set<string>
  tags: Map<string, string>
}

export type Op =
  | { kind: 'load'; archive: number }
  | { kind: 'remove'; ref: string }
  | { kind: 'tag'; id: string; target: string }

export const copy = (s: State): State => ({ images: new Set(s.images), tags: new Map(s.tags) })

/** Applies a call to the model as ImageStore does it; returns the IDs it loads or deletes. */
export function apply(state: State, op: Op, archives: readonly CrashArchive[]): string[] {
  switch (op.kind) {
    case 'load': {
      const images = archives[op.archive]!.images
      for (const { id, tags } of images) {
        state.images.add(id)
        for (const t of tags) state.tags.set(t, id) // a name moves to the new image
      }
      return images.map((i) => i.id)
    }
    case 'remove': {
      const byId = op.ref.startsWith('sha256:')
      const id = byId ? op.ref : state.tags.get(op.ref)
      assert.ok(id !== undefined && state.images.has(id), `the child removes ${op.ref}: unknown`)
      if (byId) {
        for (const [t, v] of state.tags) if (v === id) state.tags.delete(t)
      } else {
        state.tags.delete(op.ref)
      }
      if ([...state.tags.values()].includes(id)) return [] // untagged only
      state.images.delete(id)
      return [id]
    }
    case 'tag':
      assert.ok(state.images.has(op.id), `the child tags ${op.id}: unknown`)
      state.tags.set(op.target, op.id)
      return []
  }
}

/**
 * Replays what the child printed on `state`: every call that returned; returns the call in
 * progress at the kill, if any.
 */
export function replay(lines: readonly string[], state: State, archives: readonly CrashArchive[]) {
  let pending: Op | undefined
  let loads = 0
  for (const line of lines) {
    const [what, ...args] = line.split(' ')
    switch (what) {
      case 'ready':
        break
      case 'load':
        pending = { kind: 'load', archive: Number(args[0]) }
        break
      case 'remove':
        pending = { kind: 'remove', ref: args[0]! }
        break
      case 'tag':
        pending = { kind: 'tag', id: args[0]!, target: args[1]! }
        break
      case 'loaded':
      case 'removed':
      case 'tagged': {
        assert.ok(pending !== undefined, `"${line}" without its call`)
        const ids = apply(state, pending, archives)
        if (what === 'loaded') loads++
        if (what !== 'tagged')
          assert.deepEqual(args.slice(1).sort(), [...ids].sort(), `the child's "${line}"`)
        pending = undefined
        break
      }
      default:
        assert.fail(`the child printed "${line}"`)
    }
  }
  return { pending, loads }
}

/** Files under `dir` (recursively) whose name ends in `.tmp`. */
function tmpFiles(dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...tmpFiles(join(dir, e.name)))
    else if (e.name.endsWith('.tmp')) out.push(join(dir, e.name))
  }
  return out
}

/** Checks the layers and records are consistent and nothing is left over; returns the state. */
export async function checkStore(
  images: ImageStore,
  root: string,
  driver: string,
  at: string,
): Promise<State> {
  const layers = images.layers
  await layers.cleanup()
  assert.deepEqual(listAll(join(root, JOURNALS_DIR)), [], `${at}: a journal is left`)
  const imageDir = join(root, 'image', driver)
  const layerdb = join(imageDir, 'layerdb')
  assert.deepEqual(listAll(join(layerdb, 'tmp')), [], `${at}: a write set is left`)
  assert.deepEqual(
    listAll(join(layerdb, 'sha256')).filter((n) => n.endsWith('-removing')),
    [],
    `${at}: an orphan is left`,
  )
  assert.deepEqual(
    listAll(join(root, 'layerstore', 'inflight')),
    [],
    `${at}: an in-flight marker is left`,
  )
  const known = new Set([...layers.map().values()].map((l) => l.cacheId))
  assert.deepEqual(
    driverIds(root, driver).filter((id) => !known.has(id)),
    [],
    `${at}: driver directories without a record`,
  )
  if (driver === 'overlay2') {
    assert.deepEqual(danglingLinks(root), [], `${at}: short links without a layer`)
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    assert.equal(mounts.includes(root), false, `${at}: a mount is left`)
  }
  assert.deepEqual(tmpFiles(imageDir), [], `${at}: temporary files are left`)
  const content = join(imageDir, 'imagedb', 'content', 'sha256')
  assert.deepEqual(
    listAll(join(imageDir, 'imagedb', 'metadata', 'sha256')).filter(
      (hex) => !listAll(content).includes(hex),
    ),
    [],
    `${at}: image metadata without its configuration`,
  )

  const state: State = { images: new Set(), tags: new Map() }
  const used = new Set<string>()
  for (const img of images.list()) {
    state.images.add(img.id)
    for (const t of [...img.repoTags, ...img.repoDigests]) state.tags.set(t, img.id)
    for (const c of img.layers) {
      assert.ok(layers.map().has(c), `${at}: image ${img.id} lacks its layer ${c}`)
      used.add(c)
    }
  }
  const unused = [...layers.map().keys()].filter((c) => !used.has(c))
  assert.deepEqual(unused, [], `${at}: layers no image uses`)
  return state
}

/** Hashes the export of each layer in `chainIds` against its DiffID. */
export async function checkExports(images: ImageStore, chainIds: readonly ChainId[], at: string) {
  for (const c of chainIds) {
    const l = await images.layers.get(c)
    const hash = createHash('sha256')
    for await (const chunk of l.tarStream()) hash.update(chunk as Buffer)
    assert.equal(
      `sha256:${hash.digest('hex')}`,
      l.diffId,
      `${at}: ${c} does not export to its DiffID`,
    )
    images.layers.detach(l)
  }
}

/** The observed state must be, name by name and image by image, before or after the call. */
export function checkState(observed: State, before: State, after: State, at: string): void {
  const ids = new Set([...before.images, ...after.images, ...observed.images])
  for (const id of ids) {
    const seen = observed.images.has(id)
    assert.ok(
      seen === before.images.has(id) || seen === after.images.has(id),
      `${at}: image ${id} is ${seen ? 'there' : 'gone'}`,
    )
  }
  const names = new Set([...before.tags.keys(), ...after.tags.keys(), ...observed.tags.keys()])
  for (const name of names) {
    const seen = observed.tags.get(name)
    assert.ok(
      seen === before.tags.get(name) || seen === after.tags.get(name),
      `${at}: ${name} points at ${seen ?? 'nothing'}, expected ${before.tags.get(name) ?? 'nothing'}` +
        (after.tags.get(name) !== before.tags.get(name)
          ? ` or ${after.tags.get(name) ?? 'nothing'}`
          : ''),
    )
  }
}
