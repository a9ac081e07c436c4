import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileLock, withFileLock } from './lock.js'

const LOCK_JS = fileURLToPath(new URL('./lock.js', import.meta.url))

/** A child process that takes the lock, prints "locked", then holds it until killed. */
function holder(path: string): Promise<{ kill: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { FileLock } = await import(${JSON.stringify(LOCK_JS)}); await FileLock.acquire(${JSON.stringify(path)}); console.log('locked'); setInterval(() => {}, 1000)`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    child.stdout.once('data', () =>
      resolve({
        kill: () =>
          new Promise((r) => {
            child.once('exit', () => r())
            child.kill('SIGKILL')
          }),
      }),
    )
    child.once('error', reject)
  })
}

test('waiters in one process take the lock in turn', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-lock-'))
  t.after(() => rmSync(dir, { recursive: true }))
  const path = join(dir, 'sub', 'lock')
  const order: string[] = []
  let inside = 0
  const work = (name: string): Promise<void> =>
    withFileLock(path, async () => {
      inside++
      assert.equal(inside, 1)
      order.push(`${name}+`)
      await new Promise((r) => setTimeout(r, 5))
      order.push(`${name}-`)
      inside--
    })
  await Promise.all([work('a'), work('b'), work('c')])
  assert.deepEqual(order, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-'])
})

test('another process holds the lock until it dies; the kernel releases it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-lock-'))
  t.after(() => rmSync(dir, { recursive: true }))
  const path = join(dir, 'lock')
  const other = await holder(path)
  let got = false
  const waiting = FileLock.acquire(path).then((l) => {
    got = true
    return l
  })
  await new Promise((r) => setTimeout(r, 300))
  assert.equal(got, false, 'the lock was taken while another process held it')
  await other.kill() // SIGKILL: no cleanup ran in the holder
  const lock = await waiting
  assert.equal(got, true)
  lock.release()
  lock.release() // idempotent
})
