/** Runs Go's `tar-split` tool (Debian package tar-split), the reference implementation. */
import { spawnSync } from 'node:child_process'

export function hasGoTarSplit(): boolean {
  return spawnSync('tar-split', ['--version']).status === 0
}

export interface GoRun {
  readonly ok: boolean
  readonly stderr: string
}

function run(args: string[]): GoRun {
  const r = spawnSync('tar-split', args, { maxBuffer: 1 << 26 })
  return { ok: r.status === 0, stderr: r.stderr.toString().trim() }
}

export function goDisasm(tar: string, meta: string): GoRun {
  return run(['disasm', '--no-stdout', '--output', meta, tar])
}

export function goAsm(meta: string, root: string, out: string): GoRun {
  return run(['asm', '--input', meta, '--path', root, '--output', out])
}
