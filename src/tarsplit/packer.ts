/**
 * Writes entries as tar-split's JSON packer does: one JSON object a line, keys in Go's
 * struct order (`type`, `name`|`name_raw`, `size`, `payload`, `position`), empty fields
 * omitted as Go's `omitempty` does, strings escaped as Go's encoder escapes them, the
 * whole gzip-compressed. Positions are assigned here, 0-based. Duplicate names are refused.
 */
import { createGzip } from 'node:zlib'
import type { Writable } from 'node:stream'
import { SeenPaths } from './clean-path.js'
import { DuplicatePathError } from './errors.js'
import { isFileEntry, type EntrySink, type TarSplitEntry } from './entry.js'

const HEX = '0123456789abcdef'
const PENDING_SIZE = 1 << 16
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Go's encoding/json string encoding (HTML-safe, as json.Encoder does by default). */
export function goJsonString(s: string): string {
  let out = '"'
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let esc: string | undefined
    if (c < 0x20) {
      esc =
        c === 0x0a
          ? '\\n'
          : c === 0x0d
            ? '\\r'
            : c === 0x09
              ? '\\t'
              : '\\u00' + HEX.charAt(c >> 4) + HEX.charAt(c & 15)
    } else if (c === 0x22) esc = '\\"'
    else if (c === 0x5c) esc = '\\\\'
    else if (c === 0x3c) esc = '\\u003c'
    else if (c === 0x3e) esc = '\\u003e'
    else if (c === 0x26) esc = '\\u0026'
    else if (c === 0x2028) esc = '\\u2028'
    else if (c === 0x2029) esc = '\\u2029'
    if (esc !== undefined) {
      out += s.slice(start, i) + esc
      start = i + 1
    }
  }
  return out + s.slice(start) + '"'
}

/** The name as Go's Entry.SetName stores it: text when valid UTF-8, else raw bytes. */
function nameField(name: Buffer): string {
  try {
    return `"name":${goJsonString(UTF8.decode(name))},`
  } catch {
    return `"name_raw":"${name.toString('base64')}",`
  }
}

/** One entry as Go's json.Encoder writes it, newline included. */
export function encodeEntry(e: TarSplitEntry): string {
  if (isFileEntry(e)) {
    const name = e.name.length > 0 ? nameField(e.name) : ''
    const size = e.size !== 0 ? `"size":${e.size},` : ''
    const payload = e.crc !== undefined ? `"${e.crc.toString('base64')}"` : 'null'
    return `{"type":1,${name}${size}"payload":${payload},"position":${e.position}}\n`
  }
  return `{"type":2,"payload":"${e.payload.toString('base64')}","position":${e.position}}\n`
}

export interface PackerOptions {
  /**
   * gzip level. Nothing hashes tar-split.json.gz, so speed can be bought with size: the
   * default, 1, makes metadata about 1.2x larger than Go's level 6 and costs far less time.
   */
  readonly level?: number
}

/**
 * Packs entries into gzip'd JSON lines on a writable sink (a file stream, usually).
 * Call `close()` once to flush; the sink is ended.
 */
export class JsonPacker implements EntrySink {
  readonly #gzip
  readonly #seen = new SeenPaths()
  #position = 0
  /** JSON lines not yet compressed, written as bytes: no long string to flatten and encode. */
  #pending = Buffer.allocUnsafe(PENDING_SIZE)
  #used = 0
  #done: Promise<void>

  constructor(sink: Writable, options: PackerOptions = {}) {
    // highWaterMark (a Transform option zlib passes on, missing from its types) leaves room
    // for a few MiB of JSON, so that compressing on the thread pool overlaps with parsing
    // instead of making it wait at every 16 KiB.
    const gzipOptions = { level: options.level ?? 1, chunkSize: 1 << 16, highWaterMark: 4 << 20 }
    this.#gzip = createGzip(gzipOptions)
    this.#gzip.pipe(sink)
    this.#done = new Promise((resolve, reject) => {
      sink.once('finish', resolve)
      sink.once('close', resolve)
      sink.once('error', reject)
      this.#gzip.once('error', reject)
    })
    this.#done.catch(() => {}) // observed by close()
  }

  /** Entries added so far. */
  get count(): number {
    return this.#position
  }

  async add(entry: TarSplitEntry): Promise<void> {
    if (isFileEntry(entry) && !this.#seen.add(entry.name)) {
      throw new DuplicatePathError(entry.name.toString('utf8'))
    }
    entry.position = this.#position++
    const line = encodeEntry(entry)
    // A UTF-16 unit takes at most 3 bytes in UTF-8.
    if (this.#used + line.length * 3 > this.#pending.length) {
      await this.#flush()
      if (line.length * 3 > this.#pending.length)
        this.#pending = Buffer.allocUnsafe(line.length * 3)
    }
    this.#used += this.#pending.write(line, this.#used)
  }

  async #flush(): Promise<void> {
    if (this.#used === 0) return
    const bytes = this.#pending.subarray(0, this.#used)
    // gzip holds on to what it is given until compressed: the next lines go to new memory.
    this.#pending = Buffer.allocUnsafe(PENDING_SIZE)
    this.#used = 0
    if (!this.#gzip.write(bytes)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          this.#gzip.off('drain', onDrain)
          reject(err)
        }
        const onDrain = (): void => {
          this.#gzip.off('error', onError)
          resolve()
        }
        this.#gzip.once('drain', onDrain)
        this.#gzip.once('error', onError)
      })
    }
  }

  /** Flushes everything and ends the sink. */
  async close(): Promise<void> {
    await this.#flush()
    this.#gzip.end()
    await this.#done
  }

  /** Abandons the output (the sink is destroyed). */
  destroy(err?: Error): void {
    this.#gzip.destroy(err)
  }
}

/** Collects entries in memory (tests, small archives), assigning positions like the packer. */
export class ArraySink implements EntrySink {
  readonly entries: TarSplitEntry[] = []
  readonly #seen = new SeenPaths()
  add(entry: TarSplitEntry): void {
    if (isFileEntry(entry) && !this.#seen.add(entry.name))
      throw new DuplicatePathError(entry.name.toString('utf8'))
    entry.position = this.entries.length
    this.entries.push(entry)
  }
}
