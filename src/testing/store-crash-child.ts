/**
 * A process that works on a store until it is killed: registers small layers on random
 * parents, releases some, creates and removes read-write layers. It reports on stdout, one
 * line each, what the parent needs to check after the kill:
 *   `registered <chainId>` once a register call has returned,
 *   `releasing <chainId>` before a release or remove that may delete it.
 * usage: node store-crash-child.js ROOT DRIVER SEED
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LayerStore } from '../layer/layer-store.js'
import { writeTar } from '../tar/writer.js'
import type { Layer } from '../layer/types.js'
import { say, seeded } from './child-io.js'

const [root, driver, seedArg] = process.argv.slice(2)
const rand = seeded(seedArg)

function tar(i: number): AsyncIterable<Uint8Array> {
  const files = 1 + (i % 5)
  return writeTar(
    Array.from({ length: files }, (_, f) => ({
      header: { name: `d${i % 3}/f${i}-${f}`, mode: 0o644, mtime: 1_600_000_000 },
      body: Buffer.alloc(100 + ((i * 7919 + f) % 20_000), i & 0xff),
    })),
  )
}

const store = await LayerStore.open({ root: root!, driver: driver! })
const held: Layer[] = []
say('ready')
for (let step = 0; ; step++) {
  const op = rand(10)
  if (op < 5 || held.length === 0) {
    const parent = held.length > 0 && rand(3) > 0 ? held[rand(held.length)] : undefined
    const l = await store.register(tar(rand(40)), parent?.chainId)
    say(`registered ${l.chainId}`)
    held.push(l)
  } else if (op < 8) {
    const l = held.splice(rand(held.length), 1)[0]!
    say(`releasing ${l.chainId}`)
    // Everything below it may go too.
    for (let p = l.parent; p !== undefined; p = p.parent) say(`releasing ${p.chainId}`)
    await store.release(l)
  } else {
    const parent = held[rand(held.length)]!
    const rw = await store.createRwLayer(`c${process.pid}-${step}`, parent.chainId, {
      initFunc: (dir) => void dir,
    })
    // Mounted, written and (mostly) unmounted: a kill may leave a mount behind.
    const dir = await rw.mount()
    writeFileSync(join(dir, 'written'), String(step))
    if (rand(4) > 0) {
      await rw.unmount()
      await store.releaseRwLayer(rw)
    }
  }
}
