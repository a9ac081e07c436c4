/**
 * ImageStore: image records over the layer store, as Docker's daemon keeps them (its image
 * store and reference store). Each image holds its top layer, so its whole chain; names point
 * at images. Records live in Docker's files (see image-db.ts), so a dockerd started on the
 * root sees the same images.
 *
 * Several processes may use one root: record changes happen under a lock (flock, released by
 * the kernel when a process dies) after re-reading the records, as the layer store does.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { chainIds } from '../digest/chain-id.js'
import type { ChainId } from '../digest/digest.js'
import { hasCode } from '../errors.js'
import { withFileLock } from '../internal/lock.js'
import { LayerStore } from '../layer/layer-store.js'
import type { Layer, LayerMetadata, LayerStoreOptions } from '../layer/types.js'
import { ImageConflictError, ImageDoesNotExistError, ReferenceAmbiguousError } from './errors.js'
import { ImageDb } from './image-db.js'
import { parseImageConfig, type ImageConfig } from './image-config.js'
import { openJournal, rollBackJournals } from './journal.js'
import { loadArchive } from './load.js'
import {
  checkTaggable,
  familiarString,
  formatReference,
  parseImageQuery,
  parseReference,
  withDefaultTag,
} from './reference.js'
import { saveArchive } from './save.js'
import type { ImageId, ImageInfo, LoadOptions, SaveOptions } from './types.js'

export interface ImageStoreOptions extends Omit<LayerStoreOptions, 'onWarning'> {
  /** Problems found while opening: the layer store's, and image records that were skipped. */
  readonly onWarning?: (code: string, message: string) => void
}

/** An image as this process holds it. */
export interface ImageRecord {
  readonly id: ImageId
  readonly config: Buffer
  readonly parsed: ImageConfig
  readonly chainIds: readonly ChainId[]
  /** The hold on the top layer (none for an image without layers). */
  pin: Layer | undefined
}

export interface RemoveResult {
  /** Names removed, in Docker's familiar form. */
  readonly untagged: string[]
  /** Images deleted. */
  readonly deleted: ImageId[]
  /** Layers deleted with them, child first. */
  readonly layers: LayerMetadata[]
}

export class ImageStore {
  readonly layers: LayerStore
  readonly #db: ImageDb
  readonly #lockPath: string
  readonly #images = new Map<ImageId, ImageRecord>()
  #refs = new Map<string, ImageId>()
  readonly #warn: (code: string, message: string) => void

  private constructor(layers: LayerStore, db: ImageDb, warn: (code: string, m: string) => void) {
    this.layers = layers
    this.#db = db
    this.#lockPath = join(layers.root, 'layerstore', 'image.lock')
    this.#warn = warn
  }

  /** Opens the layer store and the image records at `options.root`. */
  static async open(options: ImageStoreOptions): Promise<ImageStore> {
    const warn = options.onWarning ?? (() => undefined)
    const layers = await LayerStore.open({ ...options, onWarning: warn })
    const db = new ImageDb(layers.root, layers.driverName)
    await db.init()
    const store = new ImageStore(layers, db, warn)
    await store.#locked(async () => {
      await db.sweepTemporary()
      const used = new Set<string>()
      for (const r of store.#images.values()) for (const c of r.chainIds) used.add(c)
      await rollBackJournals(layers, used)
    })
    return store
  }

  // ---- reading ------------------------------------------------------------------------------

  /** Every image, by ID. */
  list(): ImageInfo[] {
    return [...this.#images.values()].map((r) => this.#info(r))
  }

  /** One image by reference or ID (prefix), with its configuration. */
  inspect(ref: string): ImageInfo & { readonly config: Record<string, unknown> } {
    const r = this.#images.get(this.resolve(ref))!
    return { ...this.#info(r), config: r.parsed.json }
  }

  /** The record of an image (its configuration bytes and chain), by reference or ID. */
  record(ref: string): ImageRecord {
    return this.#images.get(this.resolve(ref))!
  }

  /**
   * The image a reference names, as Docker resolves it: a full ID; a name (`busybox` is
   * `docker.io/library/busybox:latest`) or `name@sha256:…`; else a prefix of an image ID.
   */
  resolve(ref: string): ImageId {
    const q = parseImageQuery(ref) // Docker's lookup order: see reference.ts
    if (q.kind === 'id') {
      if (this.#images.has(q.id)) return q.id
      throw new ImageDoesNotExistError(`No such image: ${q.id}`)
    }
    // A name with both a tag and a digest is looked up by its digest.
    const key = formatReference(
      q.ref.digest === undefined
        ? q.ref
        : { name: q.ref.name, familiarName: q.ref.familiarName, digest: q.ref.digest },
    )
    const id = this.#refs.get(key)
    if (id !== undefined && this.#images.has(id)) return id
    if (q.idPrefix !== undefined) {
      const prefix = q.idPrefix
      const hits = [...this.#images.keys()].filter((i) => i.startsWith(prefix))
      if (hits.length === 1) return hits[0]!
      if (hits.length > 1)
        throw new ReferenceAmbiguousError(`image ID prefix ${ref} matches ${hits.length} images`)
    }
    throw new ImageDoesNotExistError(`No such image: ${familiarString(q.ref)}`)
  }

  // ---- changing -----------------------------------------------------------------------------

  /**
   * Loads the images of a docker-archive or OCI layout (a directory or a tar file): layers
   * first (those present are not read), each checked against the configuration's DiffIDs,
   * then the image records and names. Returns the loaded images.
   */
  async load(input: string, options: LoadOptions = {}): Promise<ImageInfo[]> {
    const ids = await loadArchive(input, options, {
      layers: this.layers,
      commit: (image, pin, tags) => this.#commitImage(image, pin, tags),
    })
    return ids.map((id) => this.#info(this.#images.get(id)!))
  }

  /** Writes images (by reference or ID) to `out`: a tar file or stream, or an OCI layout directory. */
  async save(
    refs: readonly string[],
    out: string | Writable,
    options: SaveOptions = {},
  ): Promise<void> {
    const picks = refs.map((ref) => {
      const id = this.resolve(ref)
      let tag: string | undefined
      try {
        const named = withDefaultTag(parseReference(ref))
        if (named.digest === undefined && this.#refs.get(formatReference(named)) === id)
          tag = formatReference(named)
      } catch {
        // an ID: saved without a name, as Docker does
      }
      return { record: this.#images.get(id)!, tag }
    })
    await saveArchive(picks, out, options, this.layers)
  }

  /**
   * Records an image from a configuration whose layers are in the store (a commit, a build)
   * and points `tags` (names, `:latest` by default) at it.
   */
  async create(config: Buffer, tags: readonly string[] = []): Promise<ImageInfo> {
    const parsed = parseImageConfig(config, 'configuration')
    const names = tags.map((t) => {
      const named = withDefaultTag(parseReference(t))
      checkTaggable(named)
      return formatReference(named)
    })
    const top = chainIds(parsed.diffIds).at(-1)
    const pin = top === undefined ? undefined : await this.layers.get(top)
    const id = `sha256:${createHash('sha256').update(config).digest('hex')}` as ImageId
    await this.#commitImage({ id, config }, pin, names)
    return this.#info(this.#images.get(id)!)
  }

  /** Points the name `target` at the image `source` names (Docker's `docker tag`). */
  async tag(source: string, target: string): Promise<void> {
    const named = withDefaultTag(parseReference(target))
    checkTaggable(named)
    await this.#locked(async () => {
      const id = this.resolve(source)
      this.#refs.set(formatReference(named), id)
      await this.#db.writeReferences(this.#refs)
    })
  }

  /**
   * Docker's `docker rmi`: a name is untagged, and the image deleted when no name is left; an
   * ID deletes the image with all its names, unless they span several repositories or a
   * read-write layer is made from the image (IMAGE_CONFLICT; `force` overrides). Layers that
   * nothing else holds are deleted with the image.
   */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<RemoveResult> {
    const force = options.force === true
    return this.#locked(async () => {
      const id = this.resolve(ref)
      const record = this.#images.get(id)!
      const names = [...this.#refs].filter(([, v]) => v === id).map(([k]) => k)
      let byName: string | undefined
      try {
        const full = formatReference(withDefaultTag(parseReference(ref)))
        if (this.#refs.get(full) === id) byName = full
      } catch {
        // not a name
      }
      const untag = byName !== undefined ? [byName] : names
      if (byName === undefined && !force) {
        const repos = new Set(names.map((n) => parseReference(n).name))
        if (repos.size > 1)
          throw new ImageConflictError(
            `conflict: unable to delete ${id} (must be forced) - image is referenced in multiple repositories`,
          )
      }
      const deleting = names.length === untag.length
      const top = record.chainIds.at(-1)
      if (deleting && !force && top !== undefined) {
        const users = this.layers.rwLayers().filter((rw) => rw.parent === top)
        if (users.length > 0)
          throw new ImageConflictError(
            `conflict: unable to delete ${id} (must be forced) - image is used by read-write layer ${users.map((u) => u.name).join(', ')}`,
          )
      }
      for (const n of untag) this.#refs.delete(n)
      await this.#db.writeReferences(this.#refs)
      const result: RemoveResult = {
        untagged: untag.map((n) => familiarString(parseReference(n))),
        deleted: [],
        layers: [],
      }
      if (!deleting) return result
      // Should this process die between the record and its layers, the next open deletes
      // the layers nobody uses, as it does for a load that died (see journal.ts).
      const journal = openJournal(this.layers.root, 'rm')
      try {
        journal.append(...record.chainIds.map((c) => `+ ${c}`))
        await this.#db.deleteImage(id)
        this.#images.delete(id)
        result.deleted.push(id)
        if (record.pin !== undefined) result.layers.push(...(await this.layers.release(record.pin)))
      } finally {
        journal.release()
      }
      return result
    })
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * Records a loaded image whose layers are in place (`pin` holds its top layer) and points
   * `tags` at it; the hold passes to the record (or is dropped when the image was there).
   */
  async #commitImage(
    image: { readonly id: ImageId; readonly config: Buffer },
    pin: Layer | undefined,
    tags: readonly string[],
  ): Promise<void> {
    await this.#locked(async () => {
      if (!this.#images.has(image.id)) {
        await this.#db.writeConfig(image.id, image.config)
        await this.#db.writeMetadata(image.id, 'lastUpdated', new Date().toISOString())
        const parsed = parseImageConfig(image.config, image.id)
        this.#images.set(image.id, {
          id: image.id,
          config: image.config,
          parsed,
          chainIds: chainIds(parsed.diffIds),
          pin,
        })
        pin = undefined
      }
      for (const t of tags) this.#refs.set(t, image.id) // a name moves to the new image
      if (tags.length > 0) await this.#db.writeReferences(this.#refs)
    })
    if (pin !== undefined) await this.layers.release(pin)
  }

  #info(r: ImageRecord): ImageInfo {
    const repoTags: string[] = []
    const repoDigests: string[] = []
    for (const [ref, id] of this.#refs) {
      if (id !== r.id) continue
      ;(ref.includes('@') ? repoDigests : repoTags).push(ref)
    }
    const top = r.chainIds.at(-1)
    return {
      id: r.id,
      repoTags: repoTags.sort(),
      repoDigests: repoDigests.sort(),
      diffIds: r.parsed.diffIds,
      layers: r.chainIds,
      size: top === undefined ? 0 : (this.layers.map().get(top)?.size ?? 0),
      ...(r.parsed.created !== undefined ? { created: r.parsed.created } : {}),
      os: r.parsed.os,
      architecture: r.parsed.architecture,
    }
  }

  /** Runs `fn` under the records' lock, with this process's view brought up to date. */
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.#lockPath, async () => {
      await this.#refresh()
      return fn()
    })
  }

  /** Brings the records in step with the disk: other processes may have changed them. */
  async #refresh(): Promise<void> {
    const configs = await this.#db.readConfigs(this.#warn, new Set(this.#images.keys()))
    for (const [id, r] of this.#images) {
      if (configs.has(id)) continue
      this.#images.delete(id) // deleted by another process
      if (r.pin !== undefined) this.layers.detach(r.pin)
    }
    for (const [id, config] of configs) {
      if (this.#images.has(id) || config === undefined) continue
      let parsed: ImageConfig
      try {
        parsed = parseImageConfig(config, `image ${id}`)
      } catch (err) {
        this.#warn('IMAGE_RECORD_SKIPPED', (err as Error).message)
        continue
      }
      const chain = chainIds(parsed.diffIds)
      const top = chain.at(-1)
      let pin: Layer | undefined
      if (top !== undefined) {
        try {
          pin = await this.layers.get(top)
        } catch (err) {
          if (!hasCode(err, 'LAYER_DOES_NOT_EXIST')) throw err
          // Docker skips such an image too ("Failed to restore image").
          this.#warn(
            'IMAGE_LAYERS_MISSING',
            `image ${id}: its top layer ${top} is not in the store`,
          )
          continue
        }
      }
      this.#images.set(id, { id, config, parsed, chainIds: chain, pin })
    }
    this.#refs = await this.#db.readReferences(this.#warn)
  }
}
