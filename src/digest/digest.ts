/**
 * Content identities. A digest is `sha256:` followed by 64 lowercase hex digits.
 *
 * - **DiffID**: the digest of a layer's uncompressed tar, every byte of it.
 * - **ChainID**: identifies a layer together with all its parents (see chain-id.ts).
 *
 * Both are strings at runtime; the brands keep a DiffId from type-checking where a
 * ChainId is expected.
 */
declare const brand: unique symbol

export type Digest = string & { readonly [brand]: 'Digest' | 'DiffId' | 'ChainId' }
export type DiffId = Digest & { readonly [brand]: 'DiffId' }
export type ChainId = Digest & { readonly [brand]: 'ChainId' }

/** Only sha256 is supported, as in Docker's layer store. */
export const DIGEST_ALGORITHM = 'sha256'
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/

/** True when `s` is a well-formed sha256 digest string. */
export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s)
}

/** Parses a digest string; throws TypeError on anything but `sha256:<64 lowercase hex>`. */
export function parseDigest(s: string): Digest {
  if (!isDigest(s))
    throw new TypeError(`Cannot parse digest: "${s.slice(0, 80)}" is not sha256:<64 hex>`)
  return s
}

export function parseDiffId(s: string): DiffId {
  return parseDigest(s) as DiffId
}

export function parseChainId(s: string): ChainId {
  return parseDigest(s) as ChainId
}

/** The 64 hex digits of a digest, as used for directory names in the layerdb. */
export function digestHex(d: Digest): string {
  return d.slice(DIGEST_ALGORITHM.length + 1)
}

/** Builds a digest from 32 raw sha256 bytes or 64 hex digits. */
export function digestFromHex(hex: string): Digest {
  return parseDigest(`${DIGEST_ALGORITHM}:${hex}`)
}

/**
 * DiffID of the empty tar (1024 zero bytes), what Go's tar writer emits for an archive with
 * no entries (moby `DigestSHA256EmptyTar`).
 */
export const EMPTY_TAR_DIFF_ID = parseDiffId(
  'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef',
)
