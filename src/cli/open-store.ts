/**
 * The store a CLI command works on: `--root`, else $LAYERSTORE_ROOT, else /var/lib/layerstore
 * as root, else $XDG_DATA_HOME/layerstore (~/.local/share/layerstore); `--driver`, else
 * $LAYERSTORE_DRIVER, else the driver the root already uses, else the default (DESIGN.md).
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ImageStore } from '../image/image-store.js'
import { LayerStore } from '../layer/layer-store.js'
import type { GlobalOptions } from './output.js'

export function defaultRoot(): string {
  const env = process.env['LAYERSTORE_ROOT']
  if (env !== undefined && env !== '') return env
  if (process.getuid?.() === 0) return '/var/lib/layerstore'
  const xdg = process.env['XDG_DATA_HOME']
  return join(
    xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'share'),
    'layerstore',
  )
}

/** Root, driver and warnings as the CLI contract says. */
function storeOptions(global: GlobalOptions): {
  root: string
  driver?: string
  onWarning: (code: string, message: string) => void
} {
  const driver = global.driver ?? process.env['LAYERSTORE_DRIVER']
  return {
    root: global.root ?? defaultRoot(),
    ...(driver !== undefined && driver !== '' ? { driver } : {}),
    onWarning: (code, message) => {
      if (!global.quiet) process.stderr.write(`layerstore: warning: ${code}: ${message}\n`)
    },
  }
}

export async function openStore(global: GlobalOptions): Promise<LayerStore> {
  return LayerStore.open(storeOptions(global))
}

/** The image store (and its layer store under it) a CLI command works on. */
export async function openImages(global: GlobalOptions): Promise<ImageStore> {
  return ImageStore.open(storeOptions(global))
}
