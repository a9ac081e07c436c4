/**
 * A process that works on an image store until it is killed: loads archives the parent built
 * (listed in ARCHIVES, a JSON array of paths), removes images by name or by ID, and tags them.
 * It reports on stdout, one line each, what the parent needs to check after the kill: a line
 * before each call and one after it returned,
 *   `load <n>` … `loaded <n> <id>…` (the IDs the call returned),
 *   `remove <ref>` … `removed <ref> <deleted id>…`,
 *   `tag <id> <name>` … `tagged <id> <name>`.
 * usage: node image-crash-child.js ROOT DRIVER SEED ARCHIVES
 */
import { readFileSync } from 'node:fs'
import { ImageStore } from '../image/image-store.js'
import { say, seeded } from './child-io.js'

const [root, driver, seedArg, archivesFile] = process.argv.slice(2)
const rand = seeded(seedArg)

/** Names `tag` points at: some new, some that archives give too (the name moves). */
const TARGETS = [
  'docker.io/crash/t0:v',
  'docker.io/crash/t1:v',
  'docker.io/crash/a:1',
  'docker.io/crash/b:latest',
]

const archives = JSON.parse(readFileSync(archivesFile!, 'utf8')) as string[]
const images = await ImageStore.open({ root: root!, driver: driver! })
say('ready')
for (;;) {
  const op = rand(20)
  const present = images.list()
  if (op < 10 || present.length === 0) {
    const n = rand(archives.length)
    say(`load ${n}`)
    const loaded = await images.load(archives[n]!)
    say(`loaded ${n} ${loaded.map((i) => i.id).join(' ')}`)
  } else if (op < 16) {
    const image = present[rand(present.length)]!
    // By name mostly (the image goes with its last name), else by ID with all its names.
    const byName = image.repoTags.length > 0 && rand(3) > 0
    const ref = byName ? image.repoTags[rand(image.repoTags.length)]! : image.id
    say(`remove ${ref}`)
    const result = await images.remove(ref, { force: !byName })
    say(`removed ${ref} ${result.deleted.join(' ')}`.trimEnd())
  } else {
    const image = present[rand(present.length)]!
    const target = TARGETS[rand(TARGETS.length)]!
    say(`tag ${image.id} ${target}`)
    await images.tag(image.id, target)
    say(`tagged ${image.id} ${target}`)
  }
}
