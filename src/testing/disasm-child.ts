/**
 * Child process for tests that watch memory: disassembles a tar (a file, `-` for stdin, or a
 * `.gz` file, gunzipped on the fly) into tar-split metadata in a scratch file and prints one
 * JSON line with the outcome and the peak resident memory of this process.
 * Usage: node dist/testing/disasm-child.js FILE|-
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGunzip } from 'node:zlib'
import { disassembleTo } from '../tarsplit/disassemble.js'
import { JsonPacker } from '../tarsplit/packer.js'

const file = process.argv[2] ?? '-'
const dir = await mkdtemp(join(tmpdir(), 'layerstore-child-'))
const packer = new JsonPacker(createWriteStream(join(dir, 'meta.json.gz')))
let out: Record<string, unknown>
try {
  const raw = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 })
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw
  const r = await disassembleTo(input, packer, { digest: true })
  await packer.close()
  out = { ok: true, files: r.files, size: r.size, diffId: r.diffId }
} catch (err) {
  packer.destroy()
  const e = err as { code?: unknown; message?: unknown; offset?: unknown }
  out = {
    ok: false,
    code: e.code ?? 'UNCODED',
    message: String(e.message ?? err),
    offset: e.offset,
  }
}
await rm(dir, { recursive: true, force: true })
out['maxRssKb'] = process.resourceUsage().maxRSS
process.stdout.write(JSON.stringify(out) + '\n')
