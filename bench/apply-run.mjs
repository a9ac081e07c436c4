#!/usr/bin/env node
// Applies a layer tar to a directory with layerstore's apply(), for bench/apply.sh.
// usage: node bench/apply-run.mjs [--overlay] TAR DIR     (DIR is created)
// env: LAYERSTORE_DIST (default: the repository's dist/)
import { mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const overlay = args[0] === '--overlay'
const [tar, dir] = overlay ? args.slice(1) : args
if (tar === undefined || dir === undefined) {
  console.error('usage: apply-run.mjs [--overlay] TAR DIR')
  process.exit(2)
}
const dist =
  process.env.LAYERSTORE_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')
const load = (p) => import(pathToFileURL(resolve(dist, p)).href)
const { apply } = await load('archive/apply.js')
const { fileChunks } = await load('internal/file-chunks.js')
mkdirSync(dir)
const r = await apply(fileChunks(tar), dir, overlay ? { whiteoutFormat: 'overlay' } : {})
console.error(`entries ${r.entries} size ${r.size}`)
