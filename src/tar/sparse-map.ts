/**
 * Reading an entry's sparse map, Go's handleSparseFile: from an old GNU 'S' header and its
 * extension blocks, or from PAX records (0.0, 0.1) or the start of the data (1.0). The
 * reader supplies the blocks; errors come back as SparseMapError with the TarError code to use.
 */
import { TarError, type TarErrorCode } from './errors.js'
import { blockFormat, FIELD, parseNumeric } from './header.js'
import { setName } from './header-fields.js'
import { MAX_SPARSE_ENTRIES } from './limits.js'
import { PAX, PaxError, parseDecimal } from './pax.js'
import { oldGnuFragments, paxSparseVersion, parseSparseMap0x1, readSparseMap1x0 } from './sparse.js'
import { BLOCK_SIZE, FORMAT, TYPE, type SparseFragment, type TarHeader } from './types.js'

/** Internal: never escapes the reader, which turns it into a TarError with its offset. */
export class SparseMapError extends Error {
  /** The code the TarError gets. */
  readonly tarCode: TarErrorCode
  constructor(tarCode: TarErrorCode, message: string) {
    super(message)
    this.tarCode = tarCode
  }
}

/** Where the map's blocks come from. */
export interface SparseBlocks {
  /** The next old GNU extension block (part of the headers). */
  extension(): Promise<Uint8Array>
  /** The next block of the entry's data (PAX 1.0 maps). */
  data(): Promise<Uint8Array>
}

/**
 * The entry's data fragments, or undefined when it is not a sparse file. Updates the header's
 * size (and, for PAX, its name) to the file's real ones. `maxBytes` caps the map.
 */
export async function readSparseMap(
  h: TarHeader,
  block: Uint8Array,
  blocks: SparseBlocks,
  maxBytes: number,
): Promise<SparseFragment[] | undefined> {
  try {
    if (h.typeflag === TYPE.GNU_SPARSE) return await oldGnuMap(h, block, blocks, maxBytes)
    const pax = h.pax
    if (pax === undefined) return undefined
    const version = paxSparseVersion(pax)
    if (version === undefined) return undefined
    h.format &= FORMAT.PAX
    const name = pax.get(PAX.GNU_SPARSE_NAME)
    if (name !== undefined && name.length > 0) setName(h, name)
    const size = pax.get(PAX.GNU_SPARSE_SIZE) ?? pax.get(PAX.GNU_SPARSE_REAL_SIZE)
    if (size !== undefined && size.length > 0) h.size = parseDecimal(size.toString('latin1'))
    if (version === '0.x') return parseSparseMap0x1(pax, MAX_SPARSE_ENTRIES)
    // PAX 1.0: the map sits at the start of the data and is not part of the logical data.
    return await readSparseMap1x0(() => blocks.data(), maxBytes, MAX_SPARSE_ENTRIES)
  } catch (err) {
    if (err instanceof PaxError) throw new SparseMapError('TAR_INVALID_SPARSE', err.message)
    if (err instanceof RangeError) throw new SparseMapError('TAR_FIELD_TOO_LONG', 'map too long')
    throw err
  }
}

async function oldGnuMap(
  h: TarHeader,
  block: Uint8Array,
  blocks: SparseBlocks,
  maxBytes: number,
): Promise<SparseFragment[]> {
  // The star format has a sparse header with the same type flag and another layout.
  if (blockFormat(block) !== FORMAT.GNU)
    throw new SparseMapError('TAR_INVALID_HEADER', 'not a GNU header')
  const fragments: SparseFragment[] = []
  try {
    h.size = parseNumeric(
      block.subarray(FIELD.gnuRealSize[0], FIELD.gnuRealSize[0] + FIELD.gnuRealSize[1]),
    )
    oldGnuFragments(
      block.subarray(FIELD.gnuSparse[0], FIELD.gnuSparse[0] + FIELD.gnuSparse[1]),
      4,
      fragments,
    )
    let extended = block[FIELD.gnuIsExtended[0]]! > 0
    let mapBytes = 0
    while (extended) {
      // Extension blocks count against the same cap as other metadata (Go: CVE-2025-58183).
      mapBytes += BLOCK_SIZE
      if (mapBytes > maxBytes || fragments.length > MAX_SPARSE_ENTRIES) {
        throw new SparseMapError('TAR_FIELD_TOO_LONG', 'map too long')
      }
      const ext = await blocks.extension()
      oldGnuFragments(ext, 21, fragments)
      extended = ext[504]! > 0
    }
  } catch (err) {
    if (err instanceof TarError || err instanceof SparseMapError) throw err
    throw new SparseMapError('TAR_INVALID_NUMBER', 'invalid number')
  }
  return fragments
}
