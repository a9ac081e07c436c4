import { chmodSync, lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { DriverIoError } from './errors.js'

/** Removals between two turns of the event loop. */
const CALLS_PER_TURN = 512
const SLASH = Buffer.from('/')

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code

/**
 * Deletes `path` and everything below it; a path that does not exist (or vanishes meanwhile)
 * is success. Robust where `rm -r` is not: a directory without write or search permission (a
 * layer written without privileges may hold a 0555 directory) is made accessible first. Sync
 * calls, letting the event loop run every few hundred. Fails with DRIVER_IO_FAILED.
 */
export async function removeAll(path: string): Promise<void> {
  const root = Buffer.from(path)
  let calls = 0
  const pace = async (): Promise<void> => {
    if (++calls % CALLS_PER_TURN === 0) await yieldToLoop()
  }
  const list = (dir: Buffer): Buffer[] => {
    try {
      return readdirSync(dir, 'buffer')
    } catch (err) {
      if (code(err) !== 'EACCES') throw err
      chmodSync(dir, 0o700)
      return readdirSync(dir, 'buffer')
    }
  }
  /** unlink or rmdir, making the parent writable on EACCES. */
  const removeOne = (p: Buffer, parent: Buffer, isDir: boolean): void => {
    const remove = (): void => (isDir ? rmdirSync(p) : unlinkSync(p))
    try {
      remove()
    } catch (err) {
      if (code(err) === 'ENOENT') return
      if (code(err) !== 'EACCES' || parent.length === 0) throw err
      chmodSync(parent, 0o700)
      remove()
    }
  }
  try {
    const st = lstatSync(root, { throwIfNoEntry: false })
    if (st === undefined) return
    if (!st.isDirectory()) {
      unlinkSync(root)
      return
    }
    const stack: { dir: Buffer; names: Buffer[]; next: number }[] = [
      { dir: root, names: list(root), next: 0 },
    ]
    for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
      const name = top.names[top.next++]
      if (name === undefined) {
        stack.pop()
        removeOne(top.dir, stack.at(-1)?.dir ?? Buffer.alloc(0), true)
        await pace()
        continue
      }
      const p = Buffer.concat([top.dir, SLASH, name])
      const child = lstatSync(p, { throwIfNoEntry: false })
      if (child === undefined) continue
      if (child.isDirectory()) {
        let names: Buffer[]
        try {
          names = list(p)
        } catch (err) {
          if (code(err) === 'ENOENT') continue
          throw err
        }
        stack.push({ dir: p, names, next: 0 })
      } else removeOne(p, top.dir, false)
      await pace()
    }
  } catch (err) {
    throw new DriverIoError(`Cannot remove layer directory (${code(err) ?? 'error'})`, path, {
      cause: err,
    })
  }
}
