/**
 * The CLI program as users run it: the bundle `npm run build` (and scripts/run-tests.mjs)
 * makes of the compiled modules, scripts/bundle-cli.mjs. This file is dist/testing.
 */
import { fileURLToPath } from 'node:url'

export const CLI_PROGRAM = fileURLToPath(new URL('../cli/layerstore.mjs', import.meta.url))
