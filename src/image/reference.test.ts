import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { hasCode } from '../errors.js'
import {
  checkTaggable,
  exactImageId,
  familiarString,
  formatReference,
  imageIdPrefix,
  isImageIdPrefix,
  normalizeRefName,
  normalizeTag,
  parseImageQuery,
  parseReference,
  withDefaultTag,
  withTag,
} from './reference.js'
import { INVALID_REFERENCES, DIGEST, HEX, VALID_REFERENCES } from '../testing/reference-cases.js'

test('parseReference() reads the grammar and normalizes names as Docker does', () => {
  for (const [input, full, familiar] of VALID_REFERENCES) {
    const ref = parseReference(input)
    assert.equal(formatReference(ref), full, input)
    assert.equal(familiarString(ref), familiar, input)
  }
})

test('parseReference() splits name, familiar name, tag and digest', () => {
  assert.deepEqual(parseReference('busybox'), {
    name: 'docker.io/library/busybox',
    familiarName: 'busybox',
  })
  assert.deepEqual(parseReference(`localhost:5000/a/b:c@${DIGEST}`), {
    name: 'localhost:5000/a/b',
    familiarName: 'localhost:5000/a/b',
    tag: 'c',
    digest: DIGEST,
  })
  assert.deepEqual(parseReference('docker.io/library/foo/bar:1'), {
    name: 'docker.io/library/foo/bar',
    familiarName: 'library/foo/bar',
    tag: '1',
  })
})

test('parseReference() refuses what Docker refuses, with REFERENCE_INVALID', () => {
  for (const input of INVALID_REFERENCES) {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => hasCode(err, 'REFERENCE_INVALID'),
      JSON.stringify(input),
    )
  }
})

test('parseReference() says why a reference is refused', () => {
  const reason = (s: string): string => {
    try {
      parseReference(s)
    } catch (err) {
      assert.ok(err instanceof Error)
      return err.message
    }
    assert.fail(`${s} was accepted`)
  }
  assert.match(reason('Busybox'), /^Cannot parse reference "Busybox": .*must be lowercase/)
  assert.match(reason('docker.io/Foo/bar'), /must be lowercase/)
  assert.match(reason(HEX), /64-character hexadecimal string is an image ID/)
  assert.match(reason(`${'a/'.repeat(127)}ab`), /not be more than 255 characters/)
  assert.match(reason(`x@sha256:${HEX.slice(0, 40)}`), /digest "sha256:dbcc.*" is not sha256/)
  assert.match(reason('x@sha256:abc'), /invalid reference format/) // under 32 digits
  assert.match(reason('a//b'), /invalid reference format/)
})

test('the 255-character cap applies to the path, not the domain', () => {
  const path255 = `${'a/'.repeat(127)}a`
  assert.equal(path255.length, 255)
  assert.equal(parseReference(path255).name, `docker.io/${path255}`)
  // Docker Hub's `library/` prefix counts: 251 characters + `library/` = 259.
  assert.throws(() => parseReference('a'.repeat(251)), /not be more than 255/)
  assert.equal(parseReference('a'.repeat(247)).name, `docker.io/library/${'a'.repeat(247)}`)
  const domain = `${'d'.repeat(300)}.example.com`
  assert.equal(parseReference(`${domain}/${path255}`).name, `${domain}/${path255}`)
})

test('parseReference() stays fast on long hostile input (no backtracking blow-up)', () => {
  const hostile = [
    `${'a-'.repeat(20_000)}!`,
    `${'a.'.repeat(20_000)}/x!`,
    `${'a'.repeat(50_000)}:`,
    `x@sha256:${'a'.repeat(50_000)}!`,
    'a_'.repeat(20_000),
    `[${':'.repeat(50_000)}/x`,
    `${'a-a.'.repeat(10_000)}a-/x`,
  ]
  for (const s of hostile) {
    const start = process.hrtime.bigint()
    assert.throws(() => parseReference(s))
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    assert.ok(ms < 500, `${String(ms)} ms for ${s.slice(0, 20)}…`)
  }
})

test('withDefaultTag() adds latest only to a bare name (TagNameOnly)', () => {
  assert.equal(
    formatReference(withDefaultTag(parseReference('busybox'))),
    'docker.io/library/busybox:latest',
  )
  assert.equal(formatReference(withDefaultTag(parseReference('foo/bar:1'))), 'docker.io/foo/bar:1')
  assert.equal(
    formatReference(withDefaultTag(parseReference(`foo@${DIGEST}`))),
    `docker.io/library/foo@${DIGEST}`,
  )
  assert.equal(parseReference('busybox').tag, undefined)
})

test('withTag() sets a tag and refuses a malformed one', () => {
  assert.equal(familiarString(withTag(parseReference('busybox:1'), '2')), 'busybox:2')
  assert.throws(
    () => withTag(parseReference('busybox'), '-foo'),
    (err: unknown) => hasCode(err, 'REFERENCE_INVALID'),
  )
})

test('normalizeTag() gives the full name:tag of an archive name, else undefined', () => {
  const cases: readonly (readonly [string, string | undefined])[] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:latest', 'docker.io/library/busybox:latest'],
    ['foo/bar:1', 'docker.io/foo/bar:1'],
    ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['index.docker.io/foo/bar:1', 'docker.io/foo/bar:1'],
    ['localhost:5000/x:y', 'localhost:5000/x:y'],
    ['Busybox:latest', undefined],
    ['foo/Bar', undefined],
    ['', undefined],
    [HEX, undefined],
    ['x:-y', undefined],
    [`busybox@${DIGEST}`, undefined],
    [`busybox:1@${DIGEST}`, undefined],
    ['sha256:abc', undefined], // docker load skips it: the name is the digest algorithm's
    ['sha256', undefined],
    ['x/sha256:1', 'docker.io/x/sha256:1'],
    [`docker.io/${HEX}:1`, `docker.io/library/${HEX}:1`], // docker load records it
  ]
  for (const [input, want] of cases) assert.equal(normalizeTag(input), want, input)
})

test('checkTaggable() refuses what docker tag refuses after parsing', () => {
  const refused = [
    'sha256',
    'sha256:1',
    'docker.io/library/sha256',
    `foo@${DIGEST}`,
    `docker.io/${HEX}`,
    `${HEX}:1`,
  ]
  for (const s of refused)
    assert.throws(
      () => {
        checkTaggable(parseReference(s))
      },
      (err: unknown) => hasCode(err, 'REFERENCE_INVALID'),
      s,
    )
  for (const s of ['busybox', 'x/sha256', `x/${HEX}`, HEX.slice(1), 'sha256x:1'])
    checkTaggable(parseReference(s))
})

test('normalizeRefName() takes a bare OCI ref.name as a tag without repository', () => {
  assert.equal(normalizeRefName('latest'), undefined)
  assert.equal(normalizeRefName('1.0'), undefined)
  assert.equal(normalizeRefName('busybox:latest'), 'docker.io/library/busybox:latest')
  assert.equal(normalizeRefName('example.com/a/b'), 'example.com/a/b:latest')
  assert.equal(normalizeRefName('foo/bar'), 'docker.io/foo/bar:latest')
  assert.equal(normalizeRefName('Foo:1'), undefined)
  assert.equal(normalizeRefName(`x@${DIGEST}`), undefined)
})

test('image IDs: the full forms, and the prefixes Docker tries after names', () => {
  assert.equal(exactImageId(HEX), DIGEST)
  assert.equal(exactImageId(DIGEST), DIGEST)
  assert.equal(exactImageId(HEX.slice(1)), undefined)
  assert.equal(exactImageId(HEX.toUpperCase()), undefined)
  assert.equal(exactImageId(`sha512:${HEX}`), undefined)

  for (const s of [
    'd',
    'dbcc',
    HEX.slice(0, 12),
    HEX,
    'sha256:d',
    `sha256:${HEX.slice(0, 12)}`,
    DIGEST,
  ])
    assert.ok(isImageIdPrefix(s), s)
  for (const s of [
    '',
    'sha256:',
    'DBCC',
    'sha256:DBCC',
    'g',
    'busybox',
    `${HEX}0`,
    'sha512:dbcc',
    ' dbcc',
  ])
    assert.ok(!isImageIdPrefix(s), s)

  assert.equal(imageIdPrefix('dbcc1'), 'sha256:dbcc1')
  assert.equal(imageIdPrefix('sha256:dbcc1'), 'sha256:dbcc1')
  assert.equal(imageIdPrefix('busybox'), undefined)
  assert.ok(DIGEST.startsWith(imageIdPrefix(HEX.slice(0, 5)) ?? 'x'))
})

test('parseImageQuery() orders the lookups as docker image inspect does', () => {
  assert.deepEqual(parseImageQuery(HEX), { kind: 'id', id: DIGEST })
  assert.deepEqual(parseImageQuery(DIGEST), { kind: 'id', id: DIGEST })
  // A short hex string is first a name (docker.io/library/dbcc1:latest), then an ID prefix.
  assert.deepEqual(parseImageQuery('dbcc1'), {
    kind: 'name',
    ref: { name: 'docker.io/library/dbcc1', familiarName: 'dbcc1', tag: 'latest' },
    idPrefix: 'sha256:dbcc1',
  })
  const short = parseImageQuery('sha256:dbcc1')
  assert.equal(
    short.kind === 'name' && formatReference(short.ref),
    'docker.io/library/sha256:dbcc1',
  )
  assert.equal(short.kind === 'name' && short.idPrefix, 'sha256:dbcc1')
  assert.deepEqual(parseImageQuery('busybox'), {
    kind: 'name',
    ref: { name: 'docker.io/library/busybox', familiarName: 'busybox', tag: 'latest' },
  })
  assert.deepEqual(parseImageQuery(`busybox@${DIGEST}`), {
    kind: 'name',
    ref: { name: 'docker.io/library/busybox', familiarName: 'busybox', digest: DIGEST },
  })
  assert.throws(
    () => parseImageQuery('DBCC1'),
    (err: unknown) => hasCode(err, 'REFERENCE_INVALID'),
  )
})

// Arbitrary references built from the grammar's pieces, so that most of them parse.
const alnum = fc.stringMatching(/^[a-z0-9]{1,4}$/)
const component = fc
  .array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--'), alnum), { maxLength: 2 })
  .chain((rest) => alnum.map((first) => first + rest.map(([s, a]) => s + a).join('')))
const domain = fc.oneof(
  fc.constantFrom('docker.io', 'index.docker.io', 'localhost', 'Example.COM', '[::1]', 'FOO'),
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,3}[a-z0-9])?(\.[a-z0-9]{1,3}){0,2}(:[0-9]{1,5})?$/),
)
const referenceLike = fc
  .record(
    {
      domain,
      path: fc.array(component, { minLength: 1, maxLength: 3 }),
      tag: fc.stringMatching(/^[\w][\w.-]{0,6}$/),
      digest: fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`),
    },
    { requiredKeys: ['path'] },
  )
  .map(
    (r) =>
      (r.domain === undefined ? '' : `${r.domain}/`) +
      r.path.join('/') +
      (r.tag === undefined ? '' : `:${r.tag}`) +
      (r.digest === undefined ? '' : `@${r.digest}`),
  )
// Mostly junk, from the characters references are made of.
const junk = fc.stringMatching(/^[a-zA-Z0-9._\-/:@[\]]{0,40}$/)

/** formatReference(parseReference(s)), or undefined when s is refused. */
function normalized(s: string): string | undefined {
  try {
    return formatReference(parseReference(s))
  } catch (err) {
    if (hasCode(err, 'REFERENCE_INVALID')) return undefined
    throw err
  }
}

test('formatReference(parseReference(x)) is a fixed point', () => {
  let parsed = 0
  fc.assert(
    fc.property(fc.oneof(referenceLike, junk), (s) => {
      const once = normalized(s)
      if (once === undefined) return
      parsed++
      assert.equal(normalized(once), once)
      assert.equal(familiarString(parseReference(once)), familiarString(parseReference(s)))
      // The familiar form is not always a way back (Docker shows docker.io/a.b/c as `a.b/c`,
      // which reads as domain `a.b`), so it is not parsed again here.
    }),
    { numRuns: 3000 },
  )
  assert.ok(parsed > 1000, `only ${String(parsed)} of 3000 inputs parsed`)
})

test('normalizeTag() is idempotent and yields tagged names only', () => {
  fc.assert(
    fc.property(fc.oneof(referenceLike, junk), (s) => {
      const t = normalizeTag(s)
      if (t === undefined) return
      assert.equal(normalizeTag(t), t)
      const ref = parseReference(t)
      assert.ok(ref.tag !== undefined && ref.digest === undefined)
    }),
    { numRuns: 2000 },
  )
})
