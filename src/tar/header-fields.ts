/**
 * Building a TarHeader: from a decoded header block, then with the PAX records of its
 * extended header applied as Go's mergePAX applies them.
 */
import { FIELD, headerLinkname, headerName, headerText, type RawHeader } from './header.js'
import { PAX, parseDecimal, parsePaxTime, parsePaxTimeBytes } from './pax.js'
import type { TarHeader } from './types.js'

const NO_BYTES = Buffer.alloc(0)

/**
 * The header of one block on its own, before PAX records and GNU long names. The block's
 * name and linkname are left empty when `name` / `link` is false (the caller replaces them).
 */
export function toTarHeader(raw: RawHeader, offset: number, name = true, link = true): TarHeader {
  const nameRaw = name ? headerName(raw) : NO_BYTES
  const linknameRaw = link ? headerLinkname(raw) : NO_BYTES
  const h: TarHeader = {
    typeflag: raw.typeflag,
    name: nameRaw.length === 0 ? '' : nameRaw.toString('utf8'),
    nameRaw,
    linkname: linknameRaw.length === 0 ? '' : linknameRaw.toString('utf8'),
    linknameRaw,
    size: raw.size,
    mode: raw.mode,
    uid: raw.uid,
    gid: raw.gid,
    uname: headerText(raw, FIELD.uname),
    gname: headerText(raw, FIELD.gname),
    mtime: raw.mtime,
    mtimeNsec: 0,
    devmajor: raw.devmajor,
    devminor: raw.devminor,
    format: raw.format,
    offset,
  }
  if (raw.atime !== undefined) h.atime = { sec: raw.atime, nsec: 0 }
  if (raw.ctime !== undefined) h.ctime = { sec: raw.ctime, nsec: 0 }
  return h
}

/**
 * Go's mergePAX: records with empty values keep the header's value; a malformed number or
 * time throws PaxError. The records are kept on the header as `pax`.
 */
export function mergePax(h: TarHeader, pax: Map<string, Buffer>): void {
  for (const [k, v] of pax) {
    if (v.length === 0) continue
    const s = (): string => v.toString('utf8')
    switch (k) {
      case PAX.PATH:
        setName(h, v)
        break
      case PAX.LINKPATH:
        setLink(h, v)
        break
      case PAX.UNAME:
        h.uname = s()
        break
      case PAX.GNAME:
        h.gname = s()
        break
      case PAX.UID:
        h.uid = parseDecimal(s())
        break
      case PAX.GID:
        h.gid = parseDecimal(s())
        break
      case PAX.ATIME:
        h.atime = parsePaxTime(s())
        break
      case PAX.CTIME:
        h.ctime = parsePaxTime(s())
        break
      case PAX.MTIME: {
        const t = parsePaxTimeBytes(v)
        h.mtime = t.sec
        h.mtimeNsec = t.nsec
        break
      }
      case PAX.SIZE:
        h.size = parseDecimal(s())
        break
      default:
        if (k.startsWith(PAX.SCHILY_XATTR)) {
          const x = (h.xattrs ?? new Map<string, Buffer>()) as Map<string, Buffer>
          x.set(k.slice(PAX.SCHILY_XATTR.length), v)
          h.xattrs = x
        }
    }
  }
  h.pax = pax
}

export function setName(h: TarHeader, v: Buffer): void {
  h.nameRaw = Buffer.from(v)
  h.name = h.nameRaw.toString('utf8')
}

export function setLink(h: TarHeader, v: Buffer): void {
  h.linknameRaw = Buffer.from(v)
  h.linkname = h.linknameRaw.toString('utf8')
}
