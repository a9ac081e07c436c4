import { StoreError } from '../errors.js'

/**
 * Codes of tar parsing errors. Go's `archive/tar` folds most of these into `ErrHeader`;
 * ours are finer so that a caller can tell a truncated stream from a forged header.
 */
export type TarErrorCode =
  | 'TAR_INVALID_HEADER' // unknown format, zero block followed by a non-zero block, bad field
  | 'TAR_BAD_CHECKSUM' // header checksum does not match its bytes
  | 'TAR_INVALID_NUMBER' // numeric field that is neither octal nor base-256, or overflows
  | 'TAR_INVALID_PAX' // malformed PAX extended header record or value
  | 'TAR_INVALID_SPARSE' // sparse map that is malformed or does not match the data
  | 'TAR_FIELD_TOO_LONG' // PAX header, GNU long name or sparse map over the limit
  | 'TAR_UNEXPECTED_EOF' // stream ends inside a header or an entry's data
  | 'TAR_UNSAFE_NUMBER' // value beyond what this implementation represents exactly (2^53)
  | 'TAR_UNREPRESENTABLE' // writer: a header value no tar header can hold (NUL in a name...)
  | 'TAR_WRITE_SIZE_MISMATCH' // writer: an entry's body is not as long as its header says
  | 'TAR_WRITER_CLOSED' // writer: the output was closed before the archive was finished

/** A tar stream could not be read. `offset` is the byte offset of the offending block. */
export class TarError extends StoreError {
  override name = 'TarError'
  readonly code: TarErrorCode
  readonly kind = 'invalid-argument'
  readonly offset: number
  constructor(code: TarErrorCode, message: string, offset: number, options?: ErrorOptions) {
    super(`${message} (at byte ${offset})`, options)
    this.code = code
    this.offset = offset
  }
}
