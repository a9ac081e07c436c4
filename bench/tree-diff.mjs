#!/usr/bin/env node
// Compares two extracted trees entry by entry (type, mode, owner, size, content, link target,
// device numbers, hard-link groups, xattrs, times), for bench/apply.sh's correctness check.
// usage: node bench/tree-diff.mjs EXPECTED_DIR ACTUAL_DIR    exit 1 and a list when they differ
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const [a, b] = process.argv.slice(2)
const dist =
  process.env.LAYERSTORE_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')
const { snapshot, compareTrees } = await import(
  pathToFileURL(resolve(dist, 'testing/tree.js')).href
)
const diffs = compareTrees(snapshot(a), snapshot(b))
for (const d of diffs.slice(0, 20)) console.log(d)
if (diffs.length > 20) console.log(`... ${diffs.length - 20} more`)
process.exit(diffs.length === 0 ? 0 : 1)
