/** `layerstore rw create|ls|mount|unmount|changes|diff|commit|rm`: read-write layers. */
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { chainIdArg } from '../args.js'
import type { RwLayer } from '../../layer/types.js'
import type { LayerStore } from '../../layer/layer-store.js'
import { openStore } from '../open-store.js'
import { print, UsageError, type GlobalOptions } from '../output.js'
import { stdoutSink } from '../stdout-sink.js'
import { layerJson } from './layer.js'

export const HELP = `Usage:
  layerstore rw create NAME [--parent CHAIN]
  layerstore rw ls
  layerstore rw mount NAME
  layerstore rw unmount NAME
  layerstore rw changes NAME
  layerstore rw diff NAME [-o FILE]
  layerstore rw commit NAME
  layerstore rw rm NAME

create   A new read-write layer (a container's root filesystem) on the layer CHAIN, or empty.
ls       Lists the read-write layers: name, parent ChainID, mount id.
mount    Mounts the layer and prints the path of its root; balance with unmount.
unmount  Releases one mount.
changes  What changed against the parent: one line per path, A (added), C (changed) or D
         (deleted), sorted by path.
diff     The changes as a layer tar (whiteouts for deletions), to FILE or standard output.
commit   Registers the changes as a new layer on the parent and prints it.
rm       Deletes the read-write layer, unmounting it if needed; the image layers under it
         stay until \`layer rm\` (prints [] with --json).

Options:
  --parent CHAIN   create: the image layer under it (a ChainID, sha256:...)
  -o, --output F   diff: where the tar goes (default standard output)
  -h, --help       this text
`

async function withRw<T>(
  store: LayerStore,
  name: string,
  fn: (rw: RwLayer) => Promise<T>,
): Promise<T> {
  const rw = await store.getRwLayer(name)
  try {
    return await fn(rw)
  } finally {
    store.detachRwLayer(rw) // the layer lives until `rw rm`
  }
}

export async function rw(argv: string[], global: GlobalOptions): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '-h' || sub === '--help') {
    process.stdout.write(HELP)
    return sub === undefined ? 2 : 0
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      parent: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (sub === 'ls') {
    if (positionals.length > 0) throw new UsageError('rw ls takes no arguments')
    const store = await openStore(global)
    const list = store
      .rwLayers()
      .map((r) => ({ name: r.name, parent: r.parent ?? null, mountId: r.mountId }))
    print(global, list, list.map((r) => `${r.name}  ${r.parent ?? '-'}  ${r.mountId}\n`).join(''))
    return 0
  }
  if (positionals.length !== 1) throw new UsageError(`rw ${sub} takes one name`)
  const name = positionals[0]!
  const store = await openStore(global)
  switch (sub) {
    case 'create': {
      const parent = values.parent === undefined ? undefined : chainIdArg(values.parent)
      const layer = await store.createRwLayer(name, parent)
      const json = { name, parent: layer.parent?.chainId ?? null, mountId: layer.mountId }
      print(global, json, `${name}\n`)
      return 0
    }
    case 'mount': {
      // The mount outlives this process (its count is the driver's); so does the layer.
      const path = await (await store.getRwLayer(name)).mount()
      print(global, { path }, `${path}\n`)
      return 0
    }
    case 'unmount':
      await (await store.getRwLayer(name)).unmount()
      return 0
    case 'changes': {
      const list = await withRw(store, name, (l) => l.changes())
      const json = list.map((c) => ({ path: c.path, kind: c.kind }))
      print(global, json, list.map((c) => `${c.kind} ${c.path}\n`).join(''))
      return 0
    }
    case 'diff':
      await withRw(store, name, async (l) => {
        const out =
          values.output === undefined || values.output === '-'
            ? stdoutSink()
            : createWriteStream(values.output)
        await pipeline(await l.tarStream(), out)
      })
      return 0
    case 'commit': {
      const layer = await withRw(store, name, async (l) =>
        store.register(await l.tarStream(), l.parent?.chainId),
      )
      print(global, layerJson(layer), `${layer.chainId}\n`)
      return 0
    }
    case 'rm': {
      // Image layers stay until `layer rm`: hold the parent while the read-write layer goes.
      const rwLayer = await store.getRwLayer(name)
      const parent =
        rwLayer.parent === undefined ? undefined : await store.get(rwLayer.parent.chainId)
      const removed = await store.releaseRwLayer(rwLayer)
      if (parent !== undefined) store.detach(parent)
      const json = removed.map((m) => ({
        chainId: m.chainId,
        diffId: m.diffId,
        size: m.size,
        diffSize: m.diffSize,
      }))
      print(global, json, removed.map((m) => `${m.chainId}\n`).join(''))
      return 0
    }
    default:
      throw new UsageError(`Unknown rw command "${sub}" (try --help)`)
  }
}
