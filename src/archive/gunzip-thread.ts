/**
 * gunzip on the addon's own thread (native/inflate-thread.c), as a Duplex: gzip in, plain out.
 *
 * Why not node:zlib's stream: it inflates one output chunk per thread-pool job and asks for the
 * next from this thread's event loop, so a reader that works through a buffered megabyte in
 * one go (the layer store's tar pass) leaves it idle meanwhile: inflating and reading take
 * turns (a gzip'd 205 MB rootfs: 0.36 s of this thread idle in a 1.2 s register). The addon's
 * thread inflates ahead, up to `ahead` bytes, whatever this thread is doing.
 *
 * Input chunks are read in place, so they are held here until the thread is done with them.
 */
import { Duplex } from 'node:stream'
import { sys, type InflateThread } from '../internal/sys.js'

/** Input chunks the native side queues (INFLATE_IN_QUEUE). */
const IN_QUEUE = 64
/** Compressed bytes handed over and not inflated yet, before writes wait. */
const MAX_INPUT = 4 << 20

export interface GunzipThreadOptions {
  /** Size of the output chunks. */
  readonly chunkSize: number
  /** Output the thread may inflate ahead of the reader. */
  readonly ahead: number
}

/** A gunzip Duplex on the addon's thread; undefined where the process has no zlib for it. */
export function gunzipThread(options: GunzipThreadOptions): Duplex | undefined {
  const slots = Math.max(2, Math.ceil(options.ahead / options.chunkSize))
  const thread = sys.inflateThreadStart(options.chunkSize, slots)
  return thread === undefined ? undefined : new GunzipThread(thread, options.chunkSize)
}

class GunzipThread extends Duplex {
  #thread: InflateThread | undefined
  /** Input chunks the thread may still read, oldest first. */
  readonly #held: Uint8Array[] = []
  #heldBytes = 0
  /** Input chunks the thread is done with. */
  #released = 0
  readonly #consumed = new Float64Array(1)
  #waitingWrite: (() => void) | undefined
  #wantsData = false
  #inputEnded = false
  #retry: NodeJS.Immediate | undefined
  /**
   * In #pump: a write callback it calls may write again at once, and that must not pump
   * inside it (chunks would go out of order): it asks for another round instead.
   */
  #pumping = false
  #again = false

  constructor(thread: InflateThread, chunkSize: number) {
    super({ readableHighWaterMark: chunkSize, writableHighWaterMark: 1 << 20 })
    this.#thread = thread
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (sys.inflateThreadPush(this.#thread!, chunk) === 0) {
      this.destroy(new Error('gunzip thread: input queue overflow'))
      return
    }
    this.#held.push(chunk)
    this.#heldBytes += chunk.length
    if (this.#full()) this.#waitingWrite = callback
    else callback()
    this.#pump() // the reader may be waiting for this input
  }

  override _final(callback: () => void): void {
    sys.inflateThreadEndInput(this.#thread!)
    this.#inputEnded = true
    callback()
    this.#pump()
  }

  override _read(): void {
    this.#wantsData = true
    this.#pump()
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop()
    callback(err)
  }

  /**
   * Takes output while the reader wants it and the thread has (or is making) some. It waits
   * for the thread only while the thread has a whole input chunk queued beyond the current
   * one: otherwise this thread's event loop must run, for the source to bring more input.
   */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true
      return
    }
    this.#pumping = true
    try {
      do this.#pumpLoop()
      while (this.#askedAgain())
    } finally {
      this.#pumping = false
    }
  }

  /** Whether a pump was asked for during the round (the request is cleared). */
  #askedAgain(): boolean {
    const again = this.#again
    this.#again = false
    return again
  }

  #pumpLoop(): void {
    while (this.#wantsData && this.#thread !== undefined) {
      const wait = this.#inputEnded || this.#held.length >= 2
      const out = sys.inflateThreadTake(this.#thread, this.#consumed, wait)
      this.#release(this.#consumed[0]!)
      if (typeof out === 'string') {
        this.destroy(new Error(out))
        return
      }
      if (out === 1) return // every input chunk is consumed: _write or _final comes next
      if (out === 3) {
        this.#retry ??= setImmediate(() => {
          this.#retry = undefined
          this.#pump()
        })
        return
      }
      if (out === 2) {
        this.#stop()
        this.push(null)
        return
      }
      this.#wantsData = this.push(out)
    }
  }

  #release(consumed: number): void {
    while (this.#released < consumed) {
      this.#heldBytes -= this.#held.shift()!.length
      this.#released++
    }
    const write = this.#waitingWrite
    if (write !== undefined && !this.#full()) {
      this.#waitingWrite = undefined
      write()
    }
  }

  #full(): boolean {
    return this.#heldBytes >= MAX_INPUT || this.#held.length >= IN_QUEUE - 1
  }

  #stop(): void {
    if (this.#retry !== undefined) clearImmediate(this.#retry)
    this.#retry = undefined
    if (this.#thread === undefined) return
    sys.inflateThreadEnd(this.#thread)
    this.#thread = undefined
    this.#held.length = 0
  }
}
