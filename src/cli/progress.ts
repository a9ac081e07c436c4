/**
 * Progress of a load or save, on standard error: bars per layer on a terminal (bytes, rate,
 * time left), JSON lines for tools (`--progress=json`), or nothing. Standard output stays for
 * the command's result.
 */
import type { ProgressEvent } from '../image/types.js'

export type ProgressMode = 'auto' | 'tty' | 'json' | 'none'

export interface Progress {
  readonly onProgress: ((e: ProgressEvent) => void) | undefined
  /** Draws the final state and stops. */
  finish(): void
}

export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'tty', 'json', 'none']

/** A terminal redraw at most this often; JSON progress lines per layer too. */
const INTERVAL_MS = 100

export function createProgress(mode: ProgressMode, quiet: boolean): Progress {
  const err = process.stderr
  const resolved = mode === 'auto' ? (err.isTTY && !quiet ? 'tty' : 'none') : mode
  if (resolved === 'none') return { onProgress: undefined, finish: () => undefined }
  if (resolved === 'json') return jsonProgress((line) => err.write(line))
  return new Bars(
    (s) => err.write(s),
    () => (err.isTTY ? err.columns : 80),
  )
}

function jsonProgress(write: (line: string) => void): Progress {
  const last = new Map<string, number>()
  return {
    onProgress: (e) => {
      if (e.kind === 'layer-progress') {
        const now = Date.now()
        if (now - (last.get(e.diffId) ?? 0) < INTERVAL_MS) return
        last.set(e.diffId, now)
      }
      write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n')
    },
    finish: () => undefined,
  }
}

interface Bar {
  readonly diffId: string
  bytes: number
  total: number | undefined
  readonly started: number
  state: 'running' | 'done' | 'skipped'
}

/** One line per layer, redrawn in place (the cursor goes back up over the lines drawn). */
class Bars implements Progress {
  readonly #write: (s: string) => void
  readonly #columns: () => number
  readonly #bars: Bar[] = []
  readonly #byId = new Map<string, Bar>()
  #drawnLines = 0
  #lastDraw = 0

  constructor(write: (s: string) => void, columns: () => number) {
    this.#write = write
    this.#columns = columns
  }

  readonly onProgress = (e: ProgressEvent): void => {
    if (e.kind === 'image-done') return
    let bar = this.#byId.get(e.diffId)
    if (bar === undefined) {
      bar = { diffId: e.diffId, bytes: 0, total: undefined, started: Date.now(), state: 'running' }
      this.#bars.push(bar)
      this.#byId.set(e.diffId, bar)
    }
    if (e.kind === 'layer-start' || e.kind === 'layer-progress') bar.total = e.total ?? bar.total
    if (e.kind === 'layer-progress') bar.bytes = e.bytes
    if (e.kind === 'layer-done') {
      bar.bytes = e.bytes
      bar.state = e.skipped ? 'skipped' : 'done'
    }
    const now = Date.now()
    if (e.kind === 'layer-progress' && now - this.#lastDraw < INTERVAL_MS) return
    this.#lastDraw = now
    this.#draw()
  }

  finish(): void {
    this.#draw()
  }

  #draw(): void {
    const up = this.#drawnLines > 0 ? `\x1b[${this.#drawnLines}A` : ''
    const width = Math.max(40, this.#columns()) - 1
    const lines = this.#bars.map((b) => `\r\x1b[2K${barLine(b, width)}`)
    this.#write(up + lines.join('\n') + '\n')
    this.#drawnLines = lines.length
  }
}

/** `a1b2c3d4e5f6: [=====>      ]  12.0MB/40.0MB  8.0MB/s  4s` */
export function barLine(b: Bar, width: number, now = Date.now()): string {
  const id = b.diffId.replace(/^sha256:/, '').slice(0, 12)
  if (b.state === 'skipped') return `${id}: already present`
  const seconds = Math.max((now - b.started) / 1000, 0.001)
  const rate = b.bytes / seconds
  if (b.state === 'done') return `${id}: done ${formatBytes(b.bytes)} in ${seconds.toFixed(1)}s`
  const amount =
    b.total !== undefined ? `${formatBytes(b.bytes)}/${formatBytes(b.total)}` : formatBytes(b.bytes)
  const eta = b.total !== undefined && rate > 0 ? ` ${Math.ceil((b.total - b.bytes) / rate)}s` : ''
  const tail = ` ${amount} ${formatBytes(rate)}/s${eta}`
  const room = width - id.length - 4 - tail.length
  if (room < 10 || b.total === undefined || b.total === 0) return `${id}:${tail}`
  const filled = Math.min(room, Math.floor((b.bytes / b.total) * room))
  const arrow = filled < room ? '>' : ''
  return `${id}: [${'='.repeat(Math.max(0, filled - arrow.length))}${arrow}${' '.repeat(room - filled)}]${tail}`
}

/** Decimal units, as Docker prints them. */
export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000
    i++
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)}${units[i]!}`
}
