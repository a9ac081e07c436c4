import { test } from 'node:test'
import assert from 'node:assert/strict'
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { directorySize } from './directory-size.js'
import { S_IFCHR, sys } from '../internal/sys.js'
import { scratch } from '../testing/corpus.js'

const isRoot = process.geteuid?.() === 0

test("directorySize counts as Docker's directory.Size: lstat sizes, a hard-linked inode once", async () => {
  const { dir, remove } = await scratch()
  try {
    let expected = 0
    const file = (name: string, bytes: number): void => {
      writeFileSync(join(dir, name), Buffer.alloc(bytes, 1))
      expected += bytes
    }
    mkdirSync(join(dir, 'a/b/c'), { recursive: true })
    file('top', 10)
    file('a/one', 1000)
    file('a/b/c/deep', 70_000)
    writeFileSync(join(dir, 'a/empty'), '')
    linkSync(join(dir, 'a/one'), join(dir, 'a/b/one-again')) // same inode: counted once
    linkSync(join(dir, 'a/one'), join(dir, 'a/b/c/one-thrice'))
    symlinkSync('a/b/c/deep', join(dir, 'link')) // its target's length
    expected += 'a/b/c/deep'.length
    for (let i = 0; i < 300; i++) file(`a/b/f${i}`, i) // more than one readdir buffer
    if (isRoot) sys.mknod(join(dir, 'a/whiteout'), S_IFCHR | 0o600, 0, 0) // an overlay whiteout: 0
    assert.equal(await directorySize(dir), expected)
  } finally {
    await remove()
  }
})

test('directorySize of a missing directory is a coded error naming it', async () => {
  const { dir, remove } = await scratch()
  try {
    await assert.rejects(directorySize(join(dir, 'missing')), (err: unknown) => {
      const e = err as { code: string; path: string }
      return e.code === 'DRIVER_IO_FAILED' && e.path === join(dir, 'missing')
    })
  } finally {
    await remove()
  }
})
