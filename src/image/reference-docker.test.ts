/**
 * The reference table against a real Docker: every case goes through `docker tag`, whose client
 * parses the target with Docker's reference package and whose daemon records the tag; the
 * image's `RepoTags` then show the familiar form Docker made of it. Also the order in which
 * `docker image inspect` tries names and image ID prefixes.
 *
 * The Docker here is Debian's docker.io (20.10), built on an older copy of the reference
 * package than the one parseReference follows; the cases where the two differ are listed in
 * OLDER_PACKAGE_DIFFERS and left out.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { DockerSession, tarBytes } from '../testing/docker-session.js'
import { dockerdUnavailable, type Dockerd } from '../testing/dockerd.js'
import { DIGEST, HEX, INVALID_REFERENCES, VALID_REFERENCES } from '../testing/reference-cases.js'
import {
  checkTaggable,
  familiarString,
  formatReference,
  parseImageQuery,
  parseReference,
  withDefaultTag,
} from './reference.js'

/** Inputs on which Docker 20.10's copy of the reference package differs from today's. */
const OLDER_PACKAGE_DIFFERS: ReadonlyMap<string, string> = new Map([
  ['[fc00::1]:5000/docker', 'IPv6 domains came later'],
  ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', 'IPv6 domains came later'],
  ['[::1]/x', 'IPv6 domains came later'],
  ['Docker/docker', 'an upper-case first element was not yet a domain'],
  ['FOO/bar:Tag', 'an upper-case first element was not yet a domain'],
  [`x@sha512:${HEX}${HEX}`, 'Docker takes sha512 digests; this store has sha256 only'],
])

type Verdict = 'refused' | 'digest' | 'untaggable' | { readonly tag: string }

/** What parseReference and checkTaggable make of `s`, in `docker tag`'s terms. */
function ours(s: string): Verdict {
  let ref
  try {
    ref = parseReference(s)
  } catch {
    return 'refused'
  }
  if (ref.digest !== undefined) return 'digest'
  try {
    checkTaggable(ref)
  } catch {
    return 'untaggable'
  }
  return { tag: familiarString(withDefaultTag(ref)) }
}

async function repoTags(d: Dockerd, image: string): Promise<Set<string>> {
  const { stdout } = await d.docker(['image', 'inspect', '--format', '{{json .RepoTags}}', image])
  return new Set(JSON.parse(stdout.toString()) as string[])
}

async function importEmptyImage(d: Dockerd, tag: string, label: string): Promise<string> {
  const { stdout } = await d.docker(
    ['import', '--change', `LABEL seed=${label}`, '-', tag],
    await tarBytes([]),
  )
  return stdout.toString().trim()
}

test(
  "Docker's docker tag parses and normalizes the reference table as parseReference does",
  { skip: dockerdUnavailable('vfs') ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const d = await s.dockerd(join(s.dir, 'root'), { driver: 'vfs' })
    const id = await importEmptyImage(d, 'seed:1', 'a')
    let before = await repoTags(d, id)
    const inputs = [...VALID_REFERENCES.map(([input]) => input), ...INVALID_REFERENCES].filter(
      (input) => !OLDER_PACKAGE_DIFFERS.has(input),
    )
    const disagreements: string[] = []
    for (const input of inputs) {
      let theirs: Verdict
      try {
        await d.docker(['tag', '--', id, input])
        const after = await repoTags(d, id)
        const added = [...after].filter((tag) => !before.has(tag))
        before = after
        const want = ours(input)
        // A tag recorded before (two inputs with one normal form) adds nothing.
        theirs = { tag: added.length === 0 && typeof want === 'object' ? want.tag : added.join() }
      } catch (err) {
        const message = String(err)
        if (message.includes('Error parsing reference')) theirs = 'refused'
        else if (message.includes('digest reference')) theirs = 'digest'
        else if (/ambiguous tag|64-byte hexadecimal/.test(message)) theirs = 'untaggable'
        else throw err
      }
      const mine = ours(input)
      if (JSON.stringify(mine) !== JSON.stringify(theirs))
        disagreements.push(
          `${input}: ours ${JSON.stringify(mine)}, Docker's ${JSON.stringify(theirs)}`,
        )
    }
    assert.deepEqual(disagreements, [])
    assert.ok(before.size > 30, `only ${String(before.size)} tags recorded`)
  },
)

test(
  'docker image inspect tries names, then ID prefixes of any length, as parseImageQuery says',
  { skip: dockerdUnavailable('vfs') ?? false },
  async (t) => {
    const s = new DockerSession(t)
    const d = await s.dockerd(join(s.dir, 'root'), { driver: 'vfs' })
    const a = await importEmptyImage(d, 'a:1', 'a')
    const b = await importEmptyImage(d, 'b:1', 'b')
    assert.notEqual(a, b)
    const inspect = async (what: string): Promise<string> =>
      (await d.docker(['image', 'inspect', '--format', '{{.Id}}', '--', what])).stdout
        .toString()
        .trim()

    // Image b tagged with the first six digits of a's ID: as a name, it wins over the prefix.
    const aHex = a.slice('sha256:'.length)
    const short = aHex.slice(0, 6)
    await d.docker(['tag', b, short])
    const q = parseImageQuery(short)
    assert.ok(q.kind === 'name')
    assert.equal(formatReference(q.ref), `docker.io/library/${short}:latest`)
    assert.equal(q.idPrefix, `sha256:${short}`)
    assert.equal(await inspect(short), b)

    // Untagged, the same digits find a by its ID; so do a single digit and sha256:<digits>,
    // where only a starts with them.
    await d.docker(['rmi', short])
    assert.equal(await inspect(short), a)
    const bHex = b.slice('sha256:'.length)
    let n = 1
    while (aHex.slice(0, n) === bHex.slice(0, n)) n++
    for (const prefix of [aHex.slice(0, n), `sha256:${aHex.slice(0, n)}`, aHex, a]) {
      assert.equal(await inspect(prefix), a, prefix)
      const query = parseImageQuery(prefix)
      const idPrefix = query.kind === 'id' ? query.id : query.idPrefix
      assert.ok(idPrefix !== undefined && a.startsWith(idPrefix), prefix)
    }

    // A 64-hex string or sha256:<64 hex> is an ID only, never looked up as a name.
    await assert.rejects(inspect(HEX), /No such image/)
    await assert.rejects(inspect(DIGEST), /No such image/)
    assert.deepEqual(parseImageQuery(HEX), { kind: 'id', id: DIGEST })
    // Upper-case hex is no name, so never gets to the ID prefix either.
    await assert.rejects(inspect('ABCDEF'), /must be lowercase/)
    assert.throws(() => parseImageQuery('ABCDEF'))
  },
)
