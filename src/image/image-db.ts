/**
 * Docker's image records on disk (its `image/fs.go` and `reference/store.go`), under
 * `<root>/image/<driver>/`:
 * - `imagedb/content/sha256/<hex>`: an image's configuration, the exact bytes; the file name
 *   is their sha256 (the image ID).
 * - `imagedb/metadata/sha256/<hex>/`: per-image extras (`lastUpdated`, `parent`).
 * - `repositories.json`: `{"Repositories":{"busybox":{"busybox:latest":"sha256:…"}}}`, names
 *   in Docker's familiar form.
 * Every file is replaced whole (written beside, synced, renamed, directory synced), so a crash
 * leaves the old or the new content. A dockerd started on the root reads the same files.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, rename, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { digestFromHex, digestHex } from '../digest/digest.js'
import { ensureDir, errnoOf, fsyncPath, goJson, writeExact } from '../metadata/files.js'
import { familiarString, formatReference, parseReference } from './reference.js'
import type { ImageId, ImageWarningCode } from './types.js'

/** Configurations above this are refused (Docker reads them whole too). */
export const MAX_CONFIG_SIZE = 8 << 20
/** repositories.json above this is refused. */
const MAX_REPOSITORIES_SIZE = 64 << 20

/** What reading the records may warn about. */
export type ImageDbWarningCode = Exclude<ImageWarningCode, 'IMAGE_LAYERS_MISSING'>

export class ImageDb {
  /** `<root>/image/<driver>` */
  readonly dir: string
  readonly #content: string
  readonly #metadata: string
  readonly #repositories: string

  constructor(root: string, driverName: string) {
    this.dir = join(root, 'image', driverName)
    this.#content = join(this.dir, 'imagedb', 'content', 'sha256')
    this.#metadata = join(this.dir, 'imagedb', 'metadata', 'sha256')
    this.#repositories = join(this.dir, 'repositories.json')
  }

  /** Creates the directories. */
  async init(): Promise<void> {
    await ensureDir(this.#content, 0o700)
    await ensureDir(this.#metadata, 0o700)
  }

  /**
   * Removes what an interrupted replaceFile left, metadata included. Only under the records'
   * lock: another process's temporary file is a write in progress.
   */
  async sweepTemporary(): Promise<void> {
    const dirs = [this.#content, this.dir]
    for (const hex of await readdir(this.#metadata)) dirs.push(join(this.#metadata, hex))
    for (const dir of dirs) {
      for (const name of await readdir(dir).catch(() => [])) {
        if (name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => undefined)
      }
    }
  }

  /**
   * Every image's configuration, verified against its name; bad ones are reported and
   * skipped. Images in `known` are listed without being read again (value undefined).
   */
  async readConfigs(
    onWarning: (code: ImageDbWarningCode, message: string) => void,
    known: ReadonlySet<ImageId> = new Set(),
  ): Promise<Map<ImageId, Buffer | undefined>> {
    const out = new Map<ImageId, Buffer | undefined>()
    for (const name of await readdir(this.#content)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue // our own temporary files, or strangers
      const id = digestFromHex(name)
      if (known.has(id)) {
        out.set(id, undefined)
        continue
      }
      try {
        const bytes = await readFile(join(this.#content, name))
        const actual = createHash('sha256').update(bytes).digest('hex')
        if (actual !== name) {
          onWarning('IMAGE_RECORD_SKIPPED', `image ${id}: its configuration hashes to ${actual}`)
          continue
        }
        out.set(id, bytes)
      } catch (err) {
        onWarning('IMAGE_RECORD_SKIPPED', `image ${id}: ${(err as Error).message}`)
      }
    }
    return out
  }

  /** Records a configuration under its ID (idempotent). */
  async writeConfig(id: ImageId, config: Uint8Array): Promise<void> {
    await replaceFile(join(this.#content, digestHex(id)), config)
  }

  async writeMetadata(id: ImageId, key: 'lastUpdated' | 'parent', value: string): Promise<void> {
    const dir = join(this.#metadata, digestHex(id))
    await ensureDir(dir, 0o700)
    await replaceFile(join(dir, key), value)
  }

  /** Deletes an image's configuration and metadata; a missing record is not an error. */
  async deleteImage(id: ImageId): Promise<void> {
    // Metadata first, as Docker does: a crash in between leaves an image without its extras,
    // not extras without an image that nothing would ever delete.
    await rm(join(this.#metadata, digestHex(id)), { recursive: true, force: true })
    await unlink(join(this.#content, digestHex(id))).catch((err: unknown) => {
      if (errnoOf(err) !== 'ENOENT') throw err
    })
    await fsyncPath(this.#content)
  }

  /**
   * The names: fully qualified reference (`docker.io/library/busybox:latest`,
   * `…@sha256:…`) → image ID. A missing file is an empty map.
   */
  async readReferences(
    onWarning: (code: ImageDbWarningCode, message: string) => void,
  ): Promise<Map<string, ImageId>> {
    let text: string
    try {
      const bytes = await readFile(this.#repositories)
      if (bytes.length > MAX_REPOSITORIES_SIZE) throw new Error('repositories.json is too large')
      text = bytes.toString('utf8')
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return new Map()
      throw err
    }
    const out = new Map<string, ImageId>()
    const repos = (JSON.parse(text) as { Repositories?: unknown }).Repositories
    if (repos === null || typeof repos !== 'object') return out
    for (const refs of Object.values(repos as Record<string, unknown>)) {
      if (refs === null || typeof refs !== 'object') continue
      for (const [ref, id] of Object.entries(refs as Record<string, unknown>)) {
        try {
          if (typeof id !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(id))
            throw new Error(`bad image ID ${JSON.stringify(id)}`)
          out.set(formatReference(parseReference(ref)), id as ImageId)
        } catch (err) {
          onWarning('IMAGE_REFERENCE_SKIPPED', `${ref}: ${(err as Error).message}`)
        }
      }
    }
    return out
  }

  /** Replaces repositories.json with `refs` (grouped by familiar name, keys sorted as Go does). */
  async writeReferences(refs: ReadonlyMap<string, ImageId>): Promise<void> {
    const repos: Record<string, Record<string, string>> = {}
    for (const [full, id] of [...refs].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const ref = parseReference(full)
      ;(repos[ref.familiarName] ??= {})[familiarString(ref)] = id
    }
    const sorted = Object.fromEntries(
      Object.keys(repos)
        .sort()
        .map((k) => [k, repos[k]]),
    )
    await replaceFile(this.#repositories, goJson({ Repositories: sorted }))
  }
}

/** Writes `path` whole: beside it, synced, renamed over it, its directory synced. */
async function replaceFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeExact(tmp, data)
    await fsyncPath(tmp)
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fsyncPath(join(path, '..'))
}
