import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { hasCode } from '../errors.js'
import {
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

const HEX = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c'
const DIGEST = `sha256:${HEX}`

/** input → [full form, familiar form], as Docker's ParseNormalizedNamed / FamiliarString give them. */
const VALID: readonly (readonly [string, string, string])[] = [
  ['busybox', 'docker.io/library/busybox', 'busybox'],
  ['busybox:latest', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['library/debian', 'docker.io/library/debian', 'debian'],
  ['docker.io/busybox', 'docker.io/library/busybox', 'busybox'],
  ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['docker/docker', 'docker.io/docker/docker', 'docker/docker'],
  ['foo/bar:1', 'docker.io/foo/bar:1', 'foo/bar:1'],
  ['docker.io/library/foo/bar', 'docker.io/library/foo/bar', 'library/foo/bar'],
  ['store/foo/bar', 'docker.io/store/foo/bar', 'store/foo/bar'],
  ['other/library', 'docker.io/other/library', 'other/library'],
  // The legacy index domain is Docker Hub.
  ['index.docker.io/debian', 'docker.io/library/debian', 'debian'],
  ['index.docker.io/docker/docker', 'docker.io/docker/docker', 'docker/docker'],
  ['localhost/x', 'localhost/x', 'localhost/x'],
  ['localhost:5000/x:y', 'localhost:5000/x:y', 'localhost:5000/x:y'],
  [
    '127.0.0.1:5000/library/debian',
    '127.0.0.1:5000/library/debian',
    '127.0.0.1:5000/library/debian',
  ],
  ['example.com/privatebase', 'example.com/privatebase', 'example.com/privatebase'],
  [
    'example.com:8000/private/moonbase',
    'example.com:8000/private/moonbase',
    'example.com:8000/private/moonbase',
  ],
  ['test-com:8080/foo', 'test-com:8080/foo', 'test-com:8080/foo'],
  ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080/foo', 'xn--n3h.com:18080/foo'],
  ['[fc00::1]:5000/docker', '[fc00::1]:5000/docker', '[fc00::1]:5000/docker'],
  [
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian',
  ],
  ['[::1]/x', '[::1]/x', '[::1]/x'],
  // An upper-case first element is a domain (paths are lower case), kept as written.
  ['Docker/docker', 'Docker/docker', 'Docker/docker'],
  ['FOO/bar:Tag', 'FOO/bar:Tag', 'FOO/bar:Tag'],
  ['Example.COM/foo', 'Example.COM/foo', 'Example.COM/foo'],
  // Without a slash there is no domain: these are names, ports read as tags.
  ['192.168.0.1', 'docker.io/library/192.168.0.1', '192.168.0.1'],
  ['192.168.0.1:80', 'docker.io/library/192.168.0.1:80', '192.168.0.1:80'],
  ['latest', 'docker.io/library/latest', 'latest'],
  ['sha256:abc', 'docker.io/library/sha256:abc', 'sha256:abc'],
  // `test_com` is no domain (no `.` or `:`): a path element on Docker Hub.
  ['test_com/foo', 'docker.io/test_com/foo', 'test_com/foo'],
  // `a_b.c` looks like a domain but is none; the grammar takes it as a path without domain.
  ['a_b.c/x', 'a_b.c/x', 'a_b.c/x'],
  ['a.b_c-d/e', 'a.b_c-d/e', 'a.b_c-d/e'],
  // Docker's familiar form of docker.io/a.b/c is `a.b/c`, which would read back as domain a.b.
  ['docker.io/a.b/c', 'docker.io/a.b/c', 'a.b/c'],
  // Separators: one `.`, one or two `_`, any number of `-`.
  ['dock__er/docker', 'docker.io/dock__er/docker', 'dock__er/docker'],
  ['docker---rules/docker', 'docker.io/docker---rules/docker', 'docker---rules/docker'],
  ['a/b.c_d-e', 'docker.io/a/b.c_d-e', 'a/b.c_d-e'],
  ['d/docker', 'docker.io/d/docker', 'd/docker'],
  // A 64-hex string is a name once it has a domain or a tag.
  [`docker.io/${HEX}`, `docker.io/library/${HEX}`, HEX],
  [`${HEX}:1`, `docker.io/library/${HEX}:1`, `${HEX}:1`],
  [HEX.slice(0, 63), `docker.io/library/${HEX.slice(0, 63)}`, HEX.slice(0, 63)],
  // Tags: word characters, `.` and `-`, upper case allowed, 128 at most.
  ['x:_t', 'docker.io/library/x:_t', 'x:_t'],
  ['x:V1.2-rc_3', 'docker.io/library/x:V1.2-rc_3', 'x:V1.2-rc_3'],
  [`x:${'t'.repeat(128)}`, `docker.io/library/x:${'t'.repeat(128)}`, `x:${'t'.repeat(128)}`],
  // Digests, with or without a tag.
  [`redis@${DIGEST}`, `docker.io/library/redis@${DIGEST}`, `redis@${DIGEST}`],
  [`foo/bar@${DIGEST}`, `docker.io/foo/bar@${DIGEST}`, `foo/bar@${DIGEST}`],
  [
    `busybox:latest@${DIGEST}`,
    `docker.io/library/busybox:latest@${DIGEST}`,
    `busybox:latest@${DIGEST}`,
  ],
  [
    `localhost:5000/a/b:c@${DIGEST}`,
    `localhost:5000/a/b:c@${DIGEST}`,
    `localhost:5000/a/b:c@${DIGEST}`,
  ],
  [`sha256:${HEX}`, `docker.io/library/sha256:${HEX}`, `sha256:${HEX}`],
]

/** Inputs ParseNormalizedNamed refuses. */
const INVALID: readonly string[] = [
  '',
  'Busybox',
  'busybox:latest/x',
  'docker/Docker',
  'docker.io/docker/Docker',
  'docker.io/Library/busybox',
  'https://github.com/docker/docker',
  '-docker',
  '-docker/docker',
  'docker-/docker',
  '-docker-/docker',
  '-docker.io/docker/docker',
  'docker///docker',
  'docker.io/docker///docker',
  'docker/',
  '/docker',
  '____/____',
  '_docker/_docker',
  'dock..er/docker',
  'dock_.er/docker',
  'dock-.er/docker',
  'dock___er/docker',
  '[fc00::1]',
  '[fc00::1]:5000',
  'fc00::1:5000/debian',
  '[fe80::1%eth0]:5000/debian',
  '[2001:db8:3:4::192.0.2.33]:5000/debian',
  'localhost:port/x',
  'example.com:/x',
  HEX,
  'x:',
  'x:-t',
  'x:.t',
  `x:${'t'.repeat(129)}`,
  'x:a:b',
  'x@',
  `@${DIGEST}`,
  'x@sha256:abc',
  `x@sha256:${HEX.toUpperCase()}`,
  `x@sha512:${HEX}${HEX}`, // valid for Docker; this store has sha256 only
  `x@md5:${HEX.slice(0, 32)}`,
  'x y',
  ' x',
  'x\n',
  'ünïcode',
  `${'a/'.repeat(127)}ab`, // a path of 256 characters
]

test('parseReference() reads the grammar and normalizes names as Docker does', () => {
  for (const [input, full, familiar] of VALID) {
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
  for (const input of INVALID) {
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
  ]
  for (const [input, want] of cases) assert.equal(normalizeTag(input), want, input)
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
