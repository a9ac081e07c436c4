/**
 * Image references with what Docker's reference package makes of them, shared by the parser's
 * tests (src/image/reference.test.ts) and the comparison with a real Docker
 * (src/image/reference-docker.test.ts). Cases come from the package's documented behaviour and
 * its own test tables (normalize_test.go), written out here by hand.
 */

export const HEX = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c'
export const DIGEST = `sha256:${HEX}`

/** [input, full form, familiar form], as ParseNormalizedNamed and FamiliarString give them. */
export const VALID_REFERENCES: readonly (readonly [string, string, string])[] = [
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
export const INVALID_REFERENCES: readonly string[] = [
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
