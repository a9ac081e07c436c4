/**
 * Hand-made tar blocks for tests that need exact, even broken, bytes (the writer refuses to
 * produce broken archives). Fields are written raw; `checksum: false` leaves it wrong.
 */
export interface BlockSpec {
  name?: string
  size?: number
  typeflag?: string
  mode?: string
  mtime?: string
  sizeField?: string
  magic?: 'ustar' | 'gnu' | 'v7'
  checksum?: boolean
}

export function headerBlock(spec: BlockSpec): Buffer {
  const b = Buffer.alloc(512)
  b.write(spec.name ?? 'file', 0, 100, 'utf8')
  b.write(spec.mode ?? '0000644\0', 100, 'latin1')
  b.write('0000000\0', 108, 'latin1')
  b.write('0000000\0', 116, 'latin1')
  b.write(
    spec.sizeField ?? (spec.size ?? 0).toString(8).padStart(11, '0') + '\0',
    124,
    12,
    'latin1',
  )
  b.write(spec.mtime ?? '14000000000\0', 136, 'latin1')
  b.write(spec.typeflag ?? '0', 156, 'latin1')
  const magic = spec.magic ?? 'ustar'
  if (magic === 'ustar') b.write('ustar\x0000', 257, 'latin1')
  if (magic === 'gnu') b.write('ustar  \x00', 257, 'latin1')
  b.write('        ', 148, 'latin1')
  let sum = 0
  for (const c of b) sum += c
  if (spec.checksum !== false) b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1')
  else b.write('0000000\0', 148, 'latin1')
  return b
}

/** A header followed by its data and padding. */
export function fileEntry(name: string, data: string | Buffer, spec: BlockSpec = {}): Buffer {
  const body = Buffer.from(data)
  const pad = Buffer.alloc(-body.length & 511)
  return Buffer.concat([headerBlock({ name, size: body.length, ...spec }), body, pad])
}

export const END = Buffer.alloc(1024)

/** Splits bytes into chunks at the given cut points (a source for chunking tests). */
export function* chunked(data: Uint8Array, cuts: number[]): Generator<Uint8Array> {
  let pos = 0
  for (const c of [...new Set(cuts)]
    .filter((x) => x > 0 && x < data.length)
    .sort((a, b) => a - b)) {
    yield data.subarray(pos, c)
    pos = c
  }
  yield data.subarray(pos)
}
