/** `layerstore image load|save|ls|inspect|tag|rm`: images, as `docker image` has them. */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import type { ImageStore } from '../../image/image-store.js'
import { familiarString, parseReference } from '../../image/reference.js'
import type { ImageInfo, Platform } from '../../image/types.js'
import { openImages } from '../open-store.js'
import { print, UsageError, type GlobalOptions } from '../output.js'
import { createProgress, formatBytes, PROGRESS_MODES, type ProgressMode } from '../progress.js'
import { stdoutSink } from '../stdout-sink.js'
import { IMAGE_HELP } from './image-help.js'

export function imageJson(i: ImageInfo): Record<string, unknown> {
  return {
    id: i.id,
    repoTags: i.repoTags.map(familiar),
    repoDigests: i.repoDigests.map(familiar),
    layers: i.layers,
    diffIds: i.diffIds,
    size: i.size,
    created: i.created ?? null,
    os: i.os,
    architecture: i.architecture,
  }
}

export async function image(argv: string[], global: GlobalOptions): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '-h' || sub === '--help') {
    process.stdout.write(IMAGE_HELP['']!)
    return sub === undefined ? 2 : 0
  }
  const help = IMAGE_HELP[sub]
  if (help === undefined) throw new UsageError(`Unknown image command "${sub}" (try --help)`)
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i' },
      output: { type: 'string', short: 'o' },
      format: { type: 'string' },
      platform: { type: 'string' },
      progress: { type: 'string', default: 'auto' },
      force: { type: 'boolean', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) {
    process.stdout.write(help)
    return 0
  }
  const progressMode = values.progress as ProgressMode
  if (!PROGRESS_MODES.includes(progressMode))
    throw new UsageError(`--progress must be one of ${PROGRESS_MODES.join(', ')}`)
  const operands = (min: number, max: number): string[] => {
    if (positionals.length < min || positionals.length > max)
      throw new UsageError(`image ${sub}: wrong number of arguments (try --help)`)
    return positionals
  }
  switch (sub) {
    case 'load': {
      operands(0, 0)
      const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
      const images = await openImages(global)
      const progress = createProgress(progressMode, global.quiet)
      let loaded: ImageInfo[]
      try {
        loaded = await withInput(images, values.input, (path) =>
          images.load(path, {
            ...(platform !== undefined ? { platform } : {}),
            ...(progress.onProgress !== undefined ? { onProgress: progress.onProgress } : {}),
          }),
        )
      } finally {
        progress.finish()
      }
      const text = loaded
        .map((i) =>
          i.repoTags.length > 0
            ? i.repoTags.map((t) => `Loaded image: ${familiar(t)}\n`).join('')
            : `Loaded image ID: ${i.id}\n`,
        )
        .join('')
      print(global, loaded.map(imageJson), text)
      return 0
    }
    case 'save': {
      const refs = operands(1, Infinity)
      const format = values.format ?? 'docker'
      if (format !== 'docker' && format !== 'oci')
        throw new UsageError('--format must be docker or oci')
      const out = values.output
      if (out === undefined && process.stdout.isTTY)
        throw new UsageError('image save: refusing to write an archive to a terminal; use -o FILE')
      const images = await openImages(global)
      const progress = createProgress(progressMode, global.quiet)
      const options = {
        format,
        ...(progress.onProgress !== undefined ? { onProgress: progress.onProgress } : {}),
      } as const
      try {
        if (out === undefined || out === '-') await images.save(refs, stdoutSink(), options)
        else await images.save(refs, out, options)
      } finally {
        progress.finish()
      }
      if (global.json) print(global, { saved: refs, output: out ?? '-', format }, '')
      return 0
    }
    case 'ls': {
      operands(0, 0)
      const images = await openImages(global)
      const list = images.list().sort((a, b) => (a.id < b.id ? -1 : 1))
      print(global, list.map(imageJson), table(list))
      return 0
    }
    case 'inspect': {
      const [ref] = operands(1, 1)
      const images = await openImages(global)
      const info = images.inspect(ref!)
      const out = { ...imageJson(info), config: info.config }
      print(global, out, JSON.stringify(out, null, 2) + '\n')
      return 0
    }
    case 'tag': {
      const [source, target] = operands(2, 2)
      const images = await openImages(global)
      await images.tag(source!, target!)
      const id = images.resolve(target!)
      print(global, { id, tag: target }, '')
      return 0
    }
    case 'rm': {
      const refs = operands(1, Infinity)
      const images = await openImages(global)
      const results = []
      for (const ref of refs)
        results.push(await images.remove(ref, { force: values.force === true }))
      const text = results
        .map(
          (r) =>
            r.untagged.map((u) => `Untagged: ${u}\n`).join('') +
            r.deleted.map((d) => `Deleted: ${d}\n`).join('') +
            r.layers.map((l) => `Deleted layer: ${l.chainId}\n`).join(''),
        )
        .join('')
      print(global, results, text)
      return 0
    }
    default:
      throw new UsageError(`Unknown image command "${sub}" (try --help)`)
  }
}

/** Runs `fn` on the archive: a path as it is; standard input spooled to a file in the store. */
async function withInput<T>(
  images: ImageStore,
  input: string | undefined,
  fn: (path: string) => Promise<T>,
): Promise<T> {
  if (input !== undefined && input !== '-') return fn(input)
  if (process.stdin.isTTY)
    throw new UsageError('image load: no archive given; use -i FILE, or pipe one in')
  // A stream cannot be read twice, nor by offset: an archive names its files in any order.
  const dir = join(images.layers.root, 'layerstore', 'tmp')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, `stdin-${randomBytes(8).toString('hex')}.tar`)
  try {
    await pipeline(process.stdin, createWriteStream(path, { mode: 0o600 }))
    return await fn(path)
  } finally {
    await rm(path, { force: true })
  }
}

function parsePlatform(s: string): Platform {
  const [os, architecture, variant, extra] = s.split('/')
  if (
    os === undefined ||
    os === '' ||
    architecture === undefined ||
    architecture === '' ||
    extra !== undefined
  )
    throw new UsageError(`--platform must be OS/ARCH[/VARIANT], e.g. linux/arm64: "${s}"`)
  return { os, architecture, ...(variant !== undefined && variant !== '' ? { variant } : {}) }
}

/** `docker.io/library/busybox:latest` → `busybox:latest`, as Docker shows names. */
function familiar(ref: string): string {
  return familiarString(parseReference(ref))
}

/** `docker images`: REPOSITORY TAG IMAGE ID CREATED SIZE. */
function table(list: readonly ImageInfo[]): string {
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']]
  for (const i of list) {
    const short = i.id.slice('sha256:'.length, 'sha256:'.length + 12)
    const created = i.created?.slice(0, 19).replace('T', ' ') ?? ''
    const size = formatBytes(i.size)
    if (i.repoTags.length === 0) rows.push(['<none>', '<none>', short, created, size])
    for (const t of i.repoTags) {
      const f = familiar(t)
      const colon = f.lastIndexOf(':')
      rows.push([f.slice(0, colon), f.slice(colon + 1), short, created, size])
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows
    .map(
      (r) =>
        r
          .map((v, c) => v.padEnd(widths[c]!))
          .join('   ')
          .trimEnd() + '\n',
    )
    .join('')
}
