/**
 * What an entry's header says about the file apply creates besides its content: owner (through
 * the id mappings), extended attributes and times, as Docker's UnpackLayer sets them. The
 * applier decides when to call them: a new file often needs no chown (see apply.ts).
 */
import { lchownSync, readFileSync } from 'node:fs'
import type { TarHeader } from '../tar/types.js'
import { sys } from '../internal/sys.js'
import { ArchiveError } from './errors.js'
import { mapId } from './id-map.js'
import type { ApplyOptions } from './types.js'

/** Go's maxTime for utimes: times beyond it (and before the epoch) become the epoch. */
const MAX_TIME_SEC = 9_223_372_036

export interface Times {
  readonly atime: number
  readonly atimeNsec: number
  readonly mtime: number
  readonly mtimeNsec: number
}

/** Docker's times: atime is the later of atime and mtime; out-of-range times become the epoch. */
export function times(header: TarHeader): Times {
  let m = { sec: header.mtime, nsec: header.mtimeNsec }
  let a = header.atime ?? m
  if (a.sec < m.sec || (a.sec === m.sec && a.nsec < m.nsec)) a = m
  const bound = (t: { sec: number; nsec: number }): { sec: number; nsec: number } =>
    t.sec < 0 || t.sec > MAX_TIME_SEC ? { sec: 0, nsec: 0 } : t
  m = bound(m)
  a = bound(a)
  return { atime: a.sec, atimeNsec: a.nsec, mtime: m.sec, mtimeNsec: m.nsec }
}

/** Owner and xattrs of applied entries, under one apply's options. */
export class EntryAttributes {
  readonly #options: ApplyOptions
  readonly #overlay: boolean
  /** False when the caller asked for no chown at all (an unprivileged apply). */
  readonly chown: boolean

  constructor(options: ApplyOptions, overlay: boolean) {
    this.#options = options
    this.#overlay = overlay
    this.chown = options.noLchown !== true
  }

  /** The host id of an archive uid or gid (ARCHIVE_UNMAPPED_ID outside the mappings). */
  id(id: number, which: 'uids' | 'gids', entry: string): number {
    const maps = this.#options.idMappings?.[which]
    if (maps === undefined || maps.length === 0) return id
    const host = mapId(maps, id)
    if (host === undefined)
      throw new ArchiveError(
        'ARCHIVE_UNMAPPED_ID',
        `${which === 'uids' ? 'uid' : 'gid'} ${id} is not mapped`,
        entry,
      )
    return host
  }

  /** Sets the header's owner on `host`, not following a symlink. */
  owner(header: TarHeader, host: Buffer): void {
    if (!this.chown) return
    lchownSync(
      host,
      this.id(header.uid, 'uids', header.name),
      this.id(header.gid, 'gids', header.name),
    )
  }

  /** Sets the header's xattrs; overlay metadata from a tar is refused in overlay form. */
  xattrs(header: TarHeader, host: Buffer): void {
    if (header.xattrs === undefined) return
    for (const [key, value] of header.xattrs) {
      // An overlayfs layer must not take overlay metadata from a tar: it would redirect or
      // hide other layers' files.
      if (this.#overlay && key.startsWith('trusted.overlay.')) {
        this.#options.onWarning?.(
          'ARCHIVE_XATTR_SKIPPED',
          `overlay xattr ${key} ignored on "${header.name}"`,
        )
        continue
      }
      try {
        sys.lsetxattr(host, key, value)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        const tolerated =
          code === 'EPERM' || (code === 'ENOTSUP' && this.#options.bestEffortXattrs === true)
        if (!tolerated) throw err
        this.#options.onWarning?.(
          'ARCHIVE_XATTR_SKIPPED',
          `xattr ${key} not set on "${header.name}" (${code})`,
        )
      }
    }
  }
}

/**
 * The process umask, read without changing it (process.umask() writes it twice, racing with
 * other threads): from /proc/self/status. When it cannot be read, every file gets a chmod.
 */
export function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'))
    if (m) return parseInt(m[1]!, 8)
  } catch {
    // no procfs
  }
  return 0o777
}
