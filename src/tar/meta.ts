/**
 * Meta entries: PAX extended headers ('x', and 'g' for the global ones) and GNU long names
 * and links ('L', 'K'), whose data says something about the entry that follows. The reader
 * gathers them here until that entry's own header comes, then builds its TarHeader.
 */
import { TarError } from './errors.js'
import { mergePax, setLink, setName, toTarHeader } from './header-fields.js'
import { copyOut, type RawHeader } from './header.js'
import { PAX, PaxError, parsePaxRecords } from './pax.js'
import { TYPE, type TarHeader } from './types.js'

/** PAX and GNU meta entries, whose data the reader reads whole. */
export function isMeta(t: number): boolean {
  return (
    t === TYPE.X_HEADER ||
    t === TYPE.X_GLOBAL_HEADER ||
    t === TYPE.GNU_LONGNAME ||
    t === TYPE.GNU_LONGLINK
  )
}

/** Go's mergePAX, with its errors as TAR_INVALID_PAX at the header's offset. */
export function mergePaxAt(h: TarHeader, pax: Map<string, Buffer>, offset: number): void {
  try {
    mergePax(h, pax)
  } catch (err) {
    if (err instanceof PaxError)
      throw new TarError('TAR_INVALID_PAX', `Cannot apply PAX records: ${err.message}`, offset)
    throw err
  }
}

/** What the meta entries read so far say about the next entry. */
export class MetaEntries {
  pax: Map<string, Buffer> | undefined = undefined
  longName: Buffer | undefined = undefined
  longLink: Buffer | undefined = undefined

  reset(): void {
    this.pax = undefined
    this.longName = undefined
    this.longLink = undefined
  }

  /**
   * Takes in the data of meta entry `h` (header block at `offset`): `n` bytes of `text` from
   * `from`, a view that is not kept. A later entry of the same kind replaces an earlier one.
   */
  read(h: RawHeader, offset: number, text: Buffer, from: number, n: number): void {
    if (h.typeflag === TYPE.GNU_LONGNAME || h.typeflag === TYPE.GNU_LONGLINK) {
      let end = from
      while (end < from + n && text[end] !== 0) end++
      const value = copyOut(text, from, end)
      if (h.typeflag === TYPE.GNU_LONGNAME) this.longName = value
      else this.longLink = value
      return
    }
    try {
      this.pax = parsePaxRecords(text, from, from + n)
    } catch (err) {
      if (err instanceof PaxError)
        throw new TarError('TAR_INVALID_PAX', `Cannot read PAX header: ${err.message}`, offset)
      throw err
    }
  }

  /** The header of entry `h`: the block's fields, then the PAX records and long names. */
  header(h: RawHeader, offset: number): TarHeader {
    const { pax, longName, longLink } = this
    // The block's name is not decoded when a PAX record or a long name replaces it.
    const name =
      (longName === undefined || longName.length === 0) && (pax?.get(PAX.PATH)?.length ?? 0) === 0
    const link =
      (longLink === undefined || longLink.length === 0) &&
      (pax?.get(PAX.LINKPATH)?.length ?? 0) === 0
    const header = toTarHeader(h, offset, name, link)
    if (pax !== undefined) mergePaxAt(header, pax, offset)
    if (longName !== undefined && longName.length > 0) setName(header, longName)
    if (longLink !== undefined && longLink.length > 0) setLink(header, longLink)
    if (header.typeflag === TYPE.REG_A) {
      header.typeflag = header.nameRaw.at(-1) === 0x2f ? TYPE.DIR : TYPE.REG
    }
    return header
  }
}
