/**
 * Architecture test: every import edge between the folders of src/ follows DESIGN.md's layering
 * (dependencies point down only), as go-containerregistry's depcheck_test does. STYLE §2.1, §2.12.
 *
 * It reads the TypeScript sources, not dist/: `import type` edges are erased from the emitted
 * JS but are still dependencies. Specifiers are found with TypeScript's own pre-processor
 * (imports, `export … from`, `import()`, `import x = require()`), so comments and strings
 * that merely look like imports do not count.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** A top-level part of src/: a folder (`tar`) or a root file without extension (`errors`). */
type Area = string

interface Rule {
  /** Areas this one may import, besides `node:` built-ins and itself. */
  readonly may: readonly Area[]
  /** Why, shown when an edge breaks the rule. */
  readonly why: string
}

const LIBRARY = [
  'errors',
  'digest',
  'tar',
  'internal',
  'tarsplit',
  'archive',
  'drivers',
  'metadata',
  'layer',
  'image',
  'registry',
] as const

/**
 * THE TABLE. Lowest layer first, as in DESIGN.md "Architecture". A new top-level folder (or a
 * new file directly in src/) fails the test until it gets a row here.
 *
 * Test files (`*.test.ts`) are not in the table: they may import anything except cli/, and
 * tests inside cli/ may import cli/ too.
 */
const RULES: Readonly<Record<Area, Rule>> = {
  // src/errors.ts: StoreError, ErrorKind, hasCode(). The bottom of everything.
  errors: { may: [], why: 'the shared error model sits below every layer' },
  // Digest/DiffId/ChainId, sha256, VerifyDigest.
  digest: { may: ['errors'], why: 'digest/ is the lowest domain layer' },
  // Streaming tar reader/writer. No store knowledge, not even digests: callers hash the stream.
  tar: { may: ['errors'], why: 'tar/ is a standalone streaming tar library' },
  // Not exported from the package: root resolution, locks, atomic files, fsync.
  internal: { may: ['errors'], why: 'internal/ holds leaf helpers usable from any layer' },
  // tar-split entries, packer, disassemble, assemble.
  tarsplit: {
    may: ['errors', 'digest', 'tar', 'internal'],
    why: 'tar-split sits on tar/ and knows nothing of the store',
  },
  // Apply a tar diff to a directory; changes; export changes.
  archive: {
    may: ['errors', 'digest', 'tar', 'tarsplit', 'internal'],
    why: 'archive/ works on directories and tars, below drivers',
  },
  // Driver interface, overlay2, vfs, naive diff.
  drivers: {
    may: ['errors', 'digest', 'tar', 'tarsplit', 'internal', 'archive'],
    why: 'drivers/ manage directories; the layer store drives them, not the reverse',
  },
  // layerdb on disk: files, write-set transactions, orphans.
  metadata: {
    may: ['errors', 'digest', 'internal'],
    why: 'metadata/ stores records and files; it does not parse tars or call drivers',
  },
  // LayerStore: register/get/release, RW layers, reference counts.
  layer: {
    may: ['errors', 'digest', 'tar', 'tarsplit', 'internal', 'archive', 'drivers', 'metadata'],
    why: 'layer/ is below image/, registry/ and cli/',
  },
  // docker-archive and OCI-layout load/save; image records.
  image: {
    may: [
      'errors',
      'digest',
      'tar',
      'tarsplit',
      'internal',
      'archive',
      'drivers',
      'metadata',
      'layer',
    ],
    why: 'image/ is below registry/ and cli/',
  },
  // OCI distribution client.
  registry: {
    may: LIBRARY.filter((a) => a !== 'registry'),
    why: 'registry/ is the top library layer; only cli/ sits above it',
  },
  // The command line: thin over the whole library.
  cli: { may: LIBRARY, why: 'cli/ may use the library, but never test helpers' },
  // src/index.ts: the public barrel. internal/ is not part of the public API.
  index: {
    may: LIBRARY.filter((a) => a !== 'internal'),
    why: 'the barrel re-exports the public library only (no internal/, testing/ or cli/)',
  },
  // Test helpers (builders, corpus access, Go tar-split runner), used only by tests.
  testing: { may: [...LIBRARY, 'index'], why: 'test helpers may use anything but cli/' },
}

/** Areas test files may import, by where the test lives. */
function testMay(area: Area): readonly Area[] {
  const all = [...LIBRARY, 'index', 'testing']
  return area === 'cli' ? [...all, 'cli'] : all
}

// The compiled test runs as dist/import-boundaries.test.js; the repository is one level up.
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SRC = join(REPO, 'src')

function pkg(): { runtime: Set<string>; dev: Set<string> } {
  const p = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }
  return {
    runtime: new Set(Object.keys(p.dependencies ?? {})),
    dev: new Set(Object.keys(p.devDependencies ?? {})),
  }
}

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name)
    if (ent.isDirectory()) out.push(...sourceFiles(p))
    else if (ent.name.endsWith('.ts') && !ent.name.endsWith('.d.ts')) out.push(p)
  }
  return out.sort()
}

/** Path relative to src/, with forward slashes. */
function srcRel(abs: string): string {
  return relative(SRC, abs).split(sep).join('/')
}

/** `tar/reader.ts` → `tar`; `errors.ts` → `errors`; `errors.js` → `errors`. */
function areaOf(rel: string): Area {
  const slash = rel.indexOf('/')
  return slash === -1 ? rel.replace(/\.(?:test\.)?[cm]?[jt]s$/, '') : rel.slice(0, slash)
}

const isTest = (rel: string): boolean => /\.test\.[cm]?[jt]s$/.test(rel)

/** `fast-check/arbitrary` → `fast-check`; `@scope/x/y` → `@scope/x`. */
function packageName(spec: string): string {
  const parts = spec.split('/')
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

interface Import {
  readonly specifier: string
  readonly line: number
}

/** Every module specifier `text` imports or re-exports, with 1-based line numbers. */
function importsOf(text: string): Import[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => ({
    specifier: f.fileName,
    line: text.slice(0, f.pos).split('\n').length,
  }))
}

/** One broken rule, phrased for the person who has to fix it, or undefined if the edge is allowed. */
function checkEdge(
  fromRel: string,
  spec: string,
  deps: { runtime: Set<string>; dev: Set<string> },
): string | undefined {
  const from = areaOf(fromRel)
  const fromTest = isTest(fromRel)
  const testCode = fromTest || from === 'testing'

  if (spec.startsWith('node:')) return undefined
  if (!spec.startsWith('.') && !spec.startsWith('/')) {
    const name = packageName(spec)
    if (builtinModules.includes(name))
      return `built-ins take the "node:" prefix: write 'node:${spec}' (STYLE §2.11)`
    if (deps.runtime.has(name)) return undefined
    if (deps.dev.has(name))
      return testCode
        ? undefined
        : `'${name}' is a devDependency: only tests and src/testing/ may import it`
    return `'${name}' is not in package.json; runtime dependencies need a write-up in docs/dependencies.md (STYLE §2.12)`
  }

  const target = resolve(dirname(join(SRC, fromRel)), spec)
  const toRel = srcRel(target)
  if (toRel.startsWith('../') || toRel === '..' || spec.startsWith('/'))
    return `imports leave src/ ('${spec}'); src/ must compile on its own (tsconfig rootDir)`
  const to = areaOf(toRel)
  if (isTest(toRel) && !fromTest) return `only tests may import a test file ('${toRel}')`
  if (to === from) return undefined

  if (to === 'cli' && from !== 'cli')
    return `nothing outside src/cli/ imports src/cli/ (the CLI is a thin shell over the library)`
  if (fromTest) {
    return testMay(from).includes(to) ? undefined : `tests in ${from}/ may not import ${to}/`
  }
  if (to === 'testing')
    return `only tests and src/testing/ may import test helpers (src/testing/ is not shipped code)`
  const rule = RULES[from]
  if (rule === undefined) return undefined // reported once per area by the table test
  if (rule.may.includes(to)) return undefined
  const allowed = ['node:*', ...rule.may.map((a) => (a === 'errors' ? 'errors.ts' : `${a}/`))]
  return `${from}/ may import only ${allowed.join(', ')} and itself, not ${to}/: ${rule.why}`
}

test('the import scanner sees every kind of import and ignores comments and strings', () => {
  const text = [
    "// import x from './commented.js'",
    "import type { A } from './a.js'",
    "import { type B, c } from '../b.js'",
    "export * from './c.js'",
    "export type { D } from './d.js'",
    "import './side-effect.js'",
    'const s = "import z from \'./in-a-string.js\'"',
    "const m = await import('./dynamic.js')",
    "type T = typeof import('./type-query.js')",
  ].join('\n')
  assert.deepEqual(importsOf(text), [
    { specifier: './a.js', line: 2 },
    { specifier: '../b.js', line: 3 },
    { specifier: './c.js', line: 4 },
    { specifier: './d.js', line: 5 },
    { specifier: './side-effect.js', line: 6 },
    { specifier: './dynamic.js', line: 8 },
    { specifier: './type-query.js', line: 9 },
  ])
})

test('every top-level folder and file of src/ has a row in the import-boundaries table', () => {
  const missing = readdirSync(SRC)
    .filter((name) => statSync(join(SRC, name)).isDirectory() || /\.ts$/.test(name))
    .filter((name) => !isTest(name))
    .map((name) => (name.endsWith('.ts') ? areaOf(name) : name))
    .filter((area) => !(area in RULES))
  assert.deepEqual(
    missing,
    [],
    `src/${missing.join(', src/')} ${missing.length === 1 ? 'is' : 'are'} not in the ` +
      'import-boundaries table: add a row to RULES in src/import-boundaries.test.ts saying ' +
      'what it may import (lowest layer first, per DESIGN.md "Architecture")',
  )
})

test('imports between src/ folders point down the layering of DESIGN.md', () => {
  const deps = pkg()
  const files = sourceFiles(SRC)
  assert.ok(files.length > 0, `no .ts files under ${SRC}`)
  const violations: string[] = []
  let edges = 0
  for (const abs of files) {
    const rel = srcRel(abs)
    for (const { specifier, line } of importsOf(readFileSync(abs, 'utf8'))) {
      edges++
      const why = checkEdge(rel, specifier, deps)
      if (why !== undefined) violations.push(`src/${rel}:${line} imports '${specifier}': ${why}`)
    }
  }
  assert.ok(edges > 0, 'found no imports at all: the scanner is broken')
  assert.deepEqual(
    violations,
    [],
    `${violations.length} forbidden import(s):\n${violations.join('\n')}`,
  )
})

test('the table itself only points down: no layer lists a layer above it', () => {
  // LIBRARY is ordered lowest first; an entry pointing up would be a typo that allows a cycle.
  const rank = new Map<Area, number>(LIBRARY.map((a, i) => [a, i]))
  const upward: string[] = []
  for (const area of LIBRARY) {
    for (const dep of RULES[area]!.may) {
      if ((rank.get(dep) ?? Infinity) >= rank.get(area)!) upward.push(`${area} → ${dep}`)
    }
  }
  assert.deepEqual(upward, [])
})
