/**
 * overlay2's directories and mounts (Docker's layout, see ../overlay2.ts): create, remove,
 * get/put (mounts counted in ./mounts.ts), the short links, the feature test at open.
 */
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join, resolve } from 'node:path'
import { settle } from '../../internal/settle.js'
import { checkId } from '../driver-id.js'
import {
  DriverError,
  DriverIoError,
  DriverLayerExistsError,
  DriverLayerNotFoundError,
  DriverNotSupportedError,
} from '../errors.js'
import type { ProtoDiffGetterDriver } from '../naive-diff.js'
import { removeAll } from '../remove-all.js'
import { checkStorageOptions } from '../storage-options.js'
import type { CreateOptions, DriverStatus, FileGetCloser } from '../types.js'
import { writeAtomic } from '../write-atomic.js'
import { checkFeatures, OVERLAY2, type OverlayFeatures } from './features.js'
import { Overlay2FileGetter } from './file-getter.js'
import { isLinkId, newLinkId } from './link-id.js'
import { isMountpoint, OverlayMounts } from './mounts.js'

/** Lowers a mount may have (Docker's limit; 125 image layers + init + the layer itself fit). */
export const MAX_LOWERS = 128

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err)

export class Overlay2ProtoDriver implements ProtoDiffGetterDriver {
  readonly name = OVERLAY2
  readonly home: string
  readonly features: OverlayFeatures
  readonly #links: string
  readonly #mounts: OverlayMounts

  private constructor(home: string, features: OverlayFeatures) {
    this.home = home
    this.features = features
    this.#links = join(home, 'l')
    this.#mounts = new OverlayMounts(home, features.optionPrefix)
  }

  /**
   * Creates `<root>/overlay2` (0710) and `l/` (0700) if needed and tests the kernel:
   * DRIVER_NOT_SUPPORTED when overlay mounts or d_type are missing.
   */
  static async open(root: string): Promise<Overlay2ProtoDriver> {
    if (process.getuid?.() !== 0)
      throw new DriverNotSupportedError(OVERLAY2, 'mounting overlayfs needs root')
    const home = join(resolve(root), OVERLAY2)
    let made: string | undefined
    try {
      made = mkdirSync(home, { recursive: true, mode: 0o710 })
      if (made !== undefined) chmodSync(home, 0o710)
      mkdirSync(join(home, 'l'), { mode: 0o700, recursive: true })
    } catch (err) {
      throw new DriverIoError(`Cannot create the overlay2 home (${code(err)})`, home, {
        cause: err,
      })
    }
    let features: OverlayFeatures
    try {
      features = await checkFeatures(home)
    } catch (err) {
      if (made !== undefined) await removeAll(home).catch(() => undefined) // leave no trace
      throw err
    }
    const driver = new Overlay2ProtoDriver(home, features)
    driver.#pruneLinks()
    return driver
  }

  #dir(id: string, what = 'id'): string {
    checkId(id, what)
    return join(this.home, id)
  }

  /** The layer's directory; DRIVER_LAYER_NOT_FOUND unless it has a diff/. */
  #existing(id: string, what = 'id'): string {
    const dir = this.#dir(id, what)
    let ok: boolean
    try {
      ok = lstatSync(join(dir, 'diff'), { throwIfNoEntry: false })?.isDirectory() ?? false
    } catch (err) {
      throw new DriverIoError(`Cannot read layer (${code(err)})`, dir, { cause: err })
    }
    if (!ok) throw new DriverLayerNotFoundError(id, `"${dir}" is not a layer directory`)
    return dir
  }

  /** The `lower` file's entries (`l/<LINK>`, top first); none for a base layer. */
  lowers(id: string): string[] {
    let text: string
    try {
      text = readFileSync(join(this.#existing(id), 'lower'), 'latin1')
    } catch (err) {
      if (code(err) === 'ENOENT') return []
      if (err instanceof DriverLayerNotFoundError) throw err
      throw new DriverIoError(`Cannot read layer (${code(err)})`, this.#dir(id), { cause: err })
    }
    return text.trim() === '' ? [] : text.trim().split(':')
  }

  /** The diff directories of the layer's lowers, absolute, top first. */
  lowerDiffs(id: string): string[] {
    return this.lowers(id).map((l) => this.#resolveLower(l))
  }

  #resolveLower(lower: string): string {
    const link = join(this.home, lower)
    try {
      return resolve(join(link, '..'), readlinkSync(link))
    } catch (err) {
      throw new DriverIoError(`Cannot resolve lower layer link (${code(err)})`, link, {
        cause: err,
      })
    }
  }

  diffDir(id: string): string {
    return join(this.#existing(id), 'diff')
  }

  /** Docker's isParent: `parent`'s diff is the layer's first lower (no lower: no parent). */
  isParent(id: string, parent: string | undefined): boolean {
    const lowers = this.lowers(id)
    if (parent === undefined) return lowers.length === 0
    return lowers.length > 0 && this.#resolveLower(lowers[0]!) === this.diffDir(parent)
  }

  async create(id: string, parent: string | undefined, options: CreateOptions = {}): Promise<void> {
    checkStorageOptions(this.name, id, options, false)
    await this.#create(id, parent)
  }

  async createReadWrite(
    id: string,
    parent: string | undefined,
    options: CreateOptions = {},
  ): Promise<void> {
    checkStorageOptions(this.name, id, options, true)
    await this.#create(id, parent)
  }

  async #create(id: string, parent: string | undefined): Promise<void> {
    const dir = this.#dir(id)
    let lower: string | undefined
    let parentDir: string | undefined
    if (parent !== undefined) {
      parentDir = this.#existing(parent, 'parent id')
      const link = this.#readLink(parentDir)
      const lowers = [`l/${link}`, ...this.lowers(parent)]
      if (lowers.length > MAX_LOWERS)
        throw new DriverError(
          'DRIVER_INVALID_OPTION',
          `Cannot create layer "${id}": max depth exceeded (${lowers.length} lowers, at most ${MAX_LOWERS})`,
        )
      lower = lowers.join(':')
    }
    try {
      mkdirSync(dir, 0o710)
    } catch (err) {
      if (code(err) === 'EEXIST') throw new DriverLayerExistsError(id, { cause: err })
      throw new DriverIoError(`Cannot create layer (${code(err)})`, dir, { cause: err })
    }
    try {
      chmodSync(dir, 0o710) // mkdir's mode went through the umask
      mkdirSync(join(dir, 'diff'))
      chmodSync(join(dir, 'diff'), 0o755)
      // The name first: a crash before the link leaves nothing remove() cannot find.
      const link = newLinkId()
      writeAtomic(join(dir, 'link'), link, 0o644)
      symlinkSync(`../${id}/diff`, join(this.#links, link))
      if (lower === undefined || parentDir === undefined) return
      mkdirSync(join(dir, 'work'), 0o700)
      writeAtomic(join(dir, 'lower'), lower, 0o644)
      writeFileSync(join(parentDir, 'committed'), '', { mode: 0o600 })
    } catch (err) {
      await this.remove(id).catch(() => undefined)
      throw new DriverIoError(`Cannot create layer (${code(err)})`, dir, { cause: err })
    }
  }

  #readLink(dir: string): string {
    let link: string
    try {
      link = readFileSync(join(dir, 'link'), 'latin1').trim()
    } catch (err) {
      throw new DriverIoError(`Cannot read layer link (${code(err)})`, dir, { cause: err })
    }
    if (!isLinkId(link))
      throw new DriverIoError(`Cannot use layer: its link ${JSON.stringify(link)} is invalid`, dir)
    return link
  }

  /** Unmounts the layer if mounted, deletes its short link and its directory. */
  async remove(id: string): Promise<void> {
    const dir = this.#dir(id)
    if (lstatSync(dir, { throwIfNoEntry: false }) === undefined) return
    if (isMountpoint(join(dir, 'merged'))) await this.#mounts.release(id)
    let link: string | undefined
    try {
      link = readFileSync(join(dir, 'link'), 'latin1').trim()
    } catch {
      link = undefined // never written (a crash while creating): no link to remove
    }
    if (link !== undefined && isLinkId(link)) rmSync(join(this.#links, link), { force: true })
    await removeAll(dir)
  }

  /** The layer's root: its diff/ without lowers, else its mount (counted). */
  async get(id: string, _mountLabel?: string): Promise<string> {
    const dir = this.#existing(id)
    const lowers = this.lowers(id)
    if (lowers.length === 0) return join(dir, 'diff')
    const readonly = lstatSync(join(dir, 'committed'), { throwIfNoEntry: false }) !== undefined
    return this.#mounts.get({ id, lowers, readonly })
  }

  async put(id: string): Promise<void> {
    const dir = this.#dir(id)
    if (lstatSync(join(dir, 'lower'), { throwIfNoEntry: false }) === undefined) return
    await this.#mounts.put(id)
  }

  exists(id: string): Promise<boolean> {
    return settle(
      () =>
        lstatSync(join(this.#dir(id), 'diff'), { throwIfNoEntry: false })?.isDirectory() ?? false,
    )
  }

  status(): DriverStatus {
    const f = this.features
    return [
      ['Backing Filesystem', f.backingFs],
      ['Supports d_type', 'true'],
      ['Using metacopy', String(f.metacopy)],
      ['Native Overlay Diff', String(f.nativeDiff)],
      ['userxattr', 'false'],
    ]
  }

  getMetadata(id: string): Promise<Record<string, string>> {
    return settle(() => {
      const dir = this.#existing(id)
      const meta: Record<string, string> = {
        WorkDir: join(dir, 'work'),
        MergedDir: join(dir, 'merged'),
        UpperDir: join(dir, 'diff'),
      }
      const lowers = this.lowerDiffs(id)
      if (lowers.length > 0) meta['LowerDir'] = lowers.join(':')
      return meta
    })
  }

  /**
   * Unmounts every layer (Docker's Cleanup at daemon shutdown) and drops short links whose
   * layer is gone.
   */
  async cleanup(): Promise<void> {
    for (const id of await this.ids()) {
      if (isMountpoint(join(this.home, id, 'merged'))) await this.#mounts.release(id)
    }
    this.#pruneLinks()
  }

  /** Every layer directory's id (`l/` is not a layer). */
  ids(): Promise<string[]> {
    return settle(() => readdirSync(this.home).filter((n) => n !== 'l'))
  }

  diffGetter(id: string): Promise<FileGetCloser> {
    return settle(
      () =>
        new Overlay2FileGetter(
          this.diffDir(id),
          () => this.get(id),
          () => this.put(id),
        ),
    )
  }

  /** Short links whose layer is gone (a crash inside remove()). */
  #pruneLinks(): void {
    for (const name of readdirSync(this.#links)) {
      const link = join(this.#links, name)
      if (lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() !== true) continue
      try {
        lstatSync(resolve(this.#links, readlinkSync(link)))
      } catch (err) {
        if (code(err) === 'ENOENT') unlinkSync(link)
      }
    }
  }
}
