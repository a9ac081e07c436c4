/**
 * Where a hard link entry links from. A target inside the layer is used as it is; in overlay
 * form a target only a lower layer has is copied up first, as the kernel would on a write.
 * AUFS layers keep hard-linked inodes in `.wh..wh.plnk/`: those files are extracted aside
 * ({@link AufsLinkStore}) and linked from there.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import type { TarHeader } from '../tar/types.js'
import { copyUp } from './copy-up.js'
import { splitName, type Name } from './entry-name.js'
import { ArchiveError } from './errors.js'
import { isWhiteoutDevice, join, lstatOrUndefined, type LayerRoot } from './layer-root.js'

/** Host path of a hard link's target `target` (a clean name) for the entry `name`. */
export function linkSource(root: LayerRoot, overlay: boolean, target: string, name: Name): Buffer {
  const { dir, base } = splitName(target)
  const missing = (): ArchiveError =>
    new ArchiveError(
      'ARCHIVE_INVALID_ENTRY',
      `hard link target "${target}" does not exist`,
      name.full,
    )
  const parent = root.existingDir(dir)
  if (parent === undefined) throw missing()
  const baseRaw = Buffer.from(base, 'latin1')
  const host = join(parent.host, baseRaw)
  const st = lstatOrUndefined(host)
  if (st !== undefined && !(overlay && isWhiteoutDevice(st))) {
    if (st.isDirectory())
      throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'hard link to a directory', name.full)
    return host
  }
  if (st !== undefined) throw missing() // a whiteout of this layer
  // overlay2 keeps each layer in its own directory: a link to a lower layer's file needs
  // that file copied up first.
  const lower = root.lowerEntry(parent, baseRaw)
  if (lower === undefined) throw missing()
  if (lower.stat.isDirectory())
    throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'hard link to a directory', name.full)
  copyUp(lower.host, lower.stat, host)
  return host
}

/** AUFS hard-link store: `.wh..wh.plnk/<name>` files, extracted into a scratch directory. */
export class AufsLinkStore {
  readonly #target: Buffer
  #dir: Buffer | undefined
  readonly #headers = new Map<string, TarHeader>()

  /** `target`: the apply target, where the scratch directory is made. */
  constructor(target: Buffer) {
    this.#target = target
  }

  /** Where to extract the store's file `base`, described by `header`. */
  add(base: string, header: TarHeader): Buffer {
    this.#dir ??= Buffer.from(
      mkdtempSync(join(this.#target, Buffer.from('.layerstore-plnk-')).toString()),
    )
    this.#headers.set(base, header)
    return join(this.#dir, Buffer.from(base, 'latin1'))
  }

  /**
   * The extracted file a link to `.wh..wh.plnk/<base>` uses and the header describing its
   * inode; undefined when no store file was extracted at all (the link is an ordinary one).
   */
  source(base: string, entry: string): { host: Buffer; header: TarHeader } | undefined {
    if (this.#dir === undefined) return undefined
    const header = this.#headers.get(base)
    if (header === undefined)
      throw new ArchiveError('ARCHIVE_INVALID_ENTRY', 'invalid aufs hardlink', entry)
    return { host: join(this.#dir, Buffer.from(base, 'latin1')), header }
  }

  /** Removes the scratch directory. Idempotent. */
  remove(): void {
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true })
    this.#dir = undefined
  }
}
