import { Writable } from 'node:stream'

/** stdout as a sink that pipeline() may end without closing the process's fd. */
export function stdoutSink(): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      if (process.stdout.write(chunk)) cb()
      else process.stdout.once('drain', () => cb())
    },
  })
}
