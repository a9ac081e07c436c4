/**
 * `layerstore tar-split disasm|asm`: the same role and file format as Go's `tar-split` tool.
 */
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { disassemble, disassembleFile, disassembleTo } from '../../tarsplit/disassemble.js'
import { JsonPacker } from '../../tarsplit/packer.js'
import { unpack } from '../../tarsplit/unpacker.js'
import { assembleStream, assembleToFile } from '../../tarsplit/assemble.js'
import { PathFileGetter } from '../../tarsplit/file-getter.js'
import { UsageError, type GlobalOptions } from '../output.js'
import { fileChunks } from '../../internal/file-chunks.js'
import { stdoutSink } from '../stdout-sink.js'

export const HELP = `Usage:
  layerstore tar-split disasm [-o META] [--no-stdout] [FILE|-]
  layerstore tar-split asm --input META --path DIR [-o FILE]

disasm  Reads a tar (FILE, or standard input) and writes its tar-split metadata to META
        (default tar-data.json.gz), as gzip'd JSON lines in Docker's tar-split.json.gz format.
        The tar itself is copied to standard output unless --no-stdout is given.
asm     Rebuilds the original tar, byte for byte, from META and the files under DIR (the
        tar extracted there). Each file is checked against the CRC-64 recorded for it.

Options:
  -o, --output FILE   disasm: where the metadata goes; asm: where the tar goes (default stdout)
  -i, --input META    asm: the metadata to read
  -p, --path DIR      asm: the directory that holds the files
      --no-stdout     disasm: do not copy the tar to standard output
      --level N       disasm: gzip level of the metadata, 1-9 (default 1)
  -h, --help          this text
`

export async function tarSplit(argv: string[], global: GlobalOptions): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '-h' || sub === '--help') {
    process.stdout.write(HELP)
    return sub === undefined ? 2 : 0
  }
  if (sub === 'disasm') return disasm(rest, global)
  if (sub === 'asm') return asm(rest, global)
  throw new UsageError(`Unknown tar-split command "${sub}" (try --help)`)
}

async function disasm(argv: string[], global: GlobalOptions): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o', default: 'tar-data.json.gz' },
      'no-stdout': { type: 'boolean', default: false },
      level: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (positionals.length > 1) throw new UsageError('disasm takes at most one input file')
  const level = Number(values.level)
  if (!Number.isInteger(level) || level < 1 || level > 9)
    throw new UsageError('--level takes 1 to 9')
  const file = positionals[0] ?? '-'
  const input = (): AsyncIterable<Uint8Array> => (file === '-' ? process.stdin : fileChunks(file))
  const packer = new JsonPacker(createWriteStream(values.output), { level })
  let result
  try {
    if (values['no-stdout']) {
      // From a file, read buffers are recycled: nothing but the metadata is kept.
      result =
        file === '-' ? await disassembleTo(input(), packer) : await disassembleFile(file, packer)
    } else {
      const { stream, done } = disassemble(input(), packer)
      await Promise.all([pipeline(stream, stdoutSink()), done])
      result = await done
    }
  } catch (err) {
    packer.destroy()
    throw err
  }
  await packer.close()
  if (global.json) {
    process.stderr.write(
      JSON.stringify({ size: result.size, files: result.files, entries: packer.count }) + '\n',
    )
  }
  return 0
}

async function asm(argv: string[], _global: GlobalOptions): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i' },
      path: { type: 'string', short: 'p' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) {
    process.stdout.write(HELP)
    return 0
  }
  if (positionals.length > 0) throw new UsageError('asm takes no positional arguments')
  if (values.input === undefined) throw new UsageError('asm needs --input META')
  if (values.path === undefined) throw new UsageError('asm needs --path DIR')
  const entries = unpack(fileChunks(values.input))
  const getter = new PathFileGetter(values.path)
  if (values.output === undefined || values.output === '-') {
    await pipeline(assembleStream(entries, getter), stdoutSink())
  } else {
    await assembleToFile(entries, getter, values.output)
  }
  return 0
}
