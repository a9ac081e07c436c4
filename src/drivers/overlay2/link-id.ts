/**
 * Short link ids of overlay2 (SPEC.md §5.4): `l/<LINK>` is a symlink to a layer's `diff/`, and
 * mount options name lowers by these links instead of by 64-character layer ids, so that 128
 * lowers fit in one page: (26 + len("l/") + len(":")) * 128 = 3712 bytes. 17 random bytes in
 * RFC 4648 base32 (`A-Z2-7`), the first 26 characters, as Docker makes them.
 */
import { randomBytes } from 'node:crypto'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
export const LINK_ID_LENGTH = 26

export function newLinkId(): string {
  const bytes = randomBytes(17)
  let out = ''
  let bits = 0
  let value = 0
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5 && out.length < LINK_ID_LENGTH) {
      bits -= 5
      out += ALPHABET.charAt((value >>> bits) & 31)
    }
    value &= (1 << bits) - 1
  }
  return out
}

/** Whether `s` can be a link id Docker or we made: base32 characters, 26 of them. */
export function isLinkId(s: string): boolean {
  return /^[A-Z2-7]{26}$/.test(s)
}
