import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { scratch } from '../testing/corpus.js'
import { driversUnderTest } from '../testing/drivers.js'
import { openDriver } from './open-driver.js'

const overlaySkip = driversUnderTest().find((d) => d.name === 'overlay2')?.skip

test('the driver: the one named, else the one the root holds, else overlay2, else vfs', async (t) => {
  const { dir, remove } = await scratch('layerstore-open-driver-')
  t.after(remove)
  const fresh = await openDriver(join(dir, 'fresh'))
  assert.equal(fresh.name, overlaySkip === undefined ? 'overlay2' : 'vfs')
  await fresh.cleanup()

  // A root with vfs layers stays on vfs, whatever the kernel can do.
  const vfsRoot = join(dir, 'vfs-root')
  mkdirSync(join(vfsRoot, 'image', 'vfs', 'layerdb', 'sha256', 'abc'), { recursive: true })
  assert.equal((await openDriver(vfsRoot)).name, 'vfs')
  assert.equal(readdirSync(vfsRoot).includes('overlay2'), false, 'no overlay2 home made')

  // Layers of two drivers: the user must choose, as with Docker.
  mkdirSync(join(vfsRoot, 'overlay2', 'l'), { recursive: true })
  writeFileSync(join(vfsRoot, 'overlay2', 'l', 'ABC'), '')
  await assert.rejects(openDriver(vfsRoot), { code: 'DRIVER_INVALID_OPTION' })
  assert.equal((await openDriver(vfsRoot, 'vfs')).name, 'vfs')
  await assert.rejects(openDriver(vfsRoot, 'aufs'), { code: 'DRIVER_NOT_SUPPORTED' })
})
