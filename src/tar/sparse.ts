/**
 * Sparse files: the maps that say where a file's data fragments lie, in the four formats Go
 * reads (old GNU 'S' headers with extension blocks, PAX 0.0, 0.1 and 1.0), and their checks.
 * A reader expands the holes to zeros, so the logical data is the whole file.
 */
import type { SparseFragment } from './types.js'
import { PAX, PaxError, parseDecimal } from './pax.js'
import { parseNumeric } from './header.js'

/** Go's validateSparseEntries: fragments in order, not overlapping, inside the file. */
export function validSparse(fragments: readonly SparseFragment[], size: number): boolean {
  if (size < 0) return false
  let preEnd = 0
  for (const f of fragments) {
    if (f.offset < 0 || f.length < 0) return false
    if (f.offset > Number.MAX_SAFE_INTEGER - f.length) return false
    const end = f.offset + f.length
    if (end > size) return false
    if (preEnd > f.offset) return false
    preEnd = end
  }
  return true
}

/** Which PAX sparse version, if any, the records describe (Go's readGNUSparsePAXHeaders). */
export function paxSparseVersion(pax: ReadonlyMap<string, Buffer>): '0.x' | '1.0' | undefined {
  const major = pax.get(PAX.GNU_SPARSE_MAJOR)?.toString('latin1') ?? ''
  const minor = pax.get(PAX.GNU_SPARSE_MINOR)?.toString('latin1') ?? ''
  if (major === '0' && (minor === '0' || minor === '1')) return '0.x'
  if (major === '1' && minor === '0') return '1.0'
  if (major !== '' || minor !== '') return undefined // unknown version: not sparse
  if ((pax.get(PAX.GNU_SPARSE_MAP)?.length ?? 0) > 0) return '0.x'
  return undefined
}

function pairs(numbers: string[], what: string): SparseFragment[] {
  const out: SparseFragment[] = []
  for (let i = 0; i + 1 < numbers.length; i += 2) {
    out.push({ offset: parseDecimal(numbers[i]!), length: parseDecimal(numbers[i + 1]!) })
  }
  if (out.some((f) => !Number.isSafeInteger(f.offset) || !Number.isSafeInteger(f.length))) {
    throw new PaxError(`${what}: number out of range`)
  }
  return out
}

/** PAX 0.0 / 0.1: the map is in the `GNU.sparse.map` record, count in `numblocks`. */
export function parseSparseMap0x1(
  pax: ReadonlyMap<string, Buffer>,
  maxEntries: number,
): SparseFragment[] {
  const count = parseDecimal(pax.get(PAX.GNU_SPARSE_NUM_BLOCKS)?.toString('latin1') ?? '')
  if (count < 0 || count > maxEntries) throw new PaxError('invalid GNU sparse block count')
  let items = (pax.get(PAX.GNU_SPARSE_MAP)?.toString('latin1') ?? '').split(',')
  if (items.length === 1 && items[0] === '') items = []
  if (items.length !== 2 * count)
    throw new PaxError('GNU sparse map does not match its block count')
  return pairs(items, 'GNU sparse map')
}

/**
 * PAX 1.0: the map is at the start of the data section, as decimal numbers one per line
 * (count, then offset/length pairs), padded to a block. `readBlock` returns the next 512
 * bytes of the data section. At most `maxBytes` of map are read.
 */
export async function readSparseMap1x0(
  readBlock: () => Promise<Uint8Array>,
  maxBytes: number,
  maxEntries: number,
): Promise<SparseFragment[]> {
  let text = ''
  let newlines = 0
  let pos = 0
  const feed = async (want: number): Promise<void> => {
    while (newlines < want) {
      if (text.length >= maxBytes) throw new RangeError('sparse map too long')
      const blk = await readBlock()
      for (let i = 0; i < blk.length; i++) if (blk[i] === 0x0a) newlines++
      text += Buffer.from(blk).toString('latin1')
    }
  }
  const token = (): string => {
    newlines--
    const nl = text.indexOf('\n', pos)
    const tok = text.slice(pos, nl)
    pos = nl + 1
    return tok
  }
  await feed(1)
  const count = parseDecimal(token())
  if (count < 0 || count > maxEntries) throw new PaxError('invalid GNU sparse 1.0 entry count')
  await feed(2 * count)
  const numbers: string[] = []
  for (let i = 0; i < 2 * count; i++) numbers.push(token())
  return pairs(numbers, 'GNU sparse 1.0 map')
}

/** Fragments listed in an old GNU sparse header or extension block (24 bytes each). */
export function oldGnuFragments(area: Uint8Array, count: number, into: SparseFragment[]): void {
  for (let i = 0; i < count; i++) {
    const off = area.subarray(i * 24, i * 24 + 12)
    if (off[0] === 0) break // GNU and BSD tar stop at the first empty offset
    into.push({
      offset: parseNumeric(off),
      length: parseNumeric(area.subarray(i * 24 + 12, i * 24 + 24)),
    })
  }
}

/** The holes between fragments, ending with a (possibly empty) hole at the end of the file. */
export function sparseHoles(fragments: readonly SparseFragment[], size: number): SparseFragment[] {
  const holes: SparseFragment[] = []
  let pos = 0
  for (const f of fragments) {
    if (f.length === 0) continue
    if (f.offset > pos) holes.push({ offset: pos, length: f.offset - pos })
    pos = f.offset + f.length
  }
  holes.push({ offset: pos, length: size - pos })
  return holes
}
