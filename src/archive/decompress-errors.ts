import { StoreError } from '../errors.js'
import type { Compression } from './decompress.js'

/**
 * The program that decompresses a format is not installed (moby runs `xz` the same way and
 * fails with exec's error). `program` is the command, `package` the Debian package that has it.
 */
export class DecompressorMissingError extends StoreError {
  override name = 'DecompressorMissingError'
  readonly code = 'DECOMPRESSOR_MISSING'
  readonly kind = 'failed-precondition'
  readonly compression: Compression
  readonly program: string
  readonly package: string
  constructor(compression: Compression, program: string, pkg: string, options?: ErrorOptions) {
    super(
      `Cannot decompress ${compression} stream: program "${program}" not found (install the ` +
        `"${pkg}" package)`,
      options,
    )
    this.compression = compression
    this.program = program
    this.package = pkg
  }
}

/**
 * Compressed data that does not decompress: truncated, corrupt, or followed by garbage.
 * `detail` is the decompressor's own word: zlib's message, or the first line the program wrote
 * to stderr (its exit status when it wrote nothing).
 */
export class DecompressError extends StoreError {
  override name = 'DecompressError'
  readonly code = 'DECOMPRESS_FAILED'
  readonly kind = 'invalid-argument'
  readonly compression: Compression
  readonly detail: string
  constructor(compression: Compression, detail: string, options?: ErrorOptions) {
    super(`Cannot decompress ${compression} stream: ${detail}`, options)
    this.compression = compression
    this.detail = detail
  }
}
