/**
 * Splits a byte stream of JSON values (tar-split metadata) into parsed values, as Go's
 * streaming decoder reads them: any whitespace between values. Go writes one object a line,
 * so each line is decoded and tried with JSON.parse whole (fast, native); a line that is not
 * exactly one object (several on a line, one over several lines) goes through a character
 * scanner that finds where values end.
 */
import { InvalidMetadataError } from './errors.js'

/** Largest single JSON value accepted (a 1 MiB segment is 1.4 MB of base64). */
export const MAX_ENTRY_JSON = 8 << 20

export async function* jsonValues(chunks: AsyncIterable<Uint8Array>): AsyncGenerator {
  const scanner = new Scanner()
  let carry: Buffer | undefined
  for await (const chunk of chunks) {
    const data =
      carry === undefined
        ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
        : Buffer.concat([carry, chunk])
    let pos = 0
    for (;;) {
      const nl = data.indexOf(0x0a, pos)
      if (nl < 0) break
      // A newline never falls inside a UTF-8 sequence, so each line decodes on its own.
      const line = data.toString('utf8', pos, nl)
      pos = nl + 1
      const whole = scanner.idle ? wholeObject(line) : undefined
      if (whole !== undefined) yield whole
      else yield* scanner.feed(line + '\n')
    }
    carry = pos < data.length ? Buffer.from(data.subarray(pos)) : undefined
    if (carry !== undefined && carry.length > MAX_ENTRY_JSON) {
      throw new InvalidMetadataError('Cannot read tar-split metadata: entry too large')
    }
  }
  if (carry !== undefined) yield* scanner.feed(carry.toString('utf8'))
  scanner.end()
}

/** The line as one JSON object, or undefined when it is not exactly that. */
function wholeObject(line: string): unknown {
  if (line.charCodeAt(0) !== 0x7b) return undefined
  try {
    const v: unknown = JSON.parse(line)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined
  } catch {
    return undefined
  }
}

/** Finds the ends of top-level JSON values in text fed piece by piece. */
class Scanner {
  #buf = ''
  #depth = 0
  #inString = false
  #escaped = false

  /** Nothing pending: the next line starts afresh. */
  get idle(): boolean {
    return this.#buf === '' && this.#depth === 0
  }

  *feed(text: string): Generator {
    const start = this.#buf.length
    this.#buf += text
    let from = 0
    for (let i = start; i < this.#buf.length; i++) {
      const c = this.#buf.charCodeAt(i)
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false
        else if (c === 0x5c) this.#escaped = true
        else if (c === 0x22) this.#inString = false
        continue
      }
      if (c === 0x22) this.#inString = true
      else if (c === 0x7b || c === 0x5b) this.#depth++
      else if (c === 0x7d || c === 0x5d) {
        if (--this.#depth < 0)
          throw new InvalidMetadataError('Cannot read tar-split metadata: unbalanced JSON')
        if (this.#depth === 0) {
          yield parse(this.#buf.slice(from, i + 1))
          from = i + 1
        }
      } else if (this.#depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw new InvalidMetadataError(
          'Cannot read tar-split metadata: unexpected text between entries',
        )
      }
    }
    this.#buf = this.#depth === 0 ? '' : this.#buf.slice(from)
    if (this.#buf.length > MAX_ENTRY_JSON)
      throw new InvalidMetadataError('Cannot read tar-split metadata: entry too large')
  }

  end(): void {
    if (this.#depth !== 0 || this.#inString)
      throw new InvalidMetadataError('Cannot read tar-split metadata: truncated JSON')
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new InvalidMetadataError('Cannot read tar-split entry: not JSON', { cause: err })
  }
}
