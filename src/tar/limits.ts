/**
 * Caps on what a tar stream can make us hold in memory. Data is streamed, but metadata
 * (PAX records, GNU long names, sparse maps) is read whole, so each is capped.
 */

/** Largest PAX header or GNU long name/link data (Go's and tar-split's maxSpecialFileSize). */
export const MAX_SPECIAL_FILE_SIZE = 1 << 20

/** Largest number of sparse data fragments in one entry (each costs two numbers in memory). */
export const MAX_SPARSE_ENTRIES = 1 << 20
