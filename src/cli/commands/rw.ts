/** `layerstore rw create|ls|mount|unmount|changes|diff|commit|rm`: read-write layers. */
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { chainIdArg } from '../args.js'
import type { RwLayer } from '../../layer/types.js'
import type { LayerStore } from '../../layer/layer-store.js'
import { withLayerHeld } from '../hold.js'
import { openImages, openStore } from '../open-store.js'
import { commitConfig } from '../../image/commit-config.js'
import type { ImageStore } from '../../image/image-store.js'
import type { ChainId } from '../../digest/digest.js'
import { print, UsageError, type GlobalOptions } from '../output.js'
import { stdoutSink } from '../stdout-sink.js'
import { layerJson } from './layer.js'

export const HELP = `Usage:
  layerstore rw create NAME [--parent CHAIN|IMAGE]
  layerstore rw ls
  layerstore rw mount NAME
  layerstore rw unmount NAME
  layerstore rw changes NAME
  layerstore rw diff NAME [-o FILE]
  layerstore rw commit NAME [--tag REF]
  layerstore rw rm NAME

create   A new read-write layer (a container's root filesystem) on the layer CHAIN, on the top
         layer of the image IMAGE (a name or an image ID), or empty.
ls       Lists the read-write layers: name, parent ChainID, mount id.
mount    Mounts the layer and prints the path of its root; balance with unmount.
unmount  Releases one mount.
changes  What changed against the parent: one line per path, A (added), C (changed) or D
         (deleted), sorted by path.
diff     The changes as a layer tar (whiteouts for deletions), to FILE or standard output.
commit   Registers the changes as a new layer on the parent and prints it. With --tag, also
         records an image named REF: the configuration of the image the read-write layer was
         made from (if any) with the new layer and a history entry added; prints its ID.
rm       Deletes the read-write layer, unmounting it if needed; the image layers under it
         stay until \`layer rm\` (prints [] with --json).

Options:
  --parent P       create: the layer under it: a ChainID (sha256:...) or an image reference
  --tag REF        commit: name of the image to record
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
      tag: { type: 'string' },
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
  // Images pin their layers: every command that may delete layers sees them.
  const images = await openImages(global)
  const store = images.layers
  switch (sub) {
    case 'create': {
      const parent = values.parent === undefined ? undefined : parentArg(images, values.parent)
      const layer = await withLayerHeld(store, parent, () => store.createRwLayer(name, parent))
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
      try {
        if (values.tag === undefined) {
          print(global, layerJson(layer), `${layer.chainId}\n`)
          return 0
        }
        const base = [...images.list()].find((i) => i.layers.at(-1) === layer.parent?.chainId)
        const config = commitConfig(
          base === undefined ? undefined : images.inspect(base.id).config,
          layer,
          `layerstore rw commit ${name}`,
        )
        const made = await images.create(config, [values.tag])
        print(global, { ...layerJson(layer), image: made.id }, `${made.id}\n`)
        return 0
      } finally {
        store.detach(layer) // the layer stays, held by its image if tagged
      }
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

/** `--parent`: a ChainID of the store, else an image reference (its top layer). */
function parentArg(images: ImageStore, s: string): ChainId | undefined {
  if (/^sha256:[0-9a-f]{64}$/.test(s) && images.layers.map().has(s as ChainId)) return s as ChainId
  if (s.startsWith('sha256:') && s.length === 71 && !images.list().some((i) => i.id === s))
    return chainIdArg(s) // a ChainID that is not there: LAYER_DOES_NOT_EXIST from create
  return images.record(s).chainIds.at(-1)
}
