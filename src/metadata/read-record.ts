/**
 * Reading one record with Docker's parsing rules (SPEC.md §3.2). A record reads only its own
 * files, never its parent's: walking (and cycle detection) is the layer store's business.
 */
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { digestHex, parseChainId, type ChainId, type DiffId } from '../digest/digest.js'
import {
  InvalidNameError,
  MetadataCorruptError,
  MetadataNotFoundError,
  type RecordKind,
} from './errors.js'
import {
  errnoOf,
  parseCacheIdText,
  parseDescriptorText,
  parseDigestText,
  parseIdText,
  parseSizeText,
  ParseError,
  pathComponentProblem,
  readSmallFile,
} from './files.js'
import type { Layout } from './layout.js'
import type { LayerRecord, MountRecord } from './types.js'

/** Reads `sha256/<hex>/`: METADATA_NOT_FOUND when absent, METADATA_CORRUPT when unreadable. */
export async function readLayerRecord(layout: Layout, chainId: ChainId): Promise<LayerRecord> {
  parseChainId(chainId)
  const hex = digestHex(chainId)
  const r = new RecordReader('layer', hex, join(layout.sha256, hex))
  await r.checkDirectory()
  const diffId = (await r.required('diff', parseDigestText)) as DiffId
  const size = await r.required('size', parseSizeText)
  const cacheId = await r.required('cache-id', parseCacheIdText)
  const parent = (await r.optional('parent', parseDigestText)) as ChainId | undefined
  const descriptor = await r.optional('descriptor.json', parseDescriptorText)
  return {
    chainId,
    diffId,
    size,
    cacheId,
    ...(parent === undefined ? {} : { parent }),
    ...(descriptor === undefined ? {} : { descriptor }),
  }
}

/** Reads `mounts/<name>/`: METADATA_NOT_FOUND when absent, METADATA_CORRUPT when unreadable. */
export async function readMountRecord(layout: Layout, name: string): Promise<MountRecord> {
  checkMountName(name)
  const r = new RecordReader('mount', name, join(layout.mounts, name))
  await r.checkDirectory()
  const mountId = await r.required('mount-id', (t) => parseIdText(t, 'mount'))
  const initId = await r.optional('init-id', (t) => parseIdText(t, 'init'))
  const parent = (await r.optional('parent', parseDigestText)) as ChainId | undefined
  return {
    name,
    mountId,
    ...(initId === undefined ? {} : { initId }),
    ...(parent === undefined ? {} : { parent }),
  }
}

/** A read-write layer name must be one path component (SPEC.md §8.3): METADATA_INVALID_NAME. */
export function checkMountName(name: string): void {
  if (typeof name !== 'string') throw new TypeError('Cannot use a mount name that is not a string')
  const why = pathComponentProblem(name)
  if (why !== undefined) throw new InvalidNameError('read-write layer name', name, why)
}

class RecordReader {
  readonly #kind: RecordKind
  readonly #name: string
  readonly #dir: string

  constructor(kind: RecordKind, name: string, dir: string) {
    this.#kind = kind
    this.#name = name
    this.#dir = dir
  }

  async checkDirectory(): Promise<void> {
    let st
    try {
      st = await lstat(this.#dir)
    } catch (err) {
      if (errnoOf(err) === 'ENOENT')
        throw new MetadataNotFoundError(this.#kind, this.#name, this.#dir)
      throw err
    }
    if (!st.isDirectory()) throw this.#corrupt(this.#dir, 'the record is not a directory')
  }

  async required<T>(file: string, parse: (text: string) => T): Promise<T> {
    const v = await this.optional(file, parse)
    if (v === undefined) throw this.#corrupt(join(this.#dir, file), `${file}: missing`)
    return v
  }

  async optional<T>(file: string, parse: (text: string) => T | undefined): Promise<T | undefined> {
    const path = join(this.#dir, file)
    try {
      const text = await readSmallFile(path)
      return text === undefined ? undefined : parse(text)
    } catch (err) {
      if (err instanceof ParseError) throw this.#corrupt(path, `${file}: ${err.message}`, err)
      throw err
    }
  }

  #corrupt(path: string, reason: string, cause?: unknown): MetadataCorruptError {
    return new MetadataCorruptError(this.#kind, this.#name, path, reason, { cause })
  }
}
