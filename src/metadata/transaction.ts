/**
 * A layer record in the making: Docker's fileMetadataTransaction on an atomic write set, made
 * crash-safe. The setters keep values in memory; `commit` writes the files into the write set
 * (`tmp/write-set-*`), fsyncs each of them and the write set, renames it to `sha256/<hex>` and
 * fsyncs `sha256/` and `tmp/`. The record is visible only after the rename, complete.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import { digestHex, isDigest, parseChainId, type ChainId, type DiffId } from '../digest/digest.js'
import { crashPoint } from './crash-points.js'
import { MetadataCorruptError, MetadataExistsError, withIo } from './errors.js'
import {
  ensureDir,
  errnoOf,
  pathExists,
  fsyncPath,
  fsyncTree,
  goJson,
  pathComponentProblem,
  writeExact,
} from './files.js'
import type { Layout } from './layout.js'
import type { LockedDir } from './locked-dir.js'
import type { Quarantined } from './types.js'

/** Name of the tar-split file in a layer record. */
export const TAR_SPLIT_FILE = 'tar-split.json.gz'

/** Options of {@link LayerTransaction.commit}. */
export interface CommitOptions {
  /**
   * When `sha256/<hex>` exists but cannot be read (METADATA_CORRUPT), move it to quarantine and
   * commit in its place. A readable record is never replaced: METADATA_EXISTS.
   */
  readonly replaceDamaged?: boolean
}

/** What the layer database does for a transaction (implemented by LayerDb). */
export interface TransactionHost {
  readonly layout: Layout
  /** Throws METADATA_CORRUPT when the record cannot be read. */
  readLayer(chainId: ChainId): Promise<unknown>
  quarantine(kind: 'layer', name: string, reason: string): Promise<Quarantined>
}

export class LayerTransaction implements AsyncDisposable {
  readonly #host: TransactionHost
  readonly #dir: LockedDir
  readonly #files = new Map<string, string>()
  #tarSplit: WriteStream | undefined
  #state: 'open' | 'committed' | 'cancelled' = 'open'

  /** @internal Use `LayerDb.begin()`. */
  constructor(host: TransactionHost, dir: LockedDir) {
    this.#host = host
    this.#dir = dir
  }

  /** The write set's directory (`tmp/write-set-*`; `sha256/<hex>` once committed). */
  get path(): string {
    return this.#dir.path
  }

  /** Where the tar-split metadata goes if written by path (`tarSplitStream()` writes it too). */
  get tarSplitPath(): string {
    return join(this.#dir.path, TAR_SPLIT_FILE)
  }

  /** The `diff` file: the DiffID. */
  setDiffId(diffId: DiffId): void {
    if (!isDigest(diffId))
      throw new TypeError(`Cannot set diff: "${String(diffId)}" is not a digest`)
    this.#set('diff', diffId)
  }

  /** The `size` file, in decimal. */
  setSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0)
      throw new RangeError(`Cannot set size: ${size} is not a non-negative integer`)
    this.#set('size', String(size))
  }

  /** The `cache-id` file: the driver's id of the layer data, one path component. */
  setCacheId(cacheId: string): void {
    const why = pathComponentProblem(cacheId)
    if (why !== undefined || cacheId.trim() !== cacheId)
      throw new TypeError(`Cannot set cache id "${cacheId}": ${why ?? 'surrounding whitespace'}`)
    this.#set('cache-id', cacheId)
  }

  /** The `parent` file: the parent's ChainID (base layers have none). */
  setParent(parent: ChainId): void {
    if (!isDigest(parent))
      throw new TypeError(`Cannot set parent: "${String(parent)}" is not a digest`)
    this.#set('parent', parent)
  }

  /** `descriptor.json`, written as Go's json.Marshal would (compact, HTML characters escaped). */
  setDescriptor(descriptor: Readonly<Record<string, unknown>>): void {
    if (typeof descriptor !== 'object' || Array.isArray(descriptor))
      throw new TypeError('Cannot set descriptor: not an object')
    this.#set('descriptor.json', goJson(descriptor))
  }

  /**
   * A stream into `tar-split.json.gz` (mode 0644), for bytes that are already gzipped (a
   * tar-split packer's output). End it before `commit`; commit fsyncs it.
   */
  tarSplitStream(): Writable {
    this.#assertOpen()
    if (this.#tarSplit !== undefined) throw new TypeError('Cannot open tar-split twice')
    this.#tarSplit = createWriteStream(this.tarSplitPath, { mode: 0o644, flags: 'w' })
    return this.#tarSplit
  }

  /**
   * Makes the record visible as `sha256/<hex of chainId>`. `diff`, `size` and `cache-id` must
   * have been set, and the tar-split stream (if any) ended. Returns the record a
   * `replaceDamaged` commit moved to quarantine, if any.
   */
  async commit(chainId: ChainId, options: CommitOptions = {}): Promise<Quarantined | undefined> {
    this.#assertOpen()
    parseChainId(chainId)
    for (const name of ['diff', 'size', 'cache-id'])
      if (!this.#files.has(name)) throw new TypeError(`Cannot commit layer ${chainId}: no ${name}`)
    const ts = this.#tarSplit
    if (ts !== undefined && !ts.writableFinished)
      throw new TypeError(`Cannot commit layer ${chainId}: the tar-split stream is not finished`)
    const { layout } = this.#host
    const hex = digestHex(chainId)
    const target = join(layout.sha256, hex)
    return withIo(`commit layer ${chainId}`, async () => {
      if (ts !== undefined) await new Promise<void>((r) => (ts.closed ? r() : ts.once('close', r)))
      const dir = this.#dir.path
      for (const [name, text] of this.#files) await writeExact(join(dir, name), text)
      crashPoint('commit:written')
      await fsyncTree(dir)
      crashPoint('commit:synced')
      await ensureDir(layout.sha256, 0o755)
      let replaced: Quarantined | undefined
      try {
        await rename(dir, target)
      } catch (err) {
        // POSIX rename replaces an empty directory; a non-empty one or a file refuses.
        const code = errnoOf(err)
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw err
        if (!(await pathExists(target).catch(() => false))) throw err // sha256 is no directory
        replaced = await this.#replace(chainId, target, options, err)
        await rename(dir, target)
      }
      this.#dir.movedTo(target)
      this.#state = 'committed'
      crashPoint('commit:renamed')
      // The record is visible now: the commit has happened, whatever follows. A failure to
      // sync the directories is not reported as a failed commit, or the caller would remove
      // the layer's data under a visible record; at worst a power cut undoes the rename and
      // leaves data that no record names, which the store's sweep removes.
      await Promise.allSettled([fsyncPath(layout.sha256), fsyncPath(layout.tmp)])
      await this.#dir.release().catch(() => undefined)
      return replaced
    })
  }

  /** Removes the write set (idempotent; nothing to do after commit). */
  async cancel(): Promise<void> {
    if (this.#state !== 'open') return
    this.#state = 'cancelled'
    const ts = this.#tarSplit
    if (ts !== undefined && !ts.closed) {
      const closed = new Promise<void>((r) => ts.once('close', r))
      ts.destroy()
      await closed
    }
    await this.#dir.remove()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.cancel()
  }

  #set(name: string, text: string): void {
    this.#assertOpen()
    this.#files.set(name, text)
  }

  #assertOpen(): void {
    if (this.#state !== 'open') throw new TypeError(`Cannot use a ${this.#state} transaction`)
  }

  /** The target exists: quarantine it if it is damaged and the caller asked for that. */
  async #replace(
    chainId: ChainId,
    target: string,
    options: CommitOptions,
    cause: unknown,
  ): Promise<Quarantined> {
    if (options.replaceDamaged === true) {
      try {
        await this.#host.readLayer(chainId)
      } catch (err) {
        if (err instanceof MetadataCorruptError)
          return this.#host.quarantine('layer', digestHex(chainId), err.reason)
        throw err
      }
    }
    throw new MetadataExistsError('layer', chainId, target, { cause })
  }
}
