/** The crash harnesses' child runs: started, killed with SIGKILL a while after it is ready. */
import { spawn } from 'node:child_process'

/**
 * Runs `node child args…` until `ms` after it printed `ready`, then kills it; returns the
 * lines it printed (the last one may be cut). A child that ends by itself is an error.
 */
export function runAndKill(child: string, args: readonly string[], ms: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let timer: NodeJS.Timeout | undefined
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (timer === undefined && out.startsWith('ready\n'))
        timer = setTimeout(() => proc.kill('SIGKILL'), ms)
    })
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
    proc.on('error', reject)
    proc.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer)
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself (${String(code)}): ${err}`))
      else resolve(out.split('\n').slice(0, -1))
    })
  })
}
