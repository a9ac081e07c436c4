#!/usr/bin/env node
// npm's `tar` package (node-tar) extracting a tar as root would, for bench/apply.sh.
// usage: NODE_PATH=.../node_modules node bench/node-tar-x.mjs TAR DIR     (DIR is created)
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'

const [file, dir] = process.argv.slice(2)
const tar = createRequire(import.meta.url)('tar')
mkdirSync(dir)
await tar.x({ file, cwd: dir, preserveOwner: true })
