/**
 * The data of a regular file being exported, checked against the size its header already
 * announced: a file that shrank, grew or was replaced since it was lstat'ed fails the export
 * (ARCHIVE_EXPORT_FAILED). Docker copies to EOF and leaves a tar that does not add up.
 *
 * The file is opened with O_NOFOLLOW (a symlink swapped in is not followed) and O_NONBLOCK (a
 * FIFO swapped in does not block the open), then fstat'ed: it must be the inode that was
 * lstat'ed. Each read asks for one byte more than is left, so growth is seen without an extra
 * read at the end.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { ArchiveIoError } from './errors.js'

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/**
 * Files up to this size are read whole with synchronous calls when their header is made:
 * open+read+close from the page cache cost less than one thread-pool round trip, and such a
 * read blocks the event loop for well under a millisecond.
 */
export const SMALL_FILE_SIZE = 1 << 20
/** Bytes per read of a larger file: bounded memory whatever the file's size. */
const CHUNK_SIZE = 1 << 20

/** Wraps an fs error; errors that are already ours (or aborts) pass unchanged. */
export function exportError(err: unknown, shown: string): Error {
  if (err instanceof ArchiveIoError) return err
  const e = err as NodeJS.ErrnoException | undefined
  // fs errors carry the failed system call; anything else (an abort) is not ours to wrap.
  if (typeof e?.syscall !== 'string') return err instanceof Error ? err : new Error(String(err))
  const message = `Cannot export file (${e.code ?? '?'})`
  return new ArchiveIoError('ARCHIVE_EXPORT_FAILED', message, shown, { cause: err })
}

function changed(shown: string, what: string): ArchiveIoError {
  return new ArchiveIoError('ARCHIVE_EXPORT_FAILED', `Cannot export file: ${what}`, shown)
}

/** The open file is the one lstat'ed (the type too: a freed inode number can be reused). */
function checkSame(st: BigIntStats, expected: BigIntStats, shown: string): void {
  const type = (mode: bigint): bigint => mode & 0o170000n
  if (st.ino !== expected.ino || st.dev !== expected.dev || type(st.mode) !== type(expected.mode))
    throw changed(shown, 'it was replaced while being exported')
}

function checkSize(got: number, size: number, shown: string): void {
  if (got === size) return
  const how = got < size ? `${got} bytes, the header says ${size}` : `more than ${size} bytes`
  throw changed(shown, `it changed size while being exported (read ${how})`)
}

/** The whole data of a small file (`size` <= SMALL_FILE_SIZE). */
export function readSmallFile(path: Buffer, expected: BigIntStats, shown: string): Buffer {
  const size = Number(expected.size)
  let fd: number
  try {
    fd = openSync(path, FLAGS)
  } catch (err) {
    throw exportError(err, shown)
  }
  try {
    checkSame(fstatSync(fd, { bigint: true }), expected, shown)
    const buf = Buffer.allocUnsafe(size + 1)
    let got = 0
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got)
      if (n === 0) break
      got += n
    }
    checkSize(got, size, shown)
    return buf.subarray(0, size)
  } catch (err) {
    throw exportError(err, shown)
  } finally {
    closeSync(fd)
  }
}

/**
 * The data of a file of any size, a chunk at a time. The next read is issued as a chunk is
 * handed out, so the disk works while the consumer does; nothing more is read ahead.
 */
export async function* streamFile(
  path: Buffer,
  expected: BigIntStats,
  shown: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  const size = Number(expected.size)
  let fh: FileHandle
  try {
    fh = await open(path, FLAGS)
  } catch (err) {
    throw exportError(err, shown)
  }
  // A read shorter than asked for is the end of the file (reads of regular files are whole).
  const read = async (at: number): Promise<{ chunk: Buffer; end: boolean }> => {
    const want = Math.min(CHUNK_SIZE, size - at + 1)
    const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(want), 0, want, at)
    return { chunk: buffer.subarray(0, bytesRead), end: bytesRead < want }
  }
  let pending: ReturnType<typeof read> | undefined
  try {
    checkSame(await fh.stat({ bigint: true }), expected, shown)
    let got = 0
    pending = read(0)
    while (pending !== undefined) {
      const { chunk, end } = await pending
      pending = undefined
      got += chunk.length
      if (got > size) break
      if (!end) pending = read(got)
      signal?.throwIfAborted()
      if (chunk.length > 0) yield chunk
    }
    checkSize(got, size, shown)
  } catch (err) {
    throw exportError(err, shown)
  } finally {
    await pending?.catch(() => undefined)
    await fh.close()
  }
}
