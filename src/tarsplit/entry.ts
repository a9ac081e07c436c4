/**
 * The tar-split contract: the entries that record a tar stream (vbatts/tar-split
 * `tar/storage`), and the interfaces that pack them to disk and find file payloads.
 *
 * A tar stream is split into **segments** (raw bytes: headers, extended headers, padding, the
 * end-of-archive blocks and anything after them) and **file** entries (one per tar entry,
 * carrying its name, size and the CRC-64 of its data, but not the data). Given the files,
 * assembling the entries in order gives the original stream back, byte for byte:
 * ```ts
 * const { stream, done } = disassemble(source, { packer })  // stream: the tar, unchanged
 * await applyTo(dir, stream); await done                      // metadata is in packer
 * const tar = Readable.from(assemble(unpack(metaFile), new PathFileGetter(dir)))
 * ```
 * On disk this is Docker's `tar-split.json.gz`: gzip'd JSON lines, one entry a line, field
 * names, order and encodings exactly as Go writes them (see packer.ts).
 */

/** Entry types as stored (`"type"` in JSON). Unknown types are skipped when assembling. */
export const ENTRY_TYPE = { FILE: 1, SEGMENT: 2 } as const

/** Raw bytes of the stream, written back verbatim. */
export interface SegmentEntry {
  readonly type: 2
  readonly payload: Buffer
  position: number
}

/** One tar entry whose data, if any, lives in a file named `name` under the layer root. */
export interface FileEntry {
  readonly type: 1
  /** The name exactly as the tar has it: the bytes, UTF-8 or not (JSON `name`/`name_raw`). */
  readonly name: Buffer
  /** Size from the header; 0 means no data is read back. */
  readonly size: number
  /** CRC-64/ISO of the data, 8 bytes big-endian; undefined when size is 0. */
  readonly crc?: Buffer
  position: number
}

/** An entry of a type this version does not know (kept so that positions stay intact). */
export interface UnknownEntry {
  readonly type: number
  position: number
}

export type TarSplitEntry = SegmentEntry | FileEntry

export function isFileEntry(e: TarSplitEntry | UnknownEntry): e is FileEntry {
  return e.type === ENTRY_TYPE.FILE
}

export function isSegmentEntry(e: TarSplitEntry | UnknownEntry): e is SegmentEntry {
  return e.type === ENTRY_TYPE.SEGMENT
}

/** Receives entries in order (a JSON packer, an array in tests). */
export interface EntrySink {
  add(entry: TarSplitEntry): void | Promise<void>
}

/** A small file for FileGetter.readBatch. */
export interface BatchRead {
  readonly name: Buffer
  readonly size: number
  readonly offset: number
}

/** Gives the bytes of the file a FileEntry names, from wherever the layer's files live. */
export interface FileGetter {
  /**
   * Streams the file named `name` (tar name bytes, relative to the layer root). `size` is what
   * the metadata recorded, so a getter can refuse a file of another size early.
   */
  get(name: Buffer, size: number, signal?: AbortSignal): AsyncIterable<Uint8Array>
  /**
   * Optional: the whole content of a small file at once. Assembly uses it to read several
   * small files concurrently ahead of the output; it must return the file as `get` would.
   */
  readWhole?(name: Buffer, size: number): Promise<Buffer>
  /**
   * Optional: reads at most `size + 1` bytes of a small file into `dest` at `offset` and
   * returns how many it read (`size + 1` means the file grew). Lets assembly place file data
   * straight into its output batches, without a copy.
   */
  readInto?(name: Buffer, size: number, dest: Uint8Array, offset: number): Promise<number>
  /**
   * Optional: reads several small files into `dest`, each exactly `size` bytes at its
   * `offset` (regions that do not overlap), in one go. One result per file: the bytes read
   * (fewer: the file is shorter), `size + 1` (it is larger), or undefined where this path
   * could not open it: assembly then asks readInto, which finds it or explains why not.
   */
  readBatch?(reads: readonly BatchRead[], dest: Uint8Array): Promise<(number | undefined)[]>
  /**
   * Optional: reads up to `length` bytes of the file from `position` into `dest` at `offset`;
   * 0 at the end of the file. Lets assembly read large files into its batches as well.
   */
  readAt?(
    name: Buffer,
    position: number,
    dest: Uint8Array,
    offset: number,
    length: number,
  ): Promise<number>
}
