/**
 * Docker's `directory.Size` (SPEC.md §6.9): the bytes a directory's non-directory nodes take
 * by lstat size (a symlink counts its target's length, an overlay whiteout 0), an inode with
 * several links once. overlay2 records it as the size of a layer applied into its diff/.
 */
import { lstatSync, readdirSync } from 'node:fs'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { DriverIoError } from './errors.js'

const CALLS_PER_TURN = 512
const SLASH = Buffer.from('/')

export async function directorySize(dir: string): Promise<number> {
  const seen = new Set<string>()
  const pending: Buffer[] = [Buffer.from(dir)]
  let size = 0
  let calls = 0
  for (let d = pending.pop(); d !== undefined; d = pending.pop()) {
    let names: Buffer[]
    try {
      names = readdirSync(d, { encoding: 'buffer' })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      throw new DriverIoError(`Cannot measure layer (${code})`, d.toString(), { cause: err })
    }
    for (const name of names) {
      const path = Buffer.concat([d, SLASH, name])
      const st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
      if (++calls % CALLS_PER_TURN === 0) await yieldToLoop()
      if (st === undefined) continue // vanished meanwhile, as Docker skips it
      if (st.isDirectory()) {
        pending.push(path)
        continue
      }
      if (st.size === 0n) continue
      if (st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`
        if (seen.has(key)) continue
        seen.add(key)
      }
      size += Number(st.size)
    }
  }
  return size
}
