/**
 * CRC-64 with Go's ISO table (`hash/crc64`, `crc64.ISO`): polynomial 0xD800000000000000
 * (reflected), initial value all ones, final value inverted. tar-split records this checksum
 * of every file's data, serialized big-endian.
 *
 * Eight bytes at a time with eight lookup tables ("slicing-by-8"), as Go does. Long inputs go
 * through a small WebAssembly module (crc64.wat), which has the 64-bit integers JavaScript
 * lacks and runs about twice as fast; short ones, and any machine without WebAssembly, use
 * the JavaScript loop, which keeps the register as two uint32 halves.
 */
import { CRC64_WASM } from './crc64-wasm.js'

const POLY_HI = 0xd8000000 // reflected ISO polynomial, high 32 bits (low 32 bits are 0)
const TABLES = 8
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
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

/** Inputs shorter than this stay in JavaScript (crossing into WebAssembly has a fixed cost). */
const WASM_MIN = 512
const WASM_INPUT = 16384 // the input area; the tables lie below
const WASM_CHUNK = 1 << 20
const ARENA_SLOTS = 8 // 1 MiB read buffers after the input area (memory: 145 pages of 64 KiB)

interface WasmCrc {
  readonly update: (crc: bigint, ptr: number, len: number) => bigint
  readonly memory: ArrayBuffer
  readonly input: Uint8Array
  /** Arena slots not handed out. */
  readonly free: Uint8Array[]
}

/** The little of the WebAssembly API used here (the compile target's lib does not declare it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: Record<string, unknown> }
}

function loadWasm(): WasmCrc | undefined {
  const api = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly
  if (api === undefined) return undefined
  try {
    const instance = new api.Instance(new api.Module(Buffer.from(CRC64_WASM, 'base64')))
    const memory = instance.exports['memory'] as { buffer: ArrayBuffer }
    const tables = new BigUint64Array(memory.buffer, 0, 256 * TABLES)
    for (let i = 0; i < 256 * TABLES; i++) tables[i] = (BigInt(T_HI[i]!) << 32n) | BigInt(T_LO[i]!)
    const free: Uint8Array[] = []
    for (let i = 0; i < ARENA_SLOTS; i++) {
      free.push(new Uint8Array(memory.buffer, WASM_INPUT + (i + 1) * WASM_CHUNK, WASM_CHUNK))
    }
    return {
      update: instance.exports['update'] as (crc: bigint, ptr: number, len: number) => bigint,
      memory: memory.buffer,
      input: new Uint8Array(memory.buffer, WASM_INPUT, WASM_CHUNK),
      free,
    }
  } catch {
    return undefined
  }
}

const WASM = LITTLE_ENDIAN ? loadWasm() : undefined

/** An incremental CRC-64/ISO. */
export class Crc64 {
  // The register, already inverted (Go keeps ^crc between updates the same way).
  #lo = 0xffffffff
  #hi = 0xffffffff

  update(data: Uint8Array): this {
    if (WASM !== undefined && data.length >= WASM_MIN) return this.#updateWasm(WASM, data)
    let lo = this.#lo
    let hi = this.#hi
    const n = data.length
    let p = 0
    // Bytes up to a 4-byte boundary one at a time, then whole words through a Uint32Array view
    // (two loads per 8 bytes instead of eight), then the tail.
    if (LITTLE_ENDIAN && n >= 64) {
      while ((data.byteOffset + p) & 3) {
        const idx = (lo ^ data[p]!) & 0xff
        lo = (T_LO[idx]! ^ ((lo >>> 8) | (hi << 24))) >>> 0
        hi = (T_HI[idx]! ^ (hi >>> 8)) >>> 0
        p++
      }
      const words = new Uint32Array(data.buffer, data.byteOffset + p, ((n - p) >>> 3) << 1)
      const wn = words.length
      for (let w = 0; w < wn; w += 2) {
        const l = lo ^ words[w]!
        const h = hi ^ words[w + 1]!
        lo =
          T_LO[1792 + (l & 0xff)]! ^
          T_LO[1536 + ((l >>> 8) & 0xff)]! ^
          T_LO[1280 + ((l >>> 16) & 0xff)]! ^
          T_LO[1024 + (l >>> 24)]! ^
          T_LO[768 + (h & 0xff)]! ^
          T_LO[512 + ((h >>> 8) & 0xff)]! ^
          T_LO[256 + ((h >>> 16) & 0xff)]! ^
          T_LO[h >>> 24]!
        hi =
          T_HI[1792 + (l & 0xff)]! ^
          T_HI[1536 + ((l >>> 8) & 0xff)]! ^
          T_HI[1280 + ((l >>> 16) & 0xff)]! ^
          T_HI[1024 + (l >>> 24)]! ^
          T_HI[768 + (h & 0xff)]! ^
          T_HI[512 + ((h >>> 8) & 0xff)]! ^
          T_HI[256 + ((h >>> 16) & 0xff)]! ^
          T_HI[h >>> 24]!
      }
      p += wn * 4
    }
    while (p < n) {
      const idx = (lo ^ data[p]!) & 0xff
      lo = (T_LO[idx]! ^ ((lo >>> 8) | (hi << 24))) >>> 0
      hi = (T_HI[idx]! ^ (hi >>> 8)) >>> 0
      p++
    }
    this.#lo = lo >>> 0
    this.#hi = hi >>> 0
    return this
  }

  #updateWasm(wasm: WasmCrc, data: Uint8Array): this {
    let crc = (BigInt(this.#hi) << 32n) | BigInt(this.#lo)
    if (data.buffer === wasm.memory) {
      // Already in the module's memory (an arena buffer): checksummed in place.
      crc = wasm.update(crc, data.byteOffset, data.length)
    } else {
      for (let p = 0; p < data.length; p += WASM_CHUNK) {
        const piece = data.subarray(p, p + WASM_CHUNK)
        wasm.input.set(piece)
        crc = wasm.update(crc, WASM_INPUT, piece.length)
      }
    }
    crc = BigInt.asUintN(64, crc)
    this.#lo = Number(crc & 0xffffffffn)
    this.#hi = Number(crc >> 32n)
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

/**
 * Up to `count` 1 MiB buffers inside the checksum module's memory, for a reader that recycles
 * its read buffers: data read into them is checksummed without a copy. Empty when there is no
 * WebAssembly or no free slot. Give them back with releaseCrcArena.
 */
export function takeCrcArena(count: number): Uint8Array[] {
  return WASM === undefined ? [] : WASM.free.splice(0, Math.min(count, WASM.free.length))
}

export function releaseCrcArena(buffers: Uint8Array[]): void {
  WASM?.free.push(...buffers)
}
