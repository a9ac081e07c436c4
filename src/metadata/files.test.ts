import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  goJson,
  isValidId,
  parseCacheIdText,
  parseDescriptorText,
  parseDigestText,
  ParseError,
  parseIdText,
  parseSizeText,
  pathComponentProblem,
  readSmallFile,
  trimSpace,
} from './files.js'

const HEX = 'a'.repeat(64)

test('trimSpace trims what Go strings.TrimSpace trims, not what String.trim trims', () => {
  assert.equal(trimSpace(' \t\n\v\f\rx\n'), 'x')
  assert.equal(trimSpace('\u0085x\u00a0\u3000'), 'x') // NEL is space in Go, not in JavaScript
  assert.equal(trimSpace('\ufeffx'), '\ufeffx') // a BOM is not space in Go
  assert.equal(trimSpace('a b'), 'a b')
})

test('isValidId is Docker isValidID (TestIsValidID)', () => {
  const valid = '1234567890abcdef'.repeat(4)
  assert.ok(isValidId(valid))
  assert.ok(isValidId(`${valid}-init`))
  for (const bad of [
    '1234567890abcdef', // 16 characters
    `${valid}ab`, // 66 characters
    `${valid.slice(0, 63)}F`, // uppercase
    `${valid.slice(0, 63)}g`, // not hex
    '',
    '-init',
    `${valid}-init-init`,
    `${valid}\n`, // the trimming is the reader's job
  ])
    assert.ok(!isValidId(bad), bad)
})

test('digest files are trimmed, then must be sha256:<64 lowercase hex>', () => {
  assert.equal(parseDigestText(`sha256:${HEX}`), `sha256:${HEX}`)
  assert.equal(parseDigestText(`  sha256:${HEX}\n`), `sha256:${HEX}`)
  for (const bad of [
    '',
    HEX,
    `sha256:${HEX.toUpperCase()}`,
    `sha512:${HEX}`,
    `sha256:${HEX}0`,
    `sha256:${HEX} x`,
  ])
    assert.throws(() => parseDigestText(bad), ParseError, bad)
})

test('size: decimal digits, surrounding whitespace accepted (Docker rejects a newline)', () => {
  assert.equal(parseSizeText('0'), 0)
  assert.equal(parseSizeText('12345'), 12345)
  assert.equal(parseSizeText('12345\n'), 12345)
  assert.equal(parseSizeText(' 7 \r\n'), 7)
  assert.equal(parseSizeText('007'), 7) // strconv.ParseInt accepts leading zeros
  assert.equal(parseSizeText(String(Number.MAX_SAFE_INTEGER)), Number.MAX_SAFE_INTEGER)
  for (const bad of ['', '\n', 'abc', '1 2', '-1', '+1', '1e3', '0x10', '1.5', '9007199254740992'])
    assert.throws(() => parseSizeText(bad), ParseError, JSON.stringify(bad))
})

test('cache-id: trimmed, non-empty, one path component', () => {
  assert.equal(parseCacheIdText(`${HEX}\n`), HEX)
  assert.equal(parseCacheIdText('anything-a-driver-uses'), 'anything-a-driver-uses')
  assert.throws(() => parseCacheIdText(' \n'), /invalid cache id value: empty/)
  for (const bad of ['..', '.', '../../etc', 'a/b', 'a\0b'])
    assert.throws(() => parseCacheIdText(bad), ParseError, bad)
})

test('mount-id and init-id are trimmed, then checked with isValidId', () => {
  assert.equal(parseIdText(`${HEX}\n`, 'mount'), HEX)
  assert.equal(parseIdText(`${HEX}-init`, 'init'), `${HEX}-init`)
  assert.throws(() => parseIdText('abc', 'mount'), /invalid mount id value "abc"/)
  assert.throws(() => parseIdText('', 'init'), /invalid init id value/)
})

test('descriptor.json: an object, kept verbatim; null is none; anything else is an error', () => {
  const d = { mediaType: 'application/x', size: 3, digest: `sha256:${HEX}`, urls: ['u'] }
  assert.deepEqual(parseDescriptorText(JSON.stringify(d)), d)
  assert.equal(parseDescriptorText('null'), undefined)
  for (const bad of ['', '{', '[]', '"x"', '3', '{"a":1} x'])
    assert.throws(() => parseDescriptorText(bad), ParseError, bad)
})

test('goJson escapes as Go json.Marshal does', () => {
  assert.equal(goJson({ a: '<&>', b: 1 }), '{"a":"\\u003c\\u0026\\u003e","b":1}')
  assert.equal(goJson({ s: '\u2028\u2029' }), '{"s":"\\u2028\\u2029"}')
})

test('pathComponentProblem refuses what cannot be one path component', () => {
  assert.equal(pathComponentProblem('some-mount_name'), undefined)
  assert.equal(pathComponentProblem('é'.repeat(127)), undefined) // 254 bytes
  for (const bad of ['', '.', '..', 'a/b', '/', 'a\0', 'é'.repeat(128), 'x\ud800', '\udc00'])
    assert.notEqual(pathComponentProblem(bad), undefined, JSON.stringify(bad))
})

test('readSmallFile: missing is undefined; oversized, non-UTF-8, directories, symlinks, fifos fail', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-files-'))
  t.after(() => rmSync(dir, { recursive: true }))
  assert.equal(await readSmallFile(join(dir, 'nope')), undefined)
  writeFileSync(join(dir, 'ok'), 'héllo')
  assert.equal(await readSmallFile(join(dir, 'ok')), 'héllo')
  writeFileSync(join(dir, 'big'), Buffer.alloc(100, 0x31))
  assert.equal(await readSmallFile(join(dir, 'big'), 100), '1'.repeat(100))
  await assert.rejects(readSmallFile(join(dir, 'big'), 99), /larger than 99 bytes/)
  writeFileSync(join(dir, 'latin1'), Buffer.from([0x61, 0xe9]))
  await assert.rejects(readSmallFile(join(dir, 'latin1')), /not UTF-8/)
  writeFileSync(join(dir, 'bom'), `\ufeffsha256:${HEX}`)
  const bom = await readSmallFile(join(dir, 'bom'))
  assert.equal(bom, `\ufeffsha256:${HEX}`) // the BOM is kept, so the digest fails, as in Go
  assert.throws(() => parseDigestText(bom), ParseError)
  mkdirSync(join(dir, 'sub'))
  await assert.rejects(readSmallFile(join(dir, 'sub')), /is a directory/)
  symlinkSync('ok', join(dir, 'link'))
  await assert.rejects(readSmallFile(join(dir, 'link')), /symbolic link/)
  execFileSync('mkfifo', [join(dir, 'fifo')]) // would block a plain open forever
  await assert.rejects(readSmallFile(join(dir, 'fifo')), /not a regular file/)
})
