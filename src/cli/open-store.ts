/**
 * The store a CLI command works on: `--root`, else $LAYERSTORE_ROOT, else /var/lib/layerstore
 * as root, else $XDG_DATA_HOME/layerstore (~/.local/share/layerstore); `--driver`, else
 * $LAYERSTORE_DRIVER, else the driver the root already uses, else the default (DESIGN.md).
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
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

export async function openStore(global: GlobalOptions): Promise<LayerStore> {
  const driver = global.driver ?? process.env['LAYERSTORE_DRIVER']
  return LayerStore.open({
    root: global.root ?? defaultRoot(),
    ...(driver !== undefined && driver !== '' ? { driver } : {}),
    onWarning: (code, message) => {
      if (!global.quiet) process.stderr.write(`layerstore: warning: ${code}: ${message}\n`)
    },
  })
}
