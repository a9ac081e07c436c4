/**
 * What the Docker interoperability tests share (src/image/docker-interop*.test.ts): a scratch
 * directory per test whose daemons are stopped, whatever happens, before anything else is
 * cleaned up; a build context Docker turns into a three-layer image; reading what
 * `docker save` writes; and the daemon log lines that tell of layers Docker could not use.
 */
import type { TestContext } from 'node:test'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readTar } from '../tar/reader.js'
import { TYPE } from '../tar/types.js'
import { writeTar, type TarWriteEntry } from '../tar/writer.js'
import { startDockerd, type Dockerd, type DockerdOptions } from './dockerd.js'

export const sha256 = (b: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(b).digest('hex')}`

/**
 * A scratch directory for one test, removed after it. After the test, daemons started through
 * the session stop first, then the deferred cleanups run (last first), then the directory goes.
 */
export class DockerSession {
  readonly dir = mkdtempSync(join(tmpdir(), 'layerstore-docker-'))
  readonly #daemons: Dockerd[] = []
  readonly #deferred: (() => Promise<void>)[] = []

  constructor(t: TestContext) {
    t.after(async () => {
      const errors: unknown[] = []
      for (const d of this.#daemons) await d.stop().catch((err: unknown) => errors.push(err))
      for (const fn of this.#deferred.reverse())
        await fn().catch((err: unknown) => errors.push(err))
      rmSync(this.dir, { recursive: true, force: true })
      if (errors.length > 0) throw new AggregateError(errors, 'Cannot clean up the session')
    })
  }

  /** A daemon on `root`; a reason to skip is an error here (the test checks it up front). */
  async dockerd(root: string, options: DockerdOptions = {}): Promise<Dockerd> {
    const d = await startDockerd(root, options)
    if ('skip' in d) throw new Error(`dockerd cannot run: ${d.skip}`)
    this.#daemons.push(d)
    return d
  }

  /** Runs `fn` after the test, once the daemons have stopped (to unmount a store's layers). */
  defer(fn: () => Promise<void>): void {
    this.#deferred.push(fn)
  }
}

/** Names in a directory, or none when it does not exist. */
export function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : []
}

export async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b
}

export async function tarBytes(entries: readonly TarWriteEntry[]): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of writeTar(entries)) chunks.push(Buffer.from(c))
  return Buffer.concat(chunks)
}

/** The regular files of a tar, by name. */
export async function tarFiles(tar: Uint8Array): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for await (const e of readTar(once(tar))) {
    if (e.header.typeflag !== TYPE.REG) continue
    const parts: Buffer[] = []
    for await (const c of e.body) parts.push(Buffer.from(c))
    files.set(e.header.name, Buffer.concat(parts))
  }
  return files
}

/**
 * `docker save` of `ref` (one image): the sha256 of each layer blob, bottom first, in
 * manifest.json's order. Docker 20.10 writes them uncompressed, so these are DiffIDs.
 */
export async function savedDiffIds(d: Dockerd, ref: string): Promise<string[]> {
  const files = await tarFiles((await d.docker(['save', ref])).stdout)
  const manifest = files.get('manifest.json')
  if (manifest === undefined) throw new Error(`docker save ${ref}: no manifest.json`)
  const [image] = JSON.parse(manifest.toString()) as { Layers: string[] }[]
  if (image === undefined) throw new Error(`docker save ${ref}: an empty manifest.json`)
  return image.Layers.map((path) => {
    const blob = files.get(path)
    if (blob === undefined) throw new Error(`docker save ${ref}: no ${path}`)
    return sha256(blob)
  })
}

/**
 * Lines of a daemon log that tell of a layer or mount it could not load, or of any error.
 * Docker logs layers it cannot load at debug level only (layer_store.go): start the daemon
 * with `logLevel: 'debug'` for this to see them. The containerd connection closing at the
 * daemon's stop is not a problem (it raced with the test's reading of the log once).
 */
export function layerProblems(log: string): string[] {
  return log
    .split('\n')
    .filter((l) =>
      /level=(error|fatal)|failed to load (layer|mount)|layer.*(invalid|corrupt)/i.test(l),
    )
    .filter((l) => !CONTAINERD_NOISE.test(l))
}

/**
 * What dockerd logs about supervising its own containerd (module=libcontainerd): the connection
 * closing as it stops, and on a loaded machine a containerd that is slow to listen, killed and
 * restarted. None of it concerns layers.
 */
const CONTAINERD_NOISE = /module=libcontainerd|Failed to get event.*transport is closing/

const MTIME = 1_700_000_000

/** A tar for ADD, which Docker extracts: links, a long name, owners and odd modes. */
function addTar(): Promise<Buffer> {
  const long = `${'long-directory-name-'.repeat(4)}end/${'f'.repeat(90)}.txt`
  const h = (
    name: string,
    more: Partial<TarWriteEntry['header']> = {},
  ): TarWriteEntry['header'] => ({ name, mode: 0o644, mtime: MTIME, ...more })
  const owned = { uid: 1000, gid: 1000 }
  return tarBytes([
    { header: h('tree/', { typeflag: TYPE.DIR, mode: 0o750, ...owned }) },
    { header: h('tree/secret', { mode: 0o600, ...owned }), body: Buffer.from('s\n') },
    { header: h('tree/hard', { typeflag: TYPE.LINK, linkname: 'tree/secret', ...owned }) },
    { header: h('tree/sym', { typeflag: TYPE.SYMLINK, linkname: '../etc/os-release' }) },
    { header: h('tree/empty/', { typeflag: TYPE.DIR, mode: 0o755, mtime: MTIME + 3600 }) },
    { header: h(long), body: Buffer.from('a long name\n') },
  ])
}

/**
 * Writes a build context for `dockerBuild`: three layers (COPY, ADD of a tar, COPY --chown)
 * between ENV and LABEL steps, which make no layer but change the configuration.
 */
export async function writeBuildContext(dir: string): Promise<void> {
  const put = (path: string, data: string | Buffer, mode = 0o644): void => {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), data, { mode })
  }
  put('base/etc/os-release', 'ID=layerstore\n')
  put('base/bin/tool', '#!/bin/sh\necho tool\n', 0o755)
  put('base/data/big.bin', Buffer.alloc(300_000, 7))
  put('base/data/sub/deep/file.txt', 'deep\n')
  put('extra.tar', await addTar())
  put('over/etc/os-release', 'ID=changed\n')
  put('over/data/sub/more.txt', 'more\n')
  put(
    'Dockerfile',
    [
      'FROM scratch',
      'COPY base/ /',
      'ENV PATH=/bin',
      'ADD extra.tar /opt/',
      'LABEL org.example.test=interop',
      'COPY --chown=1000:1000 over/ /',
      '',
    ].join('\n'),
  )
}
