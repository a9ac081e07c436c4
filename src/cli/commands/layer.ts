/** `layerstore layer register|ls|inspect|export|rm`: image layers. */
import { createWriteStream } from 'node:fs'
import { fileChunks } from '../../internal/file-chunks.js'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { chainIdArg } from '../args.js'
import type { ChainId } from '../../digest/digest.js'
import { decompress } from '../../archive/decompress.js'
import type { LayerInfo, LayerMetadata } from '../../layer/types.js'
import { withLayerHeld } from '../hold.js'
import { openImages, openStore } from '../open-store.js'
import { print, UsageError, type GlobalOptions } from '../output.js'
import { stdoutSink } from '../stdout-sink.js'

export const HELP = `Usage:
  layerstore layer register [--parent CHAIN] [FILE...|-]
  layerstore layer ls
  layerstore layer inspect CHAIN
  layerstore layer export CHAIN [-o FILE]
  layerstore layer rm CHAIN

register  Applies a layer tar (plain, gzip, zstd, xz or bzip2, found by magic number) on top of
          the layer CHAIN, or as a base layer, and records it. Registering the same content on
          the same parent again gives the same layer. Prints its ChainID (--json: the layer).
          Several files are a chain, each on the one before (an image's layers, bottom first;
          each layer's data goes to the disk while the next is applied): one ChainID a line
          (--json: the layers); if one fails, those it made are deleted.
ls        Lists the layers: ChainID, DiffID, size of the chain and of the layer itself.
inspect   Shows one layer.
export    Writes the exact tar that was registered (to FILE or standard output). Fails with
          DIGEST_MISMATCH, before the last bytes, when the layer's files no longer hash to its
          DiffID.
rm        Deletes a layer that no image, no other layer and no read-write layer holds, then its parents
          that nothing else holds; prints what was removed, child first.

Options:
  --parent CHAIN   register: the layer to apply on (a ChainID, sha256:...)
  -o, --output F   export: where the tar goes (default standard output)
  -h, --help       this text
`

export function layerJson(l: LayerInfo): Record<string, unknown> {
  return {
    chainId: l.chainId,
    diffId: l.diffId,
    parent: l.parent?.chainId ?? null,
    size: l.size,
    diffSize: l.diffSize,
  }
}

function removedJson(m: LayerMetadata): Record<string, unknown> {
  return { chainId: m.chainId, diffId: m.diffId, size: m.size, diffSize: m.diffSize }
}

export async function layer(argv: string[], global: GlobalOptions): Promise<number> {
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
  const chainArg = (): ChainId => {
    if (positionals.length !== 1) throw new UsageError(`layer ${sub} takes one ChainID`)
    return chainIdArg(positionals[0]!)
  }
  switch (sub) {
    case 'register': {
      const files = positionals.length === 0 ? ['-'] : positionals
      if (files.length > 1 && files.includes('-'))
        throw new UsageError('layer register reads standard input only as its one file')
      const parent = values.parent === undefined ? undefined : chainIdArg(values.parent)
      const store = await openStore(global)
      const made: LayerInfo[] = []
      const chain = files.map((file) => ({
        tar: async () => {
          const { stream } = await decompress(file === '-' ? process.stdin : fileChunks(file))
          return stream
        },
      }))
      const top = await withLayerHeld(store, parent, () =>
        store.registerChain(chain, parent, (_, l) => made.push(l)),
      )
      if (files.length === 1) print(global, layerJson(top), `${top.chainId}\n`)
      else print(global, made.map(layerJson), made.map((l) => `${l.chainId}\n`).join(''))
      return 0
    }
    case 'ls': {
      if (positionals.length > 0) throw new UsageError('layer ls takes no arguments')
      const store = await openStore(global)
      const layers = [...store.map().values()].sort((a, b) => (a.chainId < b.chainId ? -1 : 1))
      const text = layers
        .map((l) => `${l.chainId}  ${l.diffId}  ${l.size}  ${l.diffSize}\n`)
        .join('')
      print(global, layers.map(layerJson), text)
      return 0
    }
    case 'inspect': {
      const id = chainArg()
      const store = await openStore(global)
      const l = await store.get(id)
      try {
        print(global, layerJson(l), JSON.stringify(layerJson(l), null, 2) + '\n')
      } finally {
        store.detach(l) // looking at a layer must not delete it
      }
      return 0
    }
    case 'export': {
      const id = chainArg()
      const store = await openStore(global)
      const l = await store.get(id)
      try {
        const out =
          values.output === undefined || values.output === '-'
            ? stdoutSink()
            : createWriteStream(values.output)
        await pipeline(l.tarStream(), out)
      } finally {
        store.detach(l) // looking at a layer must not delete it
      }
      return 0
    }
    case 'rm': {
      const id = chainArg()
      const store = (await openImages(global)).layers // images hold their layers
      const removed = await store.remove(id)
      print(global, removed.map(removedJson), removed.map((m) => `${m.chainId}\n`).join(''))
      return 0
    }
    default:
      throw new UsageError(`Unknown layer command "${sub}" (try --help)`)
  }
}
