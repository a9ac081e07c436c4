/**
 * The image contract: images as Docker keeps them (its `image` and `reference` packages), over
 * the layer store.
 *
 * An image is its configuration (JSON); its ID is the sha256 of the configuration's bytes.
 * The configuration lists the image's layers by DiffID (`rootfs.diff_ids`); from them follow
 * the ChainIDs, and an image record holds its top layer (so every layer below) in the store.
 * Names (`name:tag`, `name@sha256:…`) point at image IDs in `repositories.json`.
 *
 * Archives come in two forms: a docker-archive (`docker save`: `manifest.json` naming a config
 * and layer tars per image) and an OCI image layout (`oci-layout`, `index.json`, `blobs/`),
 * each as a directory or a tar. Since Docker 25 `docker save` writes both in one tar.
 *
 * Files: image-store.ts (records, names, holds), image-db.ts (Docker's files), reference.ts
 * (names and IDs), archive-source.ts (an archive's files, read in place), read-archive.ts with
 * docker-archive.ts, oci-layout.ts, archive-image.ts and platform.ts (what an archive holds),
 * image-config.ts, load.ts, journal.ts (recovery of loads and removals), save.ts,
 * commit-config.ts (images made from read-write layers).
 *
 * ```ts
 * const images = await ImageStore.open({ root })
 * const [img] = await images.load('busybox.tar')  // layers first, the image record last
 * await images.tag(img.id, 'example/busybox:1')
 * await images.save(['example/busybox:1'], 'out.tar', { format: 'oci' })
 * await images.remove('example/busybox:1')        // layers nothing else holds are deleted
 * ```
 */
import type { ChainId, DiffId, Digest } from '../digest/digest.js'

/** An image ID: `sha256:` + hex sha256 of the configuration's bytes. */
export type ImageId = Digest

/** An OCI platform (image-spec `platform`); `os` and `architecture` as Go names them. */
export interface Platform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

/** A reference to an image parsed and normalized as Docker does (`busybox` → docker.io/library/busybox:latest). */
export interface NamedReference {
  /** Fully qualified repository name: `docker.io/library/busybox`, `localhost:5000/a/b`. */
  readonly name: string
  /** The short name Docker shows and stores (`busybox`, `localhost:5000/a/b`). */
  readonly familiarName: string
  readonly tag?: string
  readonly digest?: Digest
}

/** One image of an archive, as the archive describes it, before anything is read from its layers. */
export interface ArchiveImage {
  /** sha256 of `config` = the image ID. */
  readonly id: ImageId
  /** The configuration's exact bytes. */
  readonly config: Buffer
  /** `rootfs.diff_ids` of the configuration. */
  readonly diffIds: readonly DiffId[]
  /** One blob per DiffID, bottom first. */
  readonly layers: readonly ArchiveLayer[]
  /** Names the archive gives the image, normalized (`docker.io/library/busybox:latest`). */
  readonly repoTags: readonly string[]
  /** The manifest digest, where the archive has an OCI/Docker manifest for the image. */
  readonly manifestDigest?: Digest
}

/** A layer blob inside an archive. */
export interface ArchiveLayer {
  /** Path of the blob inside the archive (`blobs/sha256/…`, `<id>/layer.tar`). */
  readonly path: string
  /** The blob's digest as the archive announces it (checked while reading); absent in legacy archives. */
  readonly digest?: Digest
  /** The blob's size as announced, if any. */
  readonly size?: number
  readonly mediaType?: string
}

/** The readable contents of an archive: a directory, or a tar file indexed by offset. */
export interface ArchiveSource {
  /** Whether the archive has a regular file at `path` (relative, `/`-separated, no `./`). */
  has(path: string): boolean
  /** Size of the file at `path`; IMAGE_BLOB_MISSING when there is none. */
  size(path: string): number
  /** Reads a small file whole (a manifest, a config); IMAGE_FILE_TOO_LARGE above `limit`. */
  read(path: string, limit?: number): Promise<Buffer>
  /** Streams a file's bytes (a layer blob), never holding it whole. */
  open(path: string, signal?: AbortSignal): AsyncIterable<Uint8Array>
  close(): Promise<void>
}

/** An image as the store keeps it. */
export interface ImageInfo {
  readonly id: ImageId
  /** Normalized names (`docker.io/library/busybox:latest`) pointing at the image. */
  readonly repoTags: readonly string[]
  /** `name@sha256:…` names pointing at the image. */
  readonly repoDigests: readonly string[]
  readonly diffIds: readonly DiffId[]
  /** ChainIDs, bottom first. */
  readonly layers: readonly ChainId[]
  /** Size of the layer chain on disk (the top layer's chain size). */
  readonly size: number
  /** The configuration's `created`, if any. */
  readonly created?: string
  readonly os: string
  readonly architecture: string
}

export type ArchiveFormat = 'docker' | 'oci'

/** Progress of a load or save, per layer, for progress bars and `--progress=json`. */
export type ProgressEvent =
  | { readonly kind: 'layer-start'; readonly diffId: DiffId; readonly total?: number }
  | {
      readonly kind: 'layer-progress'
      readonly diffId: DiffId
      readonly bytes: number
      readonly total?: number
    }
  | {
      readonly kind: 'layer-done'
      readonly diffId: DiffId
      readonly bytes: number
      readonly skipped: boolean
    }
  | { readonly kind: 'image-done'; readonly id: ImageId; readonly repoTags: readonly string[] }

export interface LoadOptions {
  /** Which image of an OCI index with several platforms (default: the host's). */
  readonly platform?: Platform
  readonly onProgress?: (event: ProgressEvent) => void
  readonly signal?: AbortSignal
}

export interface SaveOptions {
  /** `docker` (default): a tar `docker load` and OCI tools both read; `oci`: an OCI image layout. */
  readonly format?: ArchiveFormat
  readonly onProgress?: (event: ProgressEvent) => void
  readonly signal?: AbortSignal
}

/** Anomalies an ImageStore reports through `onWarning` when it reads the records. */
export type ImageWarningCode =
  | 'IMAGE_RECORD_SKIPPED' // an imagedb file whose bytes do not hash to its name, or unreadable
  | 'IMAGE_REFERENCE_SKIPPED' // a repositories.json entry that is not a valid reference
  | 'IMAGE_LAYERS_MISSING' // an image whose top layer is not in the layer store
