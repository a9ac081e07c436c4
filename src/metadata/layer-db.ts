/**
 * The layerdb of one store root and driver: `<root>/image/<driver>/layerdb` (SPEC.md §3),
 * read and written exactly as Docker's fileMetadataStore does, made crash-safe:
 *
 * - a layer record becomes visible by one rename of a complete, fsynced write set, and
 *   `sha256/` is fsynced after it ({@link LayerTransaction});
 * - a deletion renames the record `-removing` first; any rename failure but a collision is
 *   thrown, so driver data is never removed under a visible record;
 * - mount records are written and removed through write sets too (mounts.ts);
 * - opening sweeps what crashed processes left in `tmp/` (Docker never does).
 *
 * Several processes may share one root. The layer store serialises every change of the
 * layerdb, and `open()`, under its exclusive kernel lock (internal/lock.ts); this class
 * assumes it and keeps no lock of its own for records. Transactions may run outside that
 * lock (a layer's tar is split while it is extracted): their write sets are locked
 * (flock on the directory), and the sweep of another process's `open()` skips them.
 *
 * Reading a record never follows its parent: walking chains (and detecting cycles) is the
 * store's job. A record that cannot be read raises METADATA_CORRUPT; the caller decides when
 * to `quarantine()` it.
 */
import { readdir, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { digestFromHex, digestHex, parseChainId, type ChainId } from '../digest/digest.js'
import {
  asIoError,
  InvalidNameError,
  MetadataCorruptError,
  MetadataNotFoundError,
  withIo,
  type RecordKind,
} from './errors.js'
import {
  ensureDir,
  errnoOf,
  openRegular,
  ParseError,
  pathComponentProblem,
  pathExists,
} from './files.js'
import { layoutOf, WRITE_SET_PREFIX, type Layout } from './layout.js'
import { LockedDir } from './locked-dir.js'
import { removeMountRecord, writeMountRecord, type WriteMountOptions } from './mounts.js'
import { checkMountName, readLayerRecord, readMountRecord } from './read-record.js'
import { beginRemoveLayer, finishRemoveLayer, listOrphans } from './removal.js'
import { quarantineRecord } from './quarantine.js'
import { sweep } from './sweep.js'
import { LayerTransaction, TAR_SPLIT_FILE, type TransactionHost } from './transaction.js'
import type {
  LayerDbList,
  LayerRecord,
  MountRecord,
  Orphan,
  Quarantined,
  SweepReport,
} from './types.js'

export class LayerDb implements TransactionHost {
  /** `<root>/image/<driver>/layerdb` */
  readonly root: string
  readonly layout: Layout
  /** What `open()` cleaned up. */
  readonly swept: SweepReport

  private constructor(layout: Layout, swept: SweepReport) {
    this.root = layout.root
    this.layout = layout
    this.swept = swept
  }

  /** Where the layerdb of `driver` lives under a store root. */
  static pathOf(root: string, driver: string): string {
    const why = pathComponentProblem(driver)
    if (why !== undefined) throw new InvalidNameError('driver name', driver, why)
    return join(root, 'image', driver, 'layerdb')
  }

  /** Opens (creating it if needed) the layerdb of `driver` under the store root `root`. */
  static async open(root: string, driver: string): Promise<LayerDb> {
    return LayerDb.openAt(LayerDb.pathOf(root, driver))
  }

  /**
   * Opens the layerdb at `path`: creates it (0700) with `sha256/`, `mounts/` and `tmp/` (0755)
   * if missing, then sweeps `tmp/` and half-deleted `-removing` directories. Call it under the
   * store's exclusive lock.
   */
  static async openAt(path: string): Promise<LayerDb> {
    const layout = layoutOf(path)
    return withIo(`open layerdb "${path}"`, async () => {
      await ensureDir(layout.root, 0o700)
      for (const dir of [layout.sha256, layout.mounts, layout.tmp]) await ensureDir(dir, 0o755)
      return new LayerDb(layout, await sweep(layout))
    })
  }

  // ---- reading ------------------------------------------------------------------------------

  /** The records present: `sha256/<64 hex>` directories and `mounts/` directories. */
  async list(): Promise<LayerDbList> {
    return withIo('list layerdb', async () => {
      const layers = (await dirNames(this.layout.sha256))
        .filter((n) => /^[0-9a-f]{64}$/.test(n))
        .map((n) => digestFromHex(n) as ChainId)
      const mounts = await dirNames(this.layout.mounts)
      return { layers, mounts }
    })
  }

  /** `sha256/<hex>/`, parsed (METADATA_NOT_FOUND, METADATA_CORRUPT). */
  async readLayer(chainId: ChainId): Promise<LayerRecord> {
    return withIo(`read layer ${chainId}`, () => readLayerRecord(this.layout, chainId))
  }

  /** `mounts/<name>/`, parsed (METADATA_NOT_FOUND, METADATA_CORRUPT, METADATA_INVALID_NAME). */
  async readMount(name: string): Promise<MountRecord> {
    return withIo(`read mount "${name}"`, () => readMountRecord(this.layout, name))
  }

  /** The directory of a layer record. */
  layerPath(chainId: ChainId): string {
    return join(this.layout.sha256, digestHex(parseChainId(chainId)))
  }

  /** The directory of a mount record. */
  mountPath(name: string): string {
    checkMountName(name)
    return join(this.layout.mounts, name)
  }

  /** `sha256/<hex>/tar-split.json.gz` (gzipped tar-split JSON lines, SPEC.md §4). */
  tarSplitPath(chainId: ChainId): string {
    return join(this.layerPath(chainId), TAR_SPLIT_FILE)
  }

  /**
   * The raw (gzipped) bytes of a layer's tar-split file. The stream fails with
   * METADATA_NOT_FOUND when the layer has no record, METADATA_CORRUPT when the record has no
   * tar-split file (Docker loads such a layer; only its tar stream fails).
   */
  openTarSplit(chainId: ChainId): Readable {
    const path = this.tarSplitPath(chainId)
    const hex = digestHex(chainId)
    const dir = this.layerPath(chainId)
    async function* chunks(): AsyncGenerator<Buffer> {
      let fh: FileHandle
      try {
        fh = await openRegular(path)
      } catch (err) {
        if (err instanceof ParseError)
          throw new MetadataCorruptError('layer', hex, path, `${TAR_SPLIT_FILE}: ${err.message}`)
        if (errnoOf(err) !== 'ENOENT') throw asIoError(`open tar-split of ${chainId}`, err)
        if (!(await pathExists(dir))) throw new MetadataNotFoundError('layer', hex, dir)
        throw new MetadataCorruptError('layer', hex, path, `${TAR_SPLIT_FILE}: missing`)
      }
      try {
        for (;;) {
          const buf = Buffer.allocUnsafe(64 << 10)
          const { bytesRead } = await fh.read(buf, 0, buf.length, null)
          if (bytesRead === 0) return
          yield buf.subarray(0, bytesRead)
        }
      } catch (err) {
        throw asIoError(`read tar-split of ${chainId}`, err)
      } finally {
        await fh.close()
      }
    }
    return Readable.from(chunks(), { objectMode: false })
  }

  // ---- writing layers -----------------------------------------------------------------------

  /** Starts a layer record in `tmp/write-set-*` (0700). Dispose it to cancel unless committed. */
  async begin(): Promise<LayerTransaction> {
    return withIo('start a layer transaction', async () => {
      let dir: LockedDir
      try {
        dir = await LockedDir.create(this.layout.tmp, WRITE_SET_PREFIX)
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw err
        await ensureDir(this.layout.tmp, 0o755)
        dir = await LockedDir.create(this.layout.tmp, WRITE_SET_PREFIX)
      }
      return new LayerTransaction(this, dir)
    })
  }

  // ---- deleting layers ----------------------------------------------------------------------

  /**
   * Renames `sha256/<hex>` to `sha256/<hex>-<64 random hex>-removing` and syncs `sha256/`.
   * After it, the layer is gone for every reader; its driver data may be removed, then
   * `finishRemove`. METADATA_NOT_FOUND when there is no record; METADATA_CORRUPT when it has
   * no usable cache id (nothing is renamed then); METADATA_IO_FAILED for any rename failure.
   */
  async beginRemove(chainId: ChainId): Promise<Orphan> {
    return withIo(`remove layer ${chainId}`, () => beginRemoveLayer(this.layout, chainId))
  }

  /** Removes an orphan's directory (idempotent). */
  async finishRemove(orphan: Orphan): Promise<void> {
    return withIo(`remove "${orphan.dirName}"`, () => finishRemoveLayer(this.layout, orphan))
  }

  /** Deletions a crash interrupted: `-removing` directories with a cache id (SPEC.md §3.5). */
  async orphans(): Promise<Orphan[]> {
    return withIo('list orphans', () => listOrphans(this.layout))
  }

  // ---- read-write layers --------------------------------------------------------------------

  /**
   * Writes `mounts/<name>/` atomically, replacing a record of that name (unless `exclusive`:
   * METADATA_EXISTS). METADATA_INVALID_NAME for a name that is not one path component.
   */
  async writeMount(record: MountRecord, options: WriteMountOptions = {}): Promise<void> {
    return withIo(`write mount "${record.name}"`, () =>
      writeMountRecord(this.layout, record, options),
    )
  }

  /** Removes `mounts/<name>/` atomically (METADATA_NOT_FOUND when absent). */
  async removeMount(name: string): Promise<void> {
    return withIo(`remove mount "${name}"`, () => removeMountRecord(this.layout, name))
  }

  // ---- damaged records ----------------------------------------------------------------------

  /**
   * Moves a record aside to `quarantine/<kind>-<name>-<time>` (with a `.reason` file), so
   * that the name can be used again. `name` is the directory name: the hex of a layer (a
   * ChainID is accepted too) or a mount name.
   */
  async quarantine(kind: RecordKind, name: string, reason: string): Promise<Quarantined> {
    return withIo(`quarantine ${kind} "${name}"`, () =>
      quarantineRecord(this.layout, kind, name, reason),
    )
  }
}

/** Names of the directories in `dir` (none when it is missing), sorted by their UTF-8 bytes. */
async function dirNames(dir: string): Promise<string[]> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return []
    throw err
  }
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
}
