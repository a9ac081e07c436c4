/**
 * CRC-64 with Go's ISO table (`hash/crc64`, `crc64.ISO`): polynomial 0xD800000000000000
 * (reflected), initial value all ones, final value inverted. tar-split records this checksum
 * of every file's data, serialized big-endian.
 *
 * JavaScript has no fast 64-bit integers, so the register is kept as two uint32 halves and
 * updated eight bytes at a time with eight lookup tables ("slicing-by-8"), as Go does.
 */

const POLY_HI = 0xd8000000 // reflected ISO polynomial, high 32 bits (low 32 bits are 0)
const TABLES = 8
// Table k, entry i: the CRC of byte i followed by k zero bytes. Stored as hi/lo halves.
const T_LO = new Uint32Array(256 * TABLES)
const T_HI = new Uint32Array(256 * TABLES)

for (let i = 0; i < 256; i++) {
  let lo = i
  let hi = 0
  for (let b = 0; b < 8; b++) {
    const carry = lo & 1
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0
    hi = hi >>> 1
    if (carry) hi = (hi ^ POLY_HI) >>> 0
  }
  T_LO[i] = lo
  T_HI[i] = hi
}
for (let k = 1; k < TABLES; k++) {
  for (let i = 0; i < 256; i++) {
    const plo = T_LO[(k - 1) * 256 + i]!
    const phi = T_HI[(k - 1) * 256 + i]!
    const idx = plo & 0xff
    T_LO[k * 256 + i] = (T_LO[idx]! ^ ((plo >>> 8) | (phi << 24))) >>> 0
    T_HI[k * 256 + i] = (T_HI[idx]! ^ (phi >>> 8)) >>> 0
  }
}

/** An incremental CRC-64/ISO. */
export class Crc64 {
  // The register, already inverted (Go keeps ^crc between updates the same way).
  #lo = 0xffffffff
  #hi = 0xffffffff

  update(data: Uint8Array): this {
    let lo = this.#lo
    let hi = this.#hi
    const n = data.length
    let p = 0
    const end8 = n - (n % 8)
    while (p < end8) {
      const l = lo ^ (data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16) | (data[p + 3]! << 24))
      const h =
        hi ^ (data[p + 4]! | (data[p + 5]! << 8) | (data[p + 6]! << 16) | (data[p + 7]! << 24))
      const i0 = 7 * 256 + (l & 0xff)
      const i1 = 6 * 256 + ((l >>> 8) & 0xff)
      const i2 = 5 * 256 + ((l >>> 16) & 0xff)
      const i3 = 4 * 256 + (l >>> 24)
      const i4 = 3 * 256 + (h & 0xff)
      const i5 = 2 * 256 + ((h >>> 8) & 0xff)
      const i6 = 256 + ((h >>> 16) & 0xff)
      const i7 = h >>> 24
      lo =
        T_LO[i0]! ^
        T_LO[i1]! ^
        T_LO[i2]! ^
        T_LO[i3]! ^
        T_LO[i4]! ^
        T_LO[i5]! ^
        T_LO[i6]! ^
        T_LO[i7]!
      hi =
        T_HI[i0]! ^
        T_HI[i1]! ^
        T_HI[i2]! ^
        T_HI[i3]! ^
        T_HI[i4]! ^
        T_HI[i5]! ^
        T_HI[i6]! ^
        T_HI[i7]!
      p += 8
    }
    while (p < n) {
      const idx = (lo ^ data[p]!) & 0xff
      lo = T_LO[idx]! ^ ((lo >>> 8) | (hi << 24))
      hi = T_HI[idx]! ^ (hi >>> 8)
      p++
    }
    this.#lo = lo >>> 0
    this.#hi = hi >>> 0
    return this
  }

  /** The checksum as 8 big-endian bytes, as tar-split stores it. */
  digest(): Buffer {
    const out = Buffer.allocUnsafe(8)
    out.writeUInt32BE(~this.#hi >>> 0, 0)
    out.writeUInt32BE(~this.#lo >>> 0, 4)
    return out
  }

  reset(): void {
    this.#lo = 0xffffffff
    this.#hi = 0xffffffff
  }
}

/** CRC-64/ISO of one byte string, 8 big-endian bytes. */
export function crc64(data: Uint8Array): Buffer {
  return new Crc64().update(data).digest()
}
