/**
 * tar-split interoperability with Go's tool on every archive of the shared corpus:
 * (a) our metadata assembled by Go gives the original bytes, (b) Go's metadata assembled by
 * us gives the original bytes, (c) our metadata equals Go's line for line. Where Go fails an
 * archive, we fail it too or do better, and the test says which.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { join } from 'node:path'
import {
  corpusDir,
  HUGE_SPARSE,
  hasCorpus,
  manifest,
  scratch,
  uncompressedPath,
  type ManifestRow,
} from '../testing/corpus.js'
import { goAsm, goDisasm, hasGoTarSplit } from '../testing/gotarsplit.js'
import { extractPayloads } from '../testing/extract-payloads.js'
import { disassembleFile } from './disassemble.js'
import { JsonPacker } from './packer.js'
import { unpack } from './unpacker.js'
import { assembleToFile } from './assemble.js'
import { PathFileGetter } from './file-getter.js'
import { sha256Stream } from '../digest/hash.js'
import { cleanPath } from './clean-path.js'
import { readTar } from '../tar/reader.js'

const skipAll = !hasCorpus()
  ? 'shared corpus not found'
  : !hasGoTarSplit()
    ? 'Go tar-split not installed'
    : false

const rows: ManifestRow[] = hasCorpus()
  ? manifest().filter(
      (r) => (r.category === 'conformance' || r.category === 'layer') && r.file !== undefined,
    )
  : []

function lines(gz: string): string[] {
  return gunzipSync(readFileSync(gz))
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
}

/**
 * Go 0.11.2 (Debian) reads what follows the archive in one piece and always records it, even
 * empty; Docker's 0.12 and we record it in 1 MiB pieces, none when empty. Compare on that basis.
 */
function normaliseTrailing(ls: string[]): string[] {
  const out = [...ls]
  const last = out.at(-1)
  if (last !== undefined && /^\{"type":2,"payload":"","position":\d+\}$/.test(last)) out.pop()
  return out
}

async function ours(
  tar: string,
  meta: string,
): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
  const packer = new JsonPacker(createWriteStream(meta), { level: 6 })
  try {
    // disassembleFile: recycled read buffers in the checksum module's memory (the CLI's path).
    await disassembleFile(tar, packer)
    await packer.close()
    return { ok: true }
  } catch (err) {
    packer.destroy()
    const e = err as { code?: string; message?: string }
    return { ok: false, code: e.code ?? 'UNCODED', message: e.message ?? String(err) }
  }
}

async function ourAsm(meta: string, root: string, out: string): Promise<string | undefined> {
  try {
    // assembleToFile: batches in the checksum module's memory (the CLI's path).
    await assembleToFile(unpack(createReadStream(meta)), new PathFileGetter(root), out)
    return undefined
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

function sameFile(a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b))
  } catch {
    return false
  }
}

async function escapes(tar: string): Promise<boolean> {
  for await (const e of readTar(createReadStream(tar))) {
    const c = cleanPath(e.header.nameRaw.toString('latin1'))
    if (c === '..' || c.startsWith('../')) return true
  }
  return false
}

for (const row of rows) {
  const name = row.file!
  const goResult = row.tar_split?.['debian-0.11.2']?.result
  test(
    `tar-split conformance: ${name}`,
    { skip: skipAll || (HUGE_SPARSE.has(name) ? 'expands to tens of GB' : false) },
    async (t) => {
      const s = await scratch()
      t.after(s.remove)
      const tar = await uncompressedPath(row, s.dir)

      // The DiffID is the sha256 of the uncompressed stream.
      const { digest, size } = await sha256Stream(createReadStream(tar))
      assert.equal(digest, row.diff_id)
      assert.equal(size, row.uncompressed_size)

      const goMeta = join(s.dir, 'go.json.gz')
      const ourMeta = join(s.dir, 'ours.json.gz')
      const go = goDisasm(tar, goMeta)
      const me = await ours(tar, ourMeta)

      if (!go.ok) {
        // Go refuses it: so must we (Docker could not register it either).
        assert.equal(me.ok, false, `Go fails (${go.stderr}) but we accepted ${name}`)
        t.diagnostic(`both refuse: Go "${go.stderr.replace(/^.*msg=/, '')}", ours ${me.code}`)
        return
      }
      if (!me.ok) {
        // Only where Docker's tar-split (0.12) refuses too: PAX/GNU headers over 1 MiB.
        assert.equal(
          row.tar_split?.['upstream-0.12.1']?.result,
          'disasm-error',
          `we fail (${me.code}: ${me.message}) where Go accepts`,
        )
        assert.equal(me.code, 'TAR_FIELD_TOO_LONG')
        t.diagnostic(`Debian's 0.11.2 accepts, Docker's 0.12.1 and we refuse: ${me.code}`)
        return
      }

      // (c) metadata line for line.
      assert.deepEqual(normaliseTrailing(lines(ourMeta)), normaliseTrailing(lines(goMeta)))

      if (await escapes(tar)) {
        t.diagnostic('names climb out of the root: assembly from a directory not compared')
        return
      }
      const root = join(s.dir, 'root')
      await extractPayloads(tar, root)
      // (a) ours assembled by Go, (b) Go's assembled by us.
      const outA = join(s.dir, 'a.tar')
      const outB = join(s.dir, 'b.tar')
      const goAsmRun = goAsm(ourMeta, root, outA)
      const ourAsmErr = await ourAsm(goMeta, root, outB)
      const a = goAsmRun.ok && sameFile(outA, tar)
      const b = ourAsmErr === undefined && sameFile(outB, tar)
      if (goResult === 'identical') {
        assert.ok(a, `Go's asm of our metadata differs: ${goAsmRun.stderr}`)
        assert.ok(b, `our asm of Go's metadata differs: ${ourAsmErr ?? 'different bytes'}`)
      } else {
        // Files on disk cannot reproduce it (sparse encodings, directories with data): neither can.
        assert.equal(a, false)
        assert.equal(b, false)
        t.diagnostic(
          `not reproducible from files, as with Go (${goResult ?? 'unknown'}); ours: ${ourAsmErr ?? 'different bytes'}`,
        )
      }
    },
  )
}

test(
  'tar-split conformance: kept Docker (0.12.1) metadata equals ours',
  { skip: skipAll },
  async (t) => {
    const kept = rows.filter((r) => typeof r.tar_split?.['upstream-0.12.1']?.json === 'string')
    assert.ok(kept.length > 0)
    for (const row of kept) {
      const s = await scratch()
      t.after(s.remove)
      const tar = await uncompressedPath(row, s.dir)
      const meta = join(s.dir, 'ours.json.gz')
      const me = await ours(tar, meta)
      assert.ok(me.ok, row.file)
      const theirs = lines(join(corpusDir(), row.tar_split!['upstream-0.12.1']!.json!))
      assert.deepEqual(lines(meta), theirs, row.file)
    }
  },
)
