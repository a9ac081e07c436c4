/**
 * Streaming decompression of a layer by magic number, in front of the tar reader (moby
 * `archive.DecompressStream`): gzip, bzip2, xz and zstd are recognised from their first bytes;
 * anything else passes through unchanged.
 *
 * gzip runs on the addon's own thread (./gunzip-thread.ts; node:zlib where the addon cannot).
 * xz, bzip2 and zstd run the system program (`xz -d -c -q`, as Docker does for xz) with pipes
 * on both ends. Backpressure holds end to end: a slow consumer stops
 * the program, which stops reading our input, so memory stays flat whatever the stream
 * expands to.
 *
 * Not node:zlib's zstd (Node 22.15 / 23.8 and later): as of Node 22.23 it stops after the
 * first frame, dropping the rest of a multi-frame stream, and ends a truncated frame without
 * an error. Either would give a layer the wrong DiffID or accept a cut download; the tests
 * (concatenated frames, truncation) fail with it.
 *
 * @example
 * const { compression, stream } = await decompress(createReadStream('layer.tar.gz'))
 * await pipeline(stream, new VerifyDigest(diffId), sink)
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { addAbortSignal, PassThrough, Readable, type Duplex, type Writable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { DecompressError, DecompressorMissingError } from './decompress-errors.js'
import { gunzipThread } from './gunzip-thread.js'

/** A compression format Docker accepts for layers (`archive.Compression`). */
export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd'

export interface DecompressOptions {
  /** Aborting destroys the stream with an `AbortError` and kills the decompressor. */
  readonly signal?: AbortSignal
}

export interface Decompressed {
  readonly compression: Compression
  /**
   * The decompressed bytes. It errors with DECOMPRESS_FAILED when the compressed data is
   * corrupt or truncated, and with the source's own error when the source fails. Destroying it
   * early (or breaking out of `for await`) kills the decompressor and releases the source.
   */
  readonly stream: Readable
}

/** Bytes read before deciding (moby peeks 10; zstd's skippable frames need 8). */
export const SNIFF_SIZE = 10

const GZIP_MAGIC = [0x1f, 0x8b, 0x08]
const BZIP2_MAGIC = [0x42, 0x5a, 0x68] // "BZh"
const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd]
/** zstd skippable frames: little-endian magic 0x184D2A50 to 0x184D2A5F (RFC 8878 §3.1.2). */
const ZSTD_SKIPPABLE_START = 0x184d2a50
const ZSTD_SKIPPABLE_MASK = 0xfffffff0

/** The programs run for formats node:zlib lacks, and the Debian packages that ship them. */
const PROGRAMS = {
  bzip2: { program: 'bzip2', package: 'bzip2' },
  xz: { program: 'xz', package: 'xz-utils' },
  zstd: { program: 'zstd', package: 'zstd' },
} as const

/**
 * Output chunks of zlib (its default is 16 KiB). Each chunk costs the readers downstream a
 * round of work (hash hand-off, tar parsing across chunk ends): 64 KiB chunks made a gzip'd
 * 205 MB rootfs register in 1.45 s, 256 KiB ones in 1.15 s (1 MiB: no better).
 */
const CHUNK_SIZE = 256 * 1024
/** What our stream buffers ahead of its reader, so that zlib keeps working meanwhile. */
const AHEAD = 4 * CHUNK_SIZE
/** What the gunzip thread may inflate ahead of our stream (its own slots). */
const THREAD_AHEAD = 4 << 20
/** Program stderr kept for the error message; the rest is read and dropped. */
const MAX_STDERR = 4096

const startsWith = (head: Uint8Array, magic: readonly number[]): boolean =>
  head.length >= magic.length && magic.every((b, i) => head[i] === b)

/** The compression of a stream from its first bytes (at least {@link SNIFF_SIZE} if it has them). */
export function detectCompression(head: Uint8Array): Compression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip'
  if (startsWith(head, BZIP2_MAGIC)) return 'bzip2'
  if (startsWith(head, XZ_MAGIC)) return 'xz'
  if (startsWith(head, ZSTD_MAGIC)) return 'zstd'
  if (head.length >= 8) {
    const magic = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true)
    if ((magic & ZSTD_SKIPPABLE_MASK) >>> 0 === ZSTD_SKIPPABLE_START) return 'zstd'
  }
  return 'none'
}

/**
 * Detects the compression of `source` and returns its decompressed bytes. Reads up to
 * {@link SNIFF_SIZE} bytes before resolving; an empty source is `none` and yields nothing.
 * Rejects with DECOMPRESSOR_MISSING when the program a format needs is not installed.
 */
export async function decompress(
  source: AsyncIterable<Uint8Array>,
  options: DecompressOptions = {},
): Promise<Decompressed> {
  const { signal } = options
  signal?.throwIfAborted()
  const input = source[Symbol.asyncIterator]()
  const head: Uint8Array[] = []
  let size = 0
  let done = false
  try {
    while (size < SNIFF_SIZE) {
      const r = await nextOrAbort(input, signal)
      if (r.done === true) {
        done = true
        break
      }
      head.push(r.value)
      size += r.value.length
    }
  } catch (err) {
    if (!done) void releaseSource(source, input)
    throw err
  }
  const first = Buffer.concat(head, Math.min(size, SNIFF_SIZE))
  const compression = detectCompression(first)

  let engine: Engine
  try {
    engine = await startEngine(compression)
  } catch (err) {
    void releaseSource(source, input)
    throw err
  }
  const stream = new DecompressStream(compression, engine, head, done ? undefined : input, source)
  if (signal !== undefined) addAbortSignal(signal, stream)
  return { compression, stream }
}

/** What turns compressed bytes into plain ones: a stream (our gunzip thread, zlib) or a program. */
type Engine =
  | { readonly type: 'transform'; readonly transform: Duplex }
  | { readonly type: 'program'; readonly child: ChildProcessWithoutNullStreams }

async function startEngine(compression: Compression): Promise<Engine> {
  switch (compression) {
    case 'none':
      return { type: 'transform', transform: new PassThrough() }
    case 'gzip': {
      // Concatenated members are decoded one after the other, as Go's multistream reader does.
      const transform =
        gunzipThread({ chunkSize: CHUNK_SIZE, ahead: THREAD_AHEAD }) ??
        createGunzip({ chunkSize: CHUNK_SIZE })
      return { type: 'transform', transform }
    }
    case 'bzip2':
    case 'xz':
    case 'zstd':
      return startProgram(compression)
  }
}

async function startProgram(compression: keyof typeof PROGRAMS): Promise<Engine> {
  const { program, package: pkg } = PROGRAMS[compression]
  const child = spawn(program, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] })
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', reject)
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DecompressorMissingError(compression, program, pkg, { cause: err })
    throw err
  }
  return { type: 'program', child }
}

/** `input.next()`, or the signal's reason as soon as it aborts (a stalled source cannot hold us). */
async function nextOrAbort(
  input: AsyncIterator<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<IteratorResult<Uint8Array>> {
  if (signal === undefined) return input.next()
  let onAbort!: () => void
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  const next = input.next()
  next.catch(() => undefined) // a source failing after we gave up on it
  try {
    return await Promise.race([next, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/** Ends the source early: its iterator's `return`, and `destroy` for a Node stream. */
async function releaseSource(
  source: AsyncIterable<Uint8Array>,
  input: AsyncIterator<Uint8Array>,
): Promise<void> {
  const s = source as { destroy?: unknown }
  // A pending `next()` would hold `return()` back until the source yields; destroy does not wait.
  if (typeof s.destroy === 'function') (s.destroy as () => void).call(source)
  try {
    await input.return?.()
  } catch {
    // The source's failure is of no interest once we stopped reading it.
  }
}

function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done)
      w.off('close', done)
      resolve()
    }
    w.on('drain', done)
    w.on('close', done)
  })
}

/**
 * The decompressed side. A feed loop writes the source into the engine's input, waiting for
 * `drain`; the engine's output is pushed here and paused whenever our buffer is full. The
 * stream ends only once a program has exited with status 0, so a consumer that sees a clean
 * end has all of the data.
 */
class DecompressStream extends Readable {
  readonly #compression: Compression
  readonly #sink: Writable
  readonly #out: Readable
  readonly #child: ChildProcessWithoutNullStreams | undefined
  readonly #source: AsyncIterable<Uint8Array>
  readonly #input: AsyncIterator<Uint8Array> | undefined
  readonly #stderr: Buffer[] = []
  #stderrSize = 0
  #outEnded = false
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  #stopped = false
  /** The feed loop has read the source to its end. */
  #inputDone = false

  constructor(
    compression: Compression,
    engine: Engine,
    head: Uint8Array[],
    input: AsyncIterator<Uint8Array> | undefined,
    source: AsyncIterable<Uint8Array>,
  ) {
    super({ highWaterMark: AHEAD })
    this.#compression = compression
    this.#source = source
    this.#input = input
    if (engine.type === 'transform') {
      this.#sink = this.#out = engine.transform
      this.#out.on('error', (err) =>
        this.destroy(new DecompressError(compression, err.message, { cause: err })),
      )
    } else {
      const child = engine.child
      this.#child = child
      this.#sink = child.stdin
      this.#out = child.stdout
      // EPIPE when the program exits before reading everything: its exit status tells why.
      child.stdin.on('error', () => undefined)
      child.stdout.on('error', (err) => this.destroy(err))
      child.stderr.on('data', (d: Buffer) => {
        if (this.#stderrSize < MAX_STDERR) this.#stderr.push(d)
        this.#stderrSize += d.length
      })
      child.on('error', (err) => this.destroy(err))
      child.on('close', (code, signal) => {
        this.#exit = { code, signal }
        this.#finish()
      })
    }
    this.#out.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#out.pause()
    })
    this.#out.on('end', () => {
      this.#outEnded = true
      this.#finish()
    })
    void this.#feed(head)
  }

  override _read(): void {
    this.#out.resume()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop()
    const child = this.#child
    if (child === undefined || this.#exit !== undefined) {
      callback(err)
      return
    }
    // Kill and wait for `close`: the program is reaped and its pipes are closed (#stop closed
    // stdin and stdout; stderr ends when the program dies).
    child.once('close', () => callback(err))
    child.kill('SIGKILL')
  }

  /** Ends the stream once the output has ended and a program has exited. */
  #finish(): void {
    if (this.destroyed || !this.#outEnded) return
    if (this.#child !== undefined) {
      if (this.#exit === undefined) return
      const { code, signal } = this.#exit
      if (code !== 0) {
        const line = Buffer.concat(this.#stderr).toString('utf8').trim().split('\n')[0]?.trim()
        const status =
          signal !== null ? `killed by ${signal}` : `exited with status ${String(code)}`
        const program = this.#child.spawnfile
        this.destroy(new DecompressError(this.#compression, line || `${program} ${status}`))
        return
      }
    }
    this.push(null)
  }

  /** Stops feeding and releases the source and the engine's input; safe to call again. */
  #stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#sink.destroy()
    if (this.#child !== undefined) this.#out.destroy()
    if (this.#input !== undefined && !this.#inputDone) void releaseSource(this.#source, this.#input)
  }

  async #feed(head: Uint8Array[]): Promise<void> {
    try {
      for (const chunk of head) if (!(await this.#write(chunk))) return
      const input = this.#input
      if (input !== undefined)
        for (;;) {
          const r = await input.next()
          if (this.#stopped) return
          if (r.done === true) {
            this.#inputDone = true
            break
          }
          if (!(await this.#write(r.value))) return
        }
      if (this.#writable()) this.#sink.end()
    } catch (err) {
      if (!this.#stopped) this.destroy(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Writes one chunk; false when feeding must stop (destroyed, or the engine went away). */
  async #write(chunk: Uint8Array): Promise<boolean> {
    if (!this.#writable()) return false
    if (!this.#sink.write(chunk)) await drained(this.#sink)
    return this.#writable()
  }

  #writable(): boolean {
    return !this.#stopped && !this.#sink.destroyed
  }
}
