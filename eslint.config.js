// ESLint flat config (ESLint 9, typescript-eslint 8). STYLE.md §2.11.
//
// Base: typescript-eslint's strictTypeChecked with the project service, so rules see the same
// types as `tsc -p .`. Rules are switched off or loosened below only where they fight the house
// style; each exception says why. The import layering is enforced by
// src/import-boundaries.test.ts (one table, run with the unit tests), not repeated here.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

/** Node globals for the plain-JS files (scripts, this file); TS files get them from @types/node. */
const NODE_GLOBALS = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'AbortController',
    'AbortSignal',
    'setTimeout',
    'clearTimeout',
    'setImmediate',
    'queueMicrotask',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
)

export default defineConfig(
  {
    // bench/ keeps its own package.json; only its generated results are ignored here.
    ignores: ['dist/', 'build/', 'node_modules/', 'coverage/', 'bench/out/', 'bench/node_modules/'],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          // Files outside tsconfig.json's "include" (src/) that we still lint with types.
          allowDefaultProject: ['eslint.config.js', 'scripts/*.mjs', 'examples/*.mjs'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // The key rules (STYLE §2.11), spelled out so that a preset change cannot drop them.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        // A `default:` may handle the remaining members together (as testing/corpus.ts does);
        // switches without one must list every member.
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],

      // noUncheckedIndexedAccess makes every `a[i]` optional; after a bounds check `a[i]!` is
      // the deliberate, readable way to say so (STYLE §2.4).
      '@typescript-eslint/no-non-null-assertion': 'off',

      // Numbers (bigints too, under allowNumber) and booleans in messages are normal
      // ("at byte 512"); objects, unknowns and possibly-undefined values are not.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: false },
      ],

      // `_`-prefixed names mark deliberate non-use, e.g. `using _lock = await m.lock(k)`.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],

      // `return this.#eofMissing(offset)` (a helper typed `: undefined`) and `return put(b, x)`
      // inside a void function are deliberate tail calls; tsc already checks the return types.
      '@typescript-eslint/no-confusing-void-expression': 'off',

      // Library code talks through return values, errors and onWarning, never the console.
      'no-console': 'error',
    },
  },
  {
    // The CLI owns stdout/stderr; scripts and benchmarks are developer tools that print.
    files: ['src/cli/**', 'scripts/**', 'bench/**', 'examples/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.test.ts', 'src/testing/**'],
    rules: {
      // node:test's test()/describe() return promises that the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      // Tests drain bodies with `for await (const _ of body) void _`; an empty block would read
      // as a mistake.
      '@typescript-eslint/no-meaningless-void-operator': 'off',
      // `async function* source() { yield chunk }` is how tests make an AsyncIterable input.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JS has no annotations, so every value is `any`; keep the promise rules, drop the
    // no-unsafe-* family that would flag each line.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: NODE_GLOBALS },
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // bench/ is its own package (STYLE §2.10) whose dependencies are not installed here, so it
    // is linted for syntax and plain-JS mistakes only, without type information.
    files: ['bench/**'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: NODE_GLOBALS },
  },
)
