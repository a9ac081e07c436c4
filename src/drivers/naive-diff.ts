/**
 * The diff half of a driver made from its directories: Docker's NaiveDiffDriver (SPEC.md
 * §5.2). A layer's changes are found by comparing its root with its parent's root (both
 * through get()), exported as a tar of those changes, and a diff is applied by unpacking it
 * into the layer's root with AUFS whiteouts applied by deletion.
 *
 * **The whole-second wait.** A diff records mtimes in whole seconds (Docker's format), and
 * changes() takes two mtimes in the same second as equal when either has no nanoseconds
 * (Docker's rule, which lets a copy with coarse times match its original). So: a container
 * writes `f` at 10.3 s; its diff is committed as a new layer, where `f` has mtime 10.0; a
 * container on that layer rewrites `f`, same size, at 10.7 s; 10.7 against 10.0 counts as
 * unchanged, and the edit is missing from that container's diff. Whiteouts at the epoch and
 * nanosecond comparisons do not help: the committed copy has lost its nanoseconds. Docker
 * sleeps until the next whole second after every diff with a parent. We wait only when it
 * matters, and for base layers too: the stream ends no earlier than the second after the
 * newest mtime among the exported non-directories (directory mtimes are never compared). A
 * diff of files last written a second or more ago ends at once.
 */
import { lstatSync } from 'node:fs'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { debuglog } from 'node:util'
import {
  changes,
  changesSize,
  exportChanges,
  exportTree,
  type ApplyOptions,
  type Change,
} from '../archive/index.js'
import { applyAll, layerApplier } from './layer-applier.js'
import type {
  ApplyDiffOptions,
  CreateOptions,
  DiffGetterDriver,
  Driver,
  DriverStatus,
  FileGetCloser,
  LayerApplier,
  ProtoDriver,
} from './types.js'

const debug = debuglog('layerstore:drivers')

/** Margin for file times, taken from a coarse kernel clock that may lag Date.now() a tick. */
const CLOCK_MARGIN_MS = 20

/** What applyDiff passes to archive's apply (the whiteout format is always `aufs`). */
export type NaiveApplyOptions = Omit<ApplyOptions, 'signal' | 'whiteoutFormat' | 'lowers'>

export interface NaiveDiffOptions {
  readonly apply?: NaiveApplyOptions
}

/** A proto driver that can also hand out a FileGetter over a layer's files. */
export interface ProtoDiffGetterDriver extends ProtoDriver {
  diffGetter(id: string): Promise<FileGetCloser>
}

function hasProtoDiffGetter(d: ProtoDriver): d is ProtoDiffGetterDriver {
  return typeof (d as Partial<ProtoDiffGetterDriver>).diffGetter === 'function'
}

/**
 * When a diff of `changes` in `dir` may end: the first millisecond of the second after the
 * newest mtime of an exported non-directory (plus a margin), or 0 when there is nothing to
 * wait for. Never later than the next second (as Docker): a file dated in the future cannot
 * be helped, and must not hold the diff until then. Nodes that cannot be lstat'ed are left
 * to the export to report.
 */
export function settleTime(dir: string, list: readonly Change[]): number {
  const root = Buffer.from(dir)
  let newest = -1n
  for (const c of list) {
    if (c.kind === 'D') continue
    const st = lstatSync(Buffer.concat([root, c.pathRaw]), {
      bigint: true,
      throwIfNoEntry: false,
    })
    if (st === undefined || st.isDirectory()) continue
    if (st.mtimeMs > newest) newest = st.mtimeMs
  }
  if (newest < 0n) return 0
  const nextSecond = (Math.floor(Date.now() / 1000) + 1) * 1000
  return Math.min(Number(newest / 1000n) * 1000 + 1000, nextSecond) + CLOCK_MARGIN_MS
}

/** `inner`, whose end is held back until `until` (ms since the epoch). */
export function endNoEarlierThan(inner: Readable, until: number): Readable {
  async function* hold(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of inner) yield chunk as Uint8Array
      const wait = until - Date.now()
      if (wait > 0) await sleep(wait)
    } finally {
      // Until the export has let go of the layer's files, the layer must stay in use.
      if (!inner.closed) await new Promise((resolve) => inner.once('close', resolve))
    }
  }
  return Readable.from(hold(), { objectMode: false })
}

/**
 * Wraps a ProtoDriver into a Driver by comparing directories (Docker's NaiveDiffDriver). A
 * proto driver with `diffGetter` gives a driver with `diffGetter` (see {@link naiveDiff}).
 */
export class NaiveDiffDriver implements Driver {
  protected readonly proto: ProtoDriver
  readonly #apply: NaiveApplyOptions

  constructor(proto: ProtoDriver, options: NaiveDiffOptions = {}) {
    this.proto = proto
    this.#apply = options.apply ?? {}
  }

  get name(): string {
    return this.proto.name
  }
  get home(): string {
    return this.proto.home
  }
  create(id: string, parent: string | undefined, options?: CreateOptions): Promise<void> {
    return this.proto.create(id, parent, options)
  }
  createReadWrite(id: string, parent: string | undefined, options?: CreateOptions): Promise<void> {
    return this.proto.createReadWrite(id, parent, options)
  }
  remove(id: string): Promise<void> {
    return this.proto.remove(id)
  }
  get(id: string, mountLabel?: string): Promise<string> {
    return this.proto.get(id, mountLabel)
  }
  put(id: string): Promise<void> {
    return this.proto.put(id)
  }
  exists(id: string): Promise<boolean> {
    return this.proto.exists(id)
  }
  status(): DriverStatus {
    return this.proto.status()
  }
  getMetadata(id: string): Promise<Record<string, string>> {
    return this.proto.getMetadata(id)
  }
  cleanup(): Promise<void> {
    return this.proto.cleanup()
  }
  ids(): Promise<string[]> {
    return this.proto.ids?.() ?? Promise.resolve([])
  }

  /** Runs `fn` on the roots of `id` and `parent` (when given), put() afterwards. */
  async #withRoots<T>(
    id: string,
    parent: string | undefined,
    fn: (root: string, parentRoot: string | undefined) => Promise<T>,
  ): Promise<T> {
    const root = await this.proto.get(id)
    try {
      if (parent === undefined) return await fn(root, undefined)
      const parentRoot = await this.proto.get(parent)
      try {
        return await fn(root, parentRoot)
      } finally {
        await this.proto.put(parent)
      }
    } finally {
      await this.proto.put(id)
    }
  }

  /**
   * A tar of the layer's changes against `parent`, or of its whole tree. The layers stay in
   * use (got) until the stream closes, by ending or by being destroyed; the stream ends no
   * earlier than the second after its newest file (see the file comment).
   */
  async diff(id: string, parent: string | undefined): Promise<Readable> {
    const root = await this.proto.get(id)
    let parentRoot: string | undefined
    let out: Readable
    try {
      if (parent !== undefined) parentRoot = await this.proto.get(parent)
      const list = await changes(root, parentRoot)
      const tar = parentRoot === undefined ? exportTree(root) : exportChanges(root, list)
      const until = settleTime(root, list)
      out = until > Date.now() ? endNoEarlierThan(tar, until) : tar
    } catch (err) {
      await this.#release(id, parentRoot === undefined ? undefined : parent)
      throw err
    }
    out.once('close', () => {
      void this.#release(id, parentRoot === undefined ? undefined : parent)
    })
    return out
  }

  async #release(id: string, parent: string | undefined): Promise<void> {
    for (const x of parent === undefined ? [id] : [id, parent]) {
      try {
        await this.proto.put(x)
      } catch (err) {
        debug('diff: put(%s) failed: %s', x, String(err))
      }
    }
  }

  changes(id: string, parent: string | undefined): Promise<Change[]> {
    return this.#withRoots(id, parent, (root, parentRoot) => changes(root, parentRoot))
  }

  /** Applies `tar` to the layer's root (`parent` is not used: the root already holds it). */
  async applyDiff(
    id: string,
    parent: string | undefined,
    tar: AsyncIterable<Uint8Array>,
    options: ApplyDiffOptions = {},
  ): Promise<number> {
    return applyAll(await this.applier(id, parent), tar, options.signal)
  }

  /** An applier on the layer's root, mounted (got) until it finishes or aborts. */
  async applier(id: string, _parent: string | undefined): Promise<LayerApplier> {
    const root = await this.proto.get(id)
    try {
      return layerApplier(
        root,
        { ...this.#apply, whiteoutFormat: 'aufs' },
        { release: () => this.proto.put(id) },
      )
    } catch (err) {
      await this.proto.put(id)
      throw err
    }
  }

  diffSize(id: string, parent: string | undefined): Promise<number> {
    return this.#withRoots(id, parent, async (root, parentRoot) =>
      changesSize(root, await changes(root, parentRoot)),
    )
  }
}

/** A naive-diff driver whose proto driver can hand out FileGetters. */
export class NaiveDiffGetterDriver extends NaiveDiffDriver implements DiffGetterDriver {
  readonly #getter: ProtoDiffGetterDriver

  constructor(proto: ProtoDiffGetterDriver, options: NaiveDiffOptions = {}) {
    super(proto, options)
    this.#getter = proto
  }

  diffGetter(id: string): Promise<FileGetCloser> {
    return this.#getter.diffGetter(id)
  }
}

/**
 * `proto` with the diff methods of Docker's NaiveDiffDriver. The result has `diffGetter`
 * exactly when `proto` has it, so `isDiffGetterDriver()` tells the truth.
 */
export function naiveDiff(
  proto: ProtoDiffGetterDriver,
  options?: NaiveDiffOptions,
): DiffGetterDriver
export function naiveDiff(proto: ProtoDriver, options?: NaiveDiffOptions): Driver
export function naiveDiff(proto: ProtoDriver, options: NaiveDiffOptions = {}): Driver {
  return hasProtoDiffGetter(proto)
    ? new NaiveDiffGetterDriver(proto, options)
    : new NaiveDiffDriver(proto, options)
}
