/**
 * Read-only overlayfs mounts of layer directories, for tests that compare what the kernel
 * shows with what a plain directory holds. Uses mount(8) and umount(8).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Why overlay mounts cannot be tested here, or undefined when they can. */
export function overlayUnsupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'overlay mounts need root'
  const dir = mkdtempSync(join(tmpdir(), 'layerstore-ovl-probe-'))
  try {
    for (const d of ['a', 'b', 'm']) mkdirSync(join(dir, d))
    const r = spawnSync('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${dir}/a:${dir}/b`,
      `${dir}/m`,
    ])
    if (r.status !== 0) return `overlayfs does not mount here: ${r.stderr.toString().trim()}`
    spawnSync('umount', [`${dir}/m`])
    return undefined
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Mounts `layers` (top first) read-only at a new directory; an empty bottom layer is added
 * because overlayfs wants two lower directories when there is no upper one.
 */
export function mountLayers(
  layers: readonly string[],
  scratch: string,
): { dir: string; unmount: () => void } {
  const empty = join(scratch, 'ovl-empty')
  const dir = join(scratch, 'ovl-merged')
  mkdirSync(empty, { recursive: true })
  mkdirSync(dir, { recursive: true })
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${[...layers, empty].join(':')}`,
    dir,
  ])
  return { dir, unmount: () => execFileSync('umount', [dir]) }
}
