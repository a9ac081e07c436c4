/**
 * overlayfs's copy-up done by hand: when a layer in overlay form changes a lower layer's entry
 * (a hard link to it, a directory it implies), the entry is copied into the layer first, with
 * owner, mode, xattrs (but `trusted.overlay.*`) and nanosecond times.
 */
import {
  chmodSync,
  copyFileSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  symlinkSync,
  type BigIntStats,
  type Stats,
} from 'node:fs'
import { sys } from '../internal/sys.js'

/** Copies a lower layer's entry into the upper one, metadata included (overlayfs copy-up). */
export function copyUp(from: Buffer, st: Stats, to: Buffer): BigIntStats {
  const big = lstatSync(from, { bigint: true })
  if (st.isDirectory()) mkdirSync(to, { mode: st.mode & 0o777 })
  else if (st.isSymbolicLink()) symlinkSync(readlinkSync(from, { encoding: 'buffer' }), to)
  else if (st.isFile()) copyFileSync(from, to)
  else sys.mknod(to, st.mode, devMajor(big.rdev), devMinor(big.rdev))
  lchownSync(to, st.uid, st.gid)
  if (!st.isSymbolicLink()) chmodSync(to, st.mode & 0o7777)
  for (const key of sys.llistxattr(from)) {
    if (key.toString('latin1').startsWith('trusted.overlay.')) continue
    const value = sys.lgetxattr(from, key)
    if (value !== undefined) sys.lsetxattr(to, key, value)
  }
  setTimes(to, big)
  return big
}

export function setTimes(host: Buffer, big: BigIntStats): void {
  const sec = (ns: bigint): number => Number(ns / 1_000_000_000n)
  const nsec = (ns: bigint): number => Number(ns % 1_000_000_000n)
  sys.lutimens(host, sec(big.atimeNs), nsec(big.atimeNs), sec(big.mtimeNs), nsec(big.mtimeNs))
}

/** glibc's major()/minor() of a Linux dev_t. */
function devMajor(dev: bigint): number {
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn))
}
function devMinor(dev: bigint): number {
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn))
}
