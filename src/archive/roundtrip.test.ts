/**
 * Round trip: the changes between two real trees, exported and applied on the old tree, give
 * the new tree. Old and new are the corpus chains without and with their last layer, then a
 * tree edited with real tools (rm, mv, chmod, chown, ln, mkfifo, mknod, touch, xattrs). The
 * diff is applied in both forms: on a copy of the old tree (aufs), and into an empty upper
 * directory over the old tree, mounted with overlayfs.
 *
 * What may differ from the new tree is computed by expectedRoundTrip (src/testing/roundtrip.ts)
 * field by field, and nothing else; each rule is a loss of Docker's diff itself:
 * - wholeSeconds: an exported node's mtime loses its nanoseconds (tar headers without PAX times).
 * - capabilityV2: a v3 security.capability is exported as v2 (its root id is namespace-bound).
 * - xattrsExported: other xattrs are not exported (Docker's tarAppender reads only that one).
 * - xattrsKept (aufs): an exported directory that existed keeps its old xattrs.
 * - dirMtime, blockMtime: changes() ignores the mtime of directories and block devices.
 * - sameSecond: a whole-second mtime equals any mtime of that second (sameFsTimeSpec).
 * - content: same size and mtime, different bytes: changes() compares lstat only.
 * - xattrsUnreported: changes() compares no xattr but security.capability.
 * - links: a name changes() does not report keeps its old inode, so hard links join only the
 *   exported names (overlay form: nlink is not compared at all, overlayfs reports the lower's).
 * As a second oracle, changes(new, result) must report nothing but v3 capabilities. Each test
 * also pins which loosenings it meets, so that a rule cannot start hiding differences unnoticed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { sys } from '../internal/sys.js'
import { apply } from './apply.js'
import { chains, layerStream } from '../testing/chains.js'
import { hasCorpus, scratch } from '../testing/corpus.js'
import { overlayUnsupported } from '../testing/overlay-mount.js'
import { copyTree, describe, roundTrip, type RoundTripResult } from '../testing/roundtrip.js'
import type { WhiteoutFormat } from './types.js'
import { CAP_V2, CAP_V3 } from '../testing/capabilities.js'

const isRoot = process.getuid?.() === 0
const noCorpus = !hasCorpus() && 'no corpus'
const noRoot = !isRoot && 'needs root (owners, devices, trusted xattrs)'
const noOverlay = noCorpus || (overlayUnsupported() ?? false)

async function applyLayers(files: readonly string[], dir: string): Promise<void> {
  mkdirSync(dir)
  for (const file of files) await apply(layerStream(file), dir)
}

/** `path: field (reason)` for every loosening met, sorted. */
const loosenings = (r: RoundTripResult): string[] =>
  r.loosened.map((l) => `${l.path}: ${l.field} ${l.reason}`).sort()

function assertRoundTrip(r: RoundTripResult): void {
  assert.deepEqual(
    r.diffs,
    [],
    `changes: ${r.changes.map((c) => c.kind + c.path).join(' ')}\n` +
      `loosened:\n${r.loosened.map(describe).join('\n')}`,
  )
}

/**
 * The loosenings each corpus chain meets (same in both forms unless an overlay entry says
 * otherwise); chains not listed meet none: the round trip gives the new tree exactly.
 */
const CHAIN_LOOSENINGS: Record<string, { aufs: string[]; overlay?: string[] }> = {
  // d/link is new, a hard link to the unchanged d/target: changes() reports only d/link,
  // which the export writes as a file of its own.
  'hardlink-to-lower-layer': {
    aufs: [
      'd/link: link_group links',
      'd/link: nlink links',
      'd/target: link_group links',
      'd/target: nlink links',
    ],
  },
  // usr/lib got x.so through the symlink lib: its mtime is when the layer wrote it, with
  // nanoseconds.
  'symlink-parent-in-lower': { aufs: ['usr/lib: mtime_nsec wholeSeconds'] },
  // x/new carries user.k, which an export does not carry; in overlay form the exported x/ is a
  // new upper directory, without the user.dir its lower (old) x/ has.
  'xattrs-hand': {
    aufs: ['x/new: xattrs xattrsExported'],
    overlay: ['x/new: xattrs xattrsExported', 'x: xattrs xattrsExported'],
  },
}

for (const form of ['aufs', 'overlay'] as const satisfies readonly WhiteoutFormat[]) {
  const skip = noCorpus || noRoot || (form === 'overlay' && noOverlay)
  test(
    `corpus chains: changes(new, old) exported and applied (${form}) on the old tree give the new tree`,
    { skip },
    async (t) => {
      for (const chain of chains().filter((c) => c.layers.length >= 2)) {
        await t.test(chain.chain, async () => {
          const { dir, remove } = await scratch('layerstore-roundtrip-')
          try {
            const files = chain.layers.map((l) => l.file)
            await applyLayers(files.slice(0, -1), join(dir, 'old'))
            await applyLayers(files, join(dir, 'new'))
            mkdirSync(join(dir, 'work'))
            const r = await roundTrip(join(dir, 'old'), join(dir, 'new'), join(dir, 'work'), form)
            assertRoundTrip(r)
            const pinned = CHAIN_LOOSENINGS[chain.chain]
            assert.deepEqual(
              loosenings(r),
              (form === 'overlay' ? pinned?.overlay : undefined) ?? pinned?.aufs ?? [],
            )
          } finally {
            await remove()
          }
        })
      }
    },
  )
}

/**
 * Edits made with the usual tools on a copy of a corpus tree. Times are now's (nanoseconds)
 * except where `touch` sets them. Comments say which loosening an edit meets, if any.
 */
const EDITS = String.raw`
set -eu
rm -r var/cache/sub                        # a directory and its file
rm etc/os-release
rm h/alias2                                # one name of a hard-linked inode
mv home/user/.profile home/user/.bashrc
mv usr/share/doc usr/share/docs            # a directory moves
chmod 2750 home/user
chmod 1777 var
chown 1000:1000 etc/motd
chown -h 2:3 bin/sh
chown 0:50 dev/initctl                     # the group alone
chown 1000 h/orig                          # the owner alone
printf 'daemon:x:1:1::/:/bin/sh\n' >> etc/passwd
touch -d '2001-02-03 04:05:06.789' usr/share/docs/README
chmod 4755 x/cap
touch -h -d '@1650000000' bin/sh
ln bin/busybox bin/ls                      # busybox gets a capability below: one inode still
ln x/t x/t2                                # x/t itself is unchanged: links
ln -s /bin/busybox bin/true
ln -s ../../nowhere usr/dangling
ln -sfn toybox bin/sh
mkdir -m 0711 run
mkfifo -m 0640 run/initctl
mknod -m 0600 dev/zero c 1 5
mknod -m 0660 dev/loop0 b 7 0
mkdir -p srv/a/b/c
printf 'deep\n' > srv/a/b/c/file
mkdir "$(printf 'caf\351')"                # names that are not UTF-8
printf 'latin1\n' > "$(printf 'caf\351/\377')"
rm dev/tty5 && mkdir dev/tty5              # device -> directory
rm -r var/cache && printf 'a file now\n' > var/cache
rm h/alias && ln -s orig h/alias           # file -> symlink
touch opt/app/.tmp && rm opt/app/.tmp      # opt/app: only its mtime changes: dirMtime
t=$(stat -c %y dev/null) && rm dev/null && mknod -m 0666 dev/null c 1 7 && touch -d "$t" dev/null   # only the numbers
touch -h -d '@1600000000' dev/sda          # a block device's mtime: blockMtime
t=$(stat -c %y x/a) && printf 'zz' > x/a && touch -d "$t" x/a   # same size and mtime: content
`

test(
  'a tree edited with real tools: changes(new, old) exported and applied on the old tree give the new tree',
  { skip: noCorpus || noRoot },
  async (t) => {
    const { dir, remove } = await scratch('layerstore-roundtrip-tools-')
    t.after(remove)
    const old = join(dir, 'old')
    const edited = join(dir, 'new')
    const byChain = new Map(chains().map((c) => [c.chain, c.layers.map((l) => l.file)]))
    await applyLayers(
      [
        ...byChain.get('basic-two-layers')!,
        byChain.get('devices-fifo')![0]!,
        byChain.get('xattrs-hand')![0]!,
        byChain.get('hardlinks-same-layer-then-whiteout')![0]!,
      ],
      old,
    )
    copyTree(old, edited)
    execFileSync('sh', ['-c', EDITS], { cwd: edited })
    sys.lsetxattr(join(edited, 'bin/busybox'), 'security.capability', CAP_V2) // reported
    sys.lremovexattr(join(edited, 'x/cap'), 'security.capability') // reported
    sys.lsetxattr(join(edited, 'etc/passwd'), 'user.note', Buffer.from('n')) // xattrsExported
    sys.lsetxattr(join(edited, 'x/t'), 'user.quiet', Buffer.from('q')) // xattrsUnreported
    sys.lsetxattr(join(edited, 'srv/a/b/c/file'), 'security.capability', CAP_V3) // capabilityV2

    // Every exported node with a time of now loses its nanoseconds (wholeSeconds); the other
    // loosenings are these, each the consequence of one edit above.
    const pinned = [
      'dev/sda: mtime blockMtime',
      'etc/passwd: xattrs xattrsExported',
      'opt/app: mtime dirMtime',
      'opt/app: mtime_nsec dirMtime',
      'srv/a/b/c/file: xattrs capabilityV2',
      'x/a: sha256 content',
      'x/t2: link_group links',
      'x/t2: nlink links',
      'x/t2: xattrs xattrsExported',
      'x/t: link_group links',
      'x/t: nlink links',
      'x/t: xattrs xattrsUnreported',
    ]
    for (const form of ['aufs', 'overlay'] as const) {
      await t.test(form, { skip: form === 'overlay' && noOverlay }, async () => {
        const work = join(dir, `work-${form}`)
        mkdirSync(work)
        const r = await roundTrip(old, edited, work, form)
        assertRoundTrip(r)
        const met = loosenings(r)
        assert.ok(met.includes('srv/a/b/c/file: mtime_nsec wholeSeconds'))
        assert.deepEqual(
          met.filter((l) => !l.endsWith(' wholeSeconds')),
          // The exported x/ is a new upper directory: the user.dir of the lower x/ is hidden.
          form === 'overlay' ? [...pinned, 'x: xattrs xattrsExported'] : pinned,
        )
      })
    }
  },
)
