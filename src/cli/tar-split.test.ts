import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { scratch } from '../testing/corpus.js'
import { END, fileEntry, headerBlock } from '../testing/make-tar.js'
import { EXIT } from './exit-codes.js'
import { CLI_PROGRAM } from '../testing/cli-program.js'

const MAIN = CLI_PROGRAM
const cli = (args: string[], input?: Buffer) =>
  spawnSync(process.execPath, [MAIN, ...args], {
    input: input ?? Buffer.alloc(0),
    maxBuffer: 1 << 26,
  })

const tar = Buffer.concat([
  headerBlock({ name: 'd/', typeflag: '5' }),
  fileEntry('d/f', 'data\n'),
  END,
])

test('cli: tar-split disasm passes stdin through to stdout and writes the metadata', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const meta = join(s.dir, 'm.json.gz')
  const r = cli(['tar-split', 'disasm', '-o', meta, '-'], tar)
  assert.equal(r.status, 0, r.stderr.toString())
  assert.deepEqual(r.stdout, tar)
  const lines = gunzipSync(await readFile(meta))
    .toString()
    .trim()
    .split('\n')
  assert.equal(lines.length, 5)
  assert.equal(lines[1], '{"type":1,"name":"d/","payload":null,"position":1}')
  assert.equal(
    lines[3],
    '{"type":1,"name":"d/f","size":5,"payload":"' +
      (JSON.parse(lines[3]!) as { payload: string }).payload +
      '","position":3}',
  )
})

test('cli: tar-split asm rebuilds the tar from metadata and files', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const file = join(s.dir, 'in.tar')
  const meta = join(s.dir, 'm.json.gz')
  await writeFile(file, tar)
  assert.equal(cli(['tar-split', 'disasm', '--no-stdout', '--output', meta, file]).status, 0)
  await mkdir(join(s.dir, 'root', 'd'), { recursive: true })
  await writeFile(join(s.dir, 'root', 'd', 'f'), 'data\n')
  const out = join(s.dir, 'out.tar')
  const r = cli(['tar-split', 'asm', '--input', meta, '--path', join(s.dir, 'root'), '-o', out])
  assert.equal(r.status, 0, r.stderr.toString())
  assert.deepEqual(await readFile(out), tar)
  // To stdout as well.
  const r2 = cli(['tar-split', 'asm', '-i', meta, '-p', join(s.dir, 'root')])
  assert.deepEqual(r2.stdout, tar)
  // A missing file: a coded error and the data-loss exit status.
  await writeFile(join(s.dir, 'root', 'd', 'f'), 'changed')
  const r3 = cli(['tar-split', 'asm', '-i', meta, '-p', join(s.dir, 'root'), '-o', out])
  assert.equal(r3.status, EXIT['data-loss'])
  assert.match(r3.stderr.toString(), /^layerstore: TARSPLIT_FILE_INTEGRITY: .*"d\/f"/)
})

test('cli: a bad tar gives "layerstore: CODE: message", the kind\'s exit status, and JSON with --json', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const bad = Buffer.concat([fileEntry('a', 'x'), headerBlock({ name: 'b', checksum: false }), END])
  const r = cli(
    ['--json', 'tar-split', 'disasm', '--no-stdout', '-o', join(s.dir, 'm.json.gz'), '-'],
    bad,
  )
  assert.equal(r.status, EXIT['invalid-argument'])
  const [line, json] = r.stderr.toString().trim().split('\n')
  assert.match(line!, /^layerstore: TAR_BAD_CHECKSUM: .*\(at byte 1024\)$/)
  assert.equal((JSON.parse(json!) as { error: { code: string } }).error.code, 'TAR_BAD_CHECKSUM')
})

test('cli: usage errors exit with status 2', () => {
  assert.equal(cli(['no-such-command']).status, EXIT.usage)
  assert.equal(cli(['tar-split', 'asm']).status, EXIT.usage)
  assert.equal(cli(['tar-split', 'frobnicate']).status, EXIT.usage)
  const unknown = cli(['tar-split', 'disasm', '--bogus'])
  assert.equal(unknown.status, EXIT.usage)
  assert.match(unknown.stderr.toString(), /^layerstore: USAGE: /)
  const help = cli(['tar-split', '--help'])
  assert.equal(help.status, 0)
  assert.match(help.stdout.toString(), /tar-split disasm/)
})
