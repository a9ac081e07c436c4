// Bundles the compiled CLI (dist/cli/main.js and the modules it imports) into one file,
// dist/cli/layerstore.mjs, the program `bin` names: Node loads ~130 ES modules in ~50 ms, one
// file in a few (`image ls` on an empty root: 0.14 s -> 0.09 s). The library (dist/index.js)
// stays as modules. The bundle sits beside main.js, so paths relative to a module
// (../../build/Release for the addon) resolve the same.
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/cli/layerstore.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
})
