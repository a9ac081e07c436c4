#!/usr/bin/env -S node --min-semi-space-size=16 --initial-old-space-size=64
/**
 * The layerstore command line. Parses global options, dispatches to one command module,
 * and maps errors to the CLI contract (DESIGN.md): `layerstore: <CODE>: <message>` on stderr
 * and an exit status by error kind.
 *
 * The heap options of the first line size V8's heap for a register or load from the start: a
 * layer streams tens of thousands of short-lived objects a second, and a heap that starts small
 * promotes them and runs full collections (13 on the node_modules register, 7 this way; 2.61
 * -> 2.39 s, median of 6). They apply when the program runs as itself (the `bin`), not under
 * `node FILE`.
 */
import { readFileSync } from 'node:fs'
import { reportError, UsageError, type GlobalOptions } from './output.js'

const HELP = `Usage: layerstore [--root DIR] [--driver overlay2|vfs] [--json] [--quiet] COMMAND ...

Commands:
  image load|save|ls|inspect|tag|rm                    images (docker-archive, OCI layout)
  layer register|ls|inspect|export|rm                   image layers
  rw create|ls|mount|unmount|changes|diff|commit|rm    read-write layers (container roots)
  tar-split disasm|asm   split a tar into tar-split metadata, and put it back together

Global options:
  --root DIR      store root (default $LAYERSTORE_ROOT, /var/lib/layerstore as root)
  --driver NAME   graph driver: overlay2 or vfs
  --json          machine-readable output
  --quiet         print only what was asked for
  -h, --help      this text; COMMAND --help for a command's
  --version       the program's version (with --json: also Node's and the platform)
`

type Command = (argv: string[], global: GlobalOptions) => Promise<number>
/** Commands are loaded when used: `tar-split` needs none of the store (nor its addon). */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  'tar-split': async () => (await import('./commands/tar-split.js')).tarSplit,
  layer: async () => (await import('./commands/layer.js')).layer,
  rw: async () => (await import('./commands/rw.js')).rw,
  image: async () => (await import('./commands/image.js')).image,
}

/** Splits the global options off the front of argv. */
function parseGlobal(argv: string[]): { global: GlobalOptions; rest: string[] } {
  let json = false
  let quiet = false
  let root: string | undefined
  let driver: string | undefined
  let i = 0
  for (; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--json') json = true
    else if (a === '--quiet' || a === '-q') quiet = true
    else if (a === '--root' || a === '--driver') {
      const v = argv[++i]
      if (v === undefined) throw new UsageError(`${a} needs a value`)
      if (a === '--root') root = v
      else driver = v
    } else if (a.startsWith('--root=')) root = a.slice(7)
    else if (a.startsWith('--driver=')) driver = a.slice(9)
    else break
  }
  const global: GlobalOptions = {
    json,
    quiet,
    ...(root !== undefined ? { root } : {}),
    ...(driver !== undefined ? { driver } : {}),
  }
  return { global, rest: argv.slice(i) }
}

/** package.json, two directories up from dist/cli (main.js and the bundle alike). */
function version(json: boolean): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  if (!json) return `layerstore ${pkg.version}\n`
  const info = {
    version: pkg.version,
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
  }
  return `${JSON.stringify(info)}\n`
}

export async function main(argv: string[]): Promise<number> {
  let json = argv.includes('--json')
  try {
    const { global, rest } = parseGlobal(argv)
    json = global.json
    const [name, ...args] = rest
    if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
      process.stdout.write(HELP)
      return name === undefined ? 2 : 0
    }
    if (name === '--version' || name === 'version') {
      process.stdout.write(version(json))
      return 0
    }
    const load = COMMANDS[name]
    if (load === undefined) throw new UsageError(`Unknown command "${name}" (try --help)`)
    return await (
      await load()
    )(args, global)
  } catch (err) {
    return reportError(err, json)
  }
}

process.exitCode = await main(process.argv.slice(2))
