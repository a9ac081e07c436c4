/**
 * A load that stops at a chosen point and stays there, alive (its journal held), until it is
 * killed: for tests of what an open does while another process's load runs. It opens the
 * store, says `opened`, waits for a line on stdin, loads ARCHIVE and says `paused` either once
 * its first layer is registered (`after-first-layer`) or when its first layer to register
 * starts (`before-first-layer`, layers already in the store skipped).
 * usage: node image-load-pause-child.js ROOT DRIVER ARCHIVE STOP
 */
import { once } from 'node:events'
import { writeSync } from 'node:fs'
import { ImageStore } from '../image/image-store.js'

const [root, driver, archive, stop] = process.argv.slice(2)

function pause(): void {
  writeSync(1, 'paused\n')
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0) // blocks until killed
}

const images = await ImageStore.open({ root: root!, driver: driver! })
writeSync(1, 'opened\n')
await once(process.stdin, 'data')
await images.load(archive!, {
  onProgress: (e) => {
    if (stop === 'after-first-layer' && e.kind === 'layer-done' && !e.skipped) pause()
    if (stop === 'before-first-layer' && e.kind === 'layer-start') pause()
  },
})
writeSync(1, 'loaded\n')
