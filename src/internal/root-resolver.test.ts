import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RootResolver } from './root-resolver.js'
import { scratchFor } from '../testing/corpus.js'

/**
 * Names against the root-relative host paths they must resolve to (followLast false), or the
 * error they must raise, in a tree with symlinked directories (relative, absolute, climbing
 * out), a file used as a directory and missing directories.
 */
const CASES: [string, string | RegExp][] = [
  ['usr/bin/env', 'usr/bin/env'],
  ['./usr/bin/env', 'usr/bin/env'],
  ['usr//bin/env', 'usr/bin/env'],
  ['usr/bin/', 'usr/bin'],
  ['usr/bin/../lib/x', 'usr/lib/x'],
  ['usr/bin/..', 'usr'],
  ['..', ''],
  ['bin/env', 'usr/bin/env'], // bin -> usr/bin
  ['abs/env', 'usr/bin/env'], // abs -> /usr/bin
  ['out/etc/passwd', 'etc/passwd'], // out -> ../../.. stays at the root
  ['out/../../usr/bin/env', 'usr/bin/env'],
  ['bin', 'bin'], // the last component is not followed
  ['usr/bin/env/x', /ENOTDIR|Not a directory/],
  ['loop/x', /ELOOP|symbolic links/],
  ['missing/dir/file', 'missing/dir/file'],
  ['dangling/file', 'nowhere/file'], // dangling -> nowhere
  ['env', 'env'],
]

async function tree(root: string): Promise<void> {
  await mkdir(join(root, 'usr/bin'), { recursive: true })
  await mkdir(join(root, 'usr/lib'), { recursive: true })
  await mkdir(join(root, 'etc'))
  await writeFile(join(root, 'usr/bin/env'), '')
  await symlink('usr/bin', join(root, 'bin'))
  await symlink('/usr/bin', join(root, 'abs'))
  await symlink('../../..', join(root, 'out'))
  await symlink('loop', join(root, 'loop'))
  await symlink('nowhere', join(root, 'dangling'))
}

async function check(
  resolver: RootResolver,
  root: string,
  [name, want]: [string, string | RegExp],
) {
  const known = resolver.resolveKnown(Buffer.from(name))
  const got = resolver.resolve(Buffer.from(name), false)
  if (want instanceof RegExp) {
    assert.equal(known, undefined, `${name}: an error is never known in advance`)
    await assert.rejects(got, want, name)
  } else {
    const host = want === '' ? root : join(root, want)
    assert.equal((await got).toString(), host, name)
    if (known !== undefined) assert.equal(known.toString(), host, `${name} (known)`)
  }
  return known !== undefined
}

test('RootResolver: names resolve inside the root, the same with its directory cache warm or cold, in any order', async (t) => {
  const root = await scratchFor(t)
  await tree(root)
  for (const sync of [false, true]) {
    for (const c of CASES) await check(new RootResolver(root, { sync }), root, c)
    const shared = new RootResolver(root, { sync })
    let known = 0
    for (const c of [...CASES, ...CASES.toReversed(), ...CASES])
      if (await check(shared, root, c)) known++
    assert.ok(known >= CASES.length, `${known} names resolved from a known directory`)
  }
})
