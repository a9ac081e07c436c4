/**
 * The `image` commands as a user runs them: separate processes on one root, archives from
 * files and from standard input, the JSON shapes of DESIGN.md's CLI contract, progress as JSON
 * lines, a help page per command, coded errors with their exit statuses, and `rw` on images.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { scratch } from '../testing/corpus.js'
import { buildDockerArchive, buildOciLayout, makeLayerTar } from '../testing/image-archive.js'
import { EXIT } from './exit-codes.js'
import { IMAGE_HELP } from './commands/image-help.js'
import { CLI_PROGRAM } from '../testing/cli-program.js'

const MAIN = CLI_PROGRAM

function cli(root: string) {
  const run = (args: string[], input?: Buffer) => {
    const r = spawnSync(process.execPath, [MAIN, '--root', root, ...args], {
      input: input ?? Buffer.alloc(0),
      maxBuffer: 1 << 28,
    })
    return { status: r.status ?? -1, out: r.stdout.toString(), err: r.stderr.toString() }
  }
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  const json = <T>(args: string[], input?: Buffer): T => {
    const r = run(['--json', ...args], input)
    assert.equal(r.status, 0, r.err)
    return JSON.parse(r.out) as T
  }
  return { run, json }
}

interface ImageJson {
  id: string
  repoTags: string[]
  layers: string[]
  diffIds: string[]
  size: number
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`

test('image load, ls, inspect, tag, save, rm across processes', async (t) => {
  const { dir, remove } = await scratch('layerstore-cli-image-')
  t.after(remove)
  const a = await makeLayerTar({ 'etc/hostname': 'box\n' })
  const b = await makeLayerTar({ 'srv/index.html': '<p>hi</p>\n' })
  const docker = await buildDockerArchive(join(dir, 'in.tar'), [
    { layers: [a, { tar: b, compression: 'gzip' }], repoTags: ['example/web:1'] },
  ])
  const { run, json } = cli(join(dir, 'root'))

  // From standard input, with progress as JSON lines on stderr.
  const r = run(['--json', 'image', 'load', '--progress=json'], readFileSync(docker.path))
  assert.equal(r.status, 0, r.err)
  const loaded = JSON.parse(r.out) as ImageJson[]
  assert.deepEqual(
    loaded.map((i) => [i.id, i.repoTags]),
    [[docker.ids[0], ['example/web:1']]],
  )
  assert.deepEqual(loaded[0]!.diffIds, [sha256(a), sha256(b)])
  const events = r.err
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { kind: string; diffId?: string })
  // Layers start and end in order; a layer may start before the one below is done (its data
  // goes to the disk meanwhile).
  const marks = events.filter((e) => e.kind !== 'layer-progress').map((e) => [e.kind, e.diffId])
  const kinds = (kind: string): unknown[] => marks.filter((m) => m[0] === kind).map((m) => m[1])
  assert.deepEqual(kinds('layer-start'), [sha256(a), sha256(b)])
  assert.deepEqual(kinds('layer-done'), [sha256(a), sha256(b)])
  assert.deepEqual(marks.at(-1), ['image-done', undefined])
  for (const d of [sha256(a), sha256(b)]) {
    const at = (kind: string): number => marks.findIndex((m) => m[0] === kind && m[1] === d)
    assert.ok(at('layer-start') < at('layer-done'), `${d}: started before done`)
  }
  assert.ok(events.some((e) => e.kind === 'layer-progress'))

  // The text forms, as Docker prints them.
  const again = run(['image', 'load', '-i', docker.path])
  assert.equal(again.status, 0, again.err)
  assert.equal(again.out, 'Loaded image: example/web:1\n')
  const ls = run(['image', 'ls'])
  assert.match(ls.out, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/)
  assert.match(ls.out, new RegExp(`example/web\\s+1\\s+${docker.ids[0]!.slice(7, 19)}`))

  const info = json<ImageJson & { config: { rootfs: { diff_ids: string[] } } }>([
    'image',
    'inspect',
    'example/web:1',
  ])
  assert.deepEqual(info.config.rootfs.diff_ids, [sha256(a), sha256(b)])
  assert.equal(json<ImageJson[]>(['image', 'ls']).length, 1)

  assert.equal(run(['image', 'tag', 'example/web:1', 'example/web:stable']).status, 0)
  assert.equal(run(['image', 'inspect', 'example/web:stable']).status, 0)

  // Layers of an image are held: `layer rm` refuses them.
  const top = info.layers.at(-1)!
  const rmLayer = run(['layer', 'rm', top])
  assert.equal(rmLayer.status, EXIT.conflict, rmLayer.err)
  assert.match(rmLayer.err, /^layerstore: LAYER_IN_USE: /)

  // Save to a file and to standard output: the same bytes; layer blobs are the exact tars.
  const out = join(dir, 'saved.tar')
  assert.equal(run(['image', 'save', 'example/web:1', '-o', out]).status, 0)
  const piped = spawnSync(process.execPath, [
    MAIN,
    '--root',
    join(dir, 'root'),
    'image',
    'save',
    'example/web:1',
  ])
  assert.equal(piped.status, 0, piped.stderr.toString())
  assert.equal(sha256(piped.stdout), sha256(readFileSync(out)))
  const other = cli(join(dir, 'root2'))
  const reloaded = other.json<ImageJson[]>(['image', 'load', '-i', out])
  assert.equal(reloaded[0]!.id, docker.ids[0])
  assert.deepEqual(reloaded[0]!.repoTags, ['example/web:1'])

  // rm: a name first, then the last name with the image and its layers.
  assert.equal(run(['image', 'rm', 'example/web:stable']).out, 'Untagged: example/web:stable\n')
  const gone = run(['image', 'rm', 'example/web:1'])
  assert.equal(gone.status, 0, gone.err)
  assert.match(gone.out, /^Untagged: example\/web:1\nDeleted: sha256:[0-9a-f]{64}\n/)
  assert.equal((gone.out.match(/^Deleted layer: /gm) ?? []).length, 2)
  assert.deepEqual(json<unknown[]>(['layer', 'ls']), [])
})

test('rw create on an image, commit as a new image', async (t) => {
  const { dir, remove } = await scratch('layerstore-cli-image-rw-')
  t.after(remove)
  const a = await makeLayerTar({ 'etc/hostname': 'box\n' })
  const oci = await buildOciLayout(join(dir, 'layout'), [{ layers: [a], repoTags: ['x/base:1'] }], {
    tar: false,
  })
  const { run, json } = cli(join(dir, 'root'))
  assert.equal(run(['image', 'load', '-i', oci.path]).status, 0)
  const created = json<{ parent: string }>(['rw', 'create', 'c1', '--parent', 'x/base:1'])
  assert.equal(created.parent, sha256(a))
  const mounted = json<{ path: string }>(['rw', 'mount', 'c1'])
  const { writeFileSync } = await import('node:fs')
  writeFileSync(join(mounted.path, 'new.txt'), 'new\n')
  assert.equal(run(['rw', 'unmount', 'c1']).status, 0)
  const committed = json<{ image: string; chainId: string }>([
    'rw',
    'commit',
    'c1',
    '--tag',
    'x/app:1',
  ])
  const app = json<ImageJson & { config: { history: { created_by: string }[] } }>([
    'image',
    'inspect',
    'x/app:1',
  ])
  assert.equal(app.id, committed.image)
  assert.equal(app.layers.length, 2)
  assert.equal(app.layers[1], committed.chainId)
  assert.equal(app.config.history.at(-1)!.created_by, 'layerstore rw commit c1')
  // The image is in use by c1: removing it by name is a conflict until c1 goes.
  const conflict = run(['image', 'rm', 'x/base:1'])
  assert.equal(conflict.status, EXIT.conflict, conflict.err)
  assert.match(conflict.err, /^layerstore: IMAGE_CONFLICT: /)
  assert.equal(run(['rw', 'rm', 'c1']).status, 0)
  assert.equal(run(['image', 'rm', 'x/base:1']).status, 0)
})

test('errors: coded, with exit statuses by kind; every command has a help page', async (t) => {
  const { dir, remove } = await scratch('layerstore-cli-image-err-')
  t.after(remove)
  const { run } = cli(join(dir, 'root'))
  const missing = run(['image', 'inspect', 'nothing:here'])
  assert.equal(missing.status, EXIT['not-found'])
  assert.match(missing.err, /^layerstore: IMAGE_DOES_NOT_EXIST: /)
  const bad = run(['image', 'inspect', 'example/UPPER'])
  assert.equal(bad.status, EXIT['invalid-argument'])
  assert.match(bad.err, /^layerstore: REFERENCE_INVALID: /)
  const notArchive = run(['image', 'load', '-i', MAIN])
  assert.equal(notArchive.status, EXIT['invalid-argument'], notArchive.err)
  const json = run(['--json', 'image', 'load', '-i', join(dir, 'nope.tar')])
  assert.notEqual(json.status, 0)
  assert.match(json.err.split('\n')[1]!, /^\{"error":\{"code":"ENOENT"/)
  assert.equal(run(['image', 'save']).status, EXIT.usage)
  assert.equal(run(['image', 'frobnicate']).status, EXIT.usage)
  for (const sub of Object.keys(IMAGE_HELP)) {
    const args = sub === '' ? ['image', '--help'] : ['image', sub, '--help']
    const h = run(args)
    assert.equal(h.status, 0)
    assert.equal(h.out, IMAGE_HELP[sub])
    assert.match(h.out, /^NAME\n[\s\S]*SYNOPSIS\n[\s\S]*DESCRIPTION\n[\s\S]*EXIT STATUS\n/)
  }
})

test('the program runs as itself, with the heap options of its first line', () => {
  // As the installed `bin` runs: the kernel reads the first line, env starts node with it.
  const r = spawnSync(MAIN, ['image', '--help'], {
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
  })
  assert.equal(r.status, 0, r.stderr.toString())
  assert.equal(r.stdout.toString(), IMAGE_HELP[''])
  assert.match(readFileSync(MAIN, 'latin1').split('\n')[0]!, /^#!\/usr\/bin\/env -S node --/)
})

test('--version: the version of package.json, plain and as JSON', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  const { run } = cli('unused')
  const plain = run(['--version'])
  assert.equal(plain.status, 0, plain.err)
  assert.equal(plain.out, `layerstore ${pkg.version}\n`)
  const json = run(['--json', 'version'])
  assert.equal(json.status, 0, json.err)
  const info = JSON.parse(json.out) as Record<string, string>
  assert.deepEqual(info, {
    version: pkg.version,
    node: process.versions.node,
    platform: process.platform,
    arch: process.arch,
  })
})
