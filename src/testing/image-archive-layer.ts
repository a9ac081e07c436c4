/**
 * Layer tars for test archives (image-archive.ts) and tests that need a layer's bytes: a tar of
 * given files, written with our own tar writer at a fixed time so that the same files give the
 * same bytes, and its blob compressed as gzip or zstd (the `zstd` program).
 */
import { execFileSync } from 'node:child_process'
import { posix } from 'node:path'
import { gzipSync } from 'node:zlib'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { TYPE } from '../tar/types.js'

export type FixtureCompression = 'none' | 'gzip' | 'zstd'

/** A fixed modification time, so that tars are byte-for-byte reproducible. */
export const MTIME = 1704067200

/**
 * A layer tar of `files`: regular files (mode 0644), parent directories added (0755) where not
 * given; a name ending in `/` is a directory (its value is ignored). Entries sorted by name.
 */
export async function makeLayerTar(files: Record<string, string | Buffer>): Promise<Buffer> {
  const entries = new Map<string, TarWriteEntry>()
  const addDir = (dir: string): void => {
    if (dir === '' || dir === '.' || entries.has(`${dir}/`)) return
    addDir(posix.dirname(dir))
    entries.set(`${dir}/`, {
      header: { name: `${dir}/`, typeflag: TYPE.DIR, mode: 0o755, mtime: MTIME },
    })
  }
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('/')) {
      addDir(name.slice(0, -1))
      continue
    }
    addDir(posix.dirname(name))
    const body = Buffer.from(data)
    entries.set(name, { header: { name, mode: 0o644, size: body.length, mtime: MTIME }, body })
  }
  const sorted = [...entries.keys()].sort().map((k) => entries.get(k)!)
  return collect(writeTar(sorted))
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(Buffer.from(c))
  return Buffer.concat(parts)
}

/** `data` compressed as a layer blob. */
export function compressLayer(data: Buffer, compression: FixtureCompression): Buffer {
  switch (compression) {
    case 'none':
      return data
    case 'gzip':
      return gzipSync(data)
    case 'zstd':
      return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1 << 30 })
  }
}
