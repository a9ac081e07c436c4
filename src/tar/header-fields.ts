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
  pax.forEach(mergeRecord, h)
  h.pax = pax
}

function mergeRecord(this: TarHeader, v: Buffer, k: string): void {
  if (v.length === 0) return
  switch (k) {
    case PAX.PATH:
      setName(this, v)
      break
    case PAX.LINKPATH:
      setLink(this, v)
      break
    case PAX.UNAME:
      this.uname = v.toString('utf8')
      break
    case PAX.GNAME:
      this.gname = v.toString('utf8')
      break
    case PAX.UID:
      this.uid = parseDecimal(v.toString('utf8'))
      break
    case PAX.GID:
      this.gid = parseDecimal(v.toString('utf8'))
      break
    case PAX.ATIME:
      this.atime = parsePaxTime(v.toString('utf8'))
      break
    case PAX.CTIME:
      this.ctime = parsePaxTime(v.toString('utf8'))
      break
    case PAX.MTIME: {
      const t = parsePaxTimeBytes(v)
      this.mtime = t.sec
      this.mtimeNsec = t.nsec
      break
    }
    case PAX.SIZE:
      this.size = parseDecimal(v.toString('utf8'))
      break
    default:
      if (k.startsWith(PAX.SCHILY_XATTR)) {
        const x = (this.xattrs ?? new Map<string, Buffer>()) as Map<string, Buffer>
        x.set(k.slice(PAX.SCHILY_XATTR.length), v)
        this.xattrs = x
      }
  }
}

export function setName(h: TarHeader, v: Buffer): void {
  h.nameRaw = Buffer.from(v)
  h.name = h.nameRaw.toString('utf8')
}

export function setLink(h: TarHeader, v: Buffer): void {
  h.linknameRaw = Buffer.from(v)
  h.linkname = h.linknameRaw.toString('utf8')
}
