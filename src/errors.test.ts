/**
 * Keeps error codes and docs/errors.md in step (STYLE §2.5, after isomorphic-git's
 * find-unused-errors): every code defined in src/ is unique and documented with its kind, every
 * documented code exists, and the exit-status table matches src/cli/exit-codes.ts.
 *
 * Codes are found in the TypeScript sources (the compiled test runs from dist/, one level
 * below the repository), read with TypeScript's parser:
 * - a class property `readonly code = 'X'`, with the class's `readonly kind = '…'`;
 * - the string members of a `type …Code = 'A' | 'B'` union in an `errors.ts` file, owned by the
 *   class that declares `readonly code: …Code` (TarError and TarErrorCode);
 * - the members of a `type …WarningCode` union in any file: codes passed to `onWarning`.
 * Test files and src/testing/ are not scanned: they mention codes without defining them.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SRC = join(REPO, 'src')
const DOC = join(REPO, 'docs', 'errors.md')

/** A code as the source defines it. */
interface Definition {
  readonly code: string
  /** The class that raises it, or the union type for warnings. */
  readonly owner: string
  /** Path relative to the repository. */
  readonly file: string
  /** The class's `kind`, `'warning'` for warnings, undefined when the class has none (CLI). */
  readonly kind: string | undefined
  readonly warning: boolean
}

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name)
    if (ent.isDirectory()) {
      if (p !== join(SRC, 'testing')) out.push(...sourceFiles(p))
    } else if (ent.name.endsWith('.ts') && !/\.(test|d)\.ts$/.test(ent.name)) out.push(p)
  }
  return out.sort()
}

const repoRel = (abs: string): string => relative(REPO, abs).split(sep).join('/')

function parse(abs: string): ts.SourceFile {
  return ts.createSourceFile(abs, readFileSync(abs, 'utf8'), ts.ScriptTarget.ES2022, true)
}

function propertyName(m: ts.ClassElement): string | undefined {
  return m.name !== undefined && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name))
    ? m.name.text
    : undefined
}

/** `'X'` or `'X' as const` → X. */
function stringInitializer(e: ts.Expression | undefined): string | undefined {
  if (e === undefined) return undefined
  if (ts.isAsExpression(e)) return stringInitializer(e.expression)
  return ts.isStringLiteralLike(e) ? e.text : undefined
}

/** The string literal members of a union type (or a lone literal), in order. */
function unionMembers(t: ts.TypeNode): string[] | undefined {
  const parts = ts.isUnionTypeNode(t) ? [...t.types] : [t]
  const out: string[] = []
  for (const p of parts) {
    if (!ts.isLiteralTypeNode(p) || !ts.isStringLiteral(p.literal)) return undefined
    out.push(p.literal.text)
  }
  return out
}

interface Scan {
  readonly definitions: Definition[]
  /** Every string literal in src/cli/, for the CLI-only codes. */
  readonly cliStrings: Set<string>
}

function scan(): Scan {
  const definitions: Definition[] = []
  const cliStrings = new Set<string>()
  const unions: { name: string; file: string; members: string[]; warning: boolean }[] = []
  /** Union type name → the classes whose `code` has that type. */
  const unionOwners = new Map<string, { owner: string; kind: string | undefined }[]>()

  for (const abs of sourceFiles(SRC)) {
    const file = repoRel(abs)
    const inCli = file.startsWith('src/cli/')
    const visit = (node: ts.Node): void => {
      if (inCli && ts.isStringLiteralLike(node)) cliStrings.add(node.text)
      if ((ts.isClassDeclaration(node) || ts.isClassExpression(node)) && node.name) {
        const owner = node.name.text
        let kind: string | undefined
        let literal: string | undefined
        let typeName: string | undefined
        for (const m of node.members) {
          if (!ts.isPropertyDeclaration(m)) continue
          const name = propertyName(m)
          if (name === 'kind') kind = stringInitializer(m.initializer)
          if (name !== 'code') continue
          literal = stringInitializer(m.initializer)
          if (m.type && ts.isTypeReferenceNode(m.type) && ts.isIdentifier(m.type.typeName))
            typeName = m.type.typeName.text
        }
        if (literal !== undefined)
          definitions.push({ code: literal, owner, file, kind, warning: false })
        else if (typeName !== undefined)
          unionOwners.set(typeName, [...(unionOwners.get(typeName) ?? []), { owner, kind }])
      }
      if (ts.isTypeAliasDeclaration(node) && node.name.text.endsWith('Code')) {
        const name = node.name.text
        const warning = name.endsWith('WarningCode')
        if (warning || basename(file) === 'errors.ts') {
          const members = unionMembers(node.type)
          if (members !== undefined) unions.push({ name, file, members, warning })
        }
      }
      ts.forEachChild(node, visit)
    }
    visit(parse(abs))
  }

  for (const u of unions) {
    const owners = u.warning ? [] : (unionOwners.get(u.name) ?? [])
    // A union that no class uses still defines its codes; say so through the owner.
    const owner = owners.map((o) => o.owner).join(' and ') || u.name
    const kinds = new Set(owners.map((o) => o.kind))
    const kind = u.warning ? 'warning' : kinds.size === 1 ? [...kinds][0] : undefined
    for (const code of u.members)
      definitions.push({ code, owner, file: u.file, kind, warning: u.warning })
  }
  return { definitions, cliStrings }
}

type Section = 'errors' | 'warnings' | 'cli' | 'exit'

const SECTIONS: Readonly<Record<string, Section>> = {
  'Error codes': 'errors',
  Warnings: 'warnings',
  'CLI-only codes': 'cli',
  'Exit statuses': 'exit',
}

interface DocRow {
  readonly section: Section
  /** The code (errors, warnings, cli) or the exit status (exit). */
  readonly key: string
  /** Second column without backquotes: the kind, or the exit status for CLI-only codes. */
  readonly second: string
  readonly line: number
}

/** The table rows of docs/errors.md under the four `##` headings. */
function docRows(): DocRow[] {
  const rows: DocRow[] = []
  let section: Section | undefined
  readFileSync(DOC, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      const heading = /^##\s+(.+?)\s*$/.exec(text)
      if (heading) {
        section = SECTIONS[heading[1]!]
        return
      }
      if (section === undefined || !text.startsWith('|')) return
      const cells = text
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim())
      const key =
        section === 'exit' ? /^(\d+)$/.exec(cells[0] ?? '') : /^`(.+)`$/.exec(cells[0] ?? '')
      if (!key) return // the header and separator rows
      const second = (cells[1] ?? '').replace(/^`(.*)`$/, '$1')
      rows.push({ section, key: key[1]!, second, line: i + 1 })
    })
  return rows
}

/** `EXIT` of src/cli/exit-codes.ts, read from the source (tests outside cli/ do not import it). */
function exitTable(): Map<string, number> {
  const out = new Map<string, number>()
  const visit = (node: ts.Node): void => {
    if (
      ts.isVariableDeclaration(node) &&
      ts.isIdentifier(node.name) &&
      node.name.text === 'EXIT' &&
      node.initializer !== undefined &&
      ts.isObjectLiteralExpression(node.initializer)
    ) {
      for (const p of node.initializer.properties) {
        if (!ts.isPropertyAssignment(p) || !ts.isNumericLiteral(p.initializer)) continue
        if (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))
          out.set(p.name.text, Number(p.initializer.text))
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(parse(join(SRC, 'cli', 'exit-codes.ts')))
  return out
}

/** Members of `ErrorKind` in src/errors.ts. */
function errorKinds(): Set<string> {
  const out = new Set<string>()
  for (const s of parse(join(SRC, 'errors.ts')).statements)
    if (ts.isTypeAliasDeclaration(s) && s.name.text === 'ErrorKind')
      for (const k of unionMembers(s.type) ?? []) out.add(k)
  return out
}

const where = (d: Definition): string => `${d.owner} (${d.file})`

const { definitions, cliStrings } = scan()
const rows = docRows()

test('the scanner finds the codes it should (so the other checks are not vacuous)', () => {
  const codes = new Set(definitions.map((d) => d.code))
  for (const known of ['INTERNAL', 'DIGEST_MISMATCH', 'TAR_BAD_CHECKSUM', 'USAGE'])
    assert.ok(codes.has(known), `scanner missed ${known}`)
  assert.ok(
    definitions.some((d) => d.warning),
    'scanner found no warning codes',
  )
  assert.ok(rows.length > 0, 'found no tables in docs/errors.md')
})

test('every error code is SCREAMING_SNAKE_CASE and defined by exactly one class', () => {
  const problems = definitions
    .filter((d) => !/^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/.test(d.code))
    .map((d) => `${d.code} in ${where(d)} is not SCREAMING_SNAKE_CASE`)
  const byCode = new Map<string, Definition[]>()
  for (const d of definitions) byCode.set(d.code, [...(byCode.get(d.code) ?? []), d])
  for (const [code, ds] of byCode)
    if (ds.length > 1)
      problems.push(`${code} is defined ${ds.length} times: ${ds.map(where).join(', ')}`)
  assert.deepEqual(problems, [])
})

test('every code in src/ has a row in docs/errors.md with its kind', () => {
  const kinds = errorKinds()
  const problems: string[] = []
  for (const d of definitions) {
    const section: Section = d.file.startsWith('src/cli/')
      ? 'cli'
      : d.warning
        ? 'warnings'
        : 'errors'
    const row = rows.find((r) => r.section === section && r.key === d.code)
    if (row === undefined) {
      const heading = Object.keys(SECTIONS).find((h) => SECTIONS[h] === section)!
      problems.push(`${d.code} from ${where(d)} is not under "## ${heading}" in docs/errors.md`)
      continue
    }
    if (section === 'cli') continue
    if (d.kind === undefined) problems.push(`${d.code}: ${where(d)} has no literal \`kind\``)
    else if (!d.warning && !kinds.has(d.kind))
      problems.push(`${d.code}: kind "${d.kind}" of ${where(d)} is not an ErrorKind`)
    else if (row.second !== d.kind)
      problems.push(
        `${d.code}: docs/errors.md:${row.line} says kind "${row.second}", ${where(d)} has "${d.kind}"`,
      )
  }
  assert.deepEqual(problems, [])
})

test('every code in docs/errors.md exists in src/, once', () => {
  const problems: string[] = []
  const seen = new Set<string>()
  for (const r of rows) {
    if (r.section === 'exit') continue
    if (seen.has(r.key)) problems.push(`docs/errors.md:${r.line}: ${r.key} is listed twice`)
    seen.add(r.key)
    const exists =
      r.section === 'cli'
        ? cliStrings.has(r.key)
        : definitions.some((d) => d.code === r.key && d.warning === (r.section === 'warnings'))
    if (!exists)
      problems.push(
        `docs/errors.md:${r.line}: ${r.key} is not defined in src/` +
          (r.section === 'cli' ? 'cli/' : '') +
          ' (remove the row, or move it to the right table)',
      )
  }
  assert.deepEqual(problems, [])
})

test('docs/errors.md lists the exit statuses of src/cli/exit-codes.ts', () => {
  const exit = exitTable()
  assert.ok(exit.size > 0, 'found no EXIT table in src/cli/exit-codes.ts')
  const documented = new Map(
    rows.filter((r) => r.section === 'exit').map((r) => [r.second, Number(r.key)]),
  )
  assert.deepEqual(
    documented,
    exit,
    'the "## Exit statuses" table (kind → status) differs from EXIT',
  )
  // The CLI-only codes name their EXIT entry: USAGE → usage, UNEXPECTED → unexpected.
  for (const r of rows.filter((x) => x.section === 'cli')) {
    const status = exit.get(r.key.toLowerCase())
    if (status !== undefined)
      assert.equal(Number(r.second), status, `docs/errors.md:${r.line}: exit status of ${r.key}`)
  }
})
