import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startWriteback } from './writeback.js'
import { scratch } from '../testing/corpus.js'

const openFds = (): number => readdirSync('/proc/self/fd').length

test('startWriteback: syncs while running, stops cleanly, leaves no descriptor open', async (t) => {
  const s = await scratch()
  t.after(s.remove)
  const before = openFds()
  const wb = startWriteback(s.dir, 20)
  assert.equal(openFds(), before + 1)
  await writeFile(join(s.dir, 'f'), Buffer.alloc(1 << 20, 1))
  await sleep(100) // several syncs, one at a time
  await wb.stop()
  assert.equal(openFds(), before)
})

test('startWriteback: a path that cannot be opened does nothing', async () => {
  const before = openFds()
  const wb = startWriteback('/nonexistent/layerstore-writeback')
  assert.equal(openFds(), before)
  await wb.stop()
})
