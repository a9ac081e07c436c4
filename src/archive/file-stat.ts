/**
 * Fields of an lstat result as Docker's archive code reads them. Stats are BigIntStats:
 * inode numbers can pass 2^53 (overlayfs with xino puts a layer index in the high bits) and
 * mtime must keep its nanoseconds for the comparison of trees.
 */
import type { BigIntStats } from 'node:fs'

export const S_IFMT = 0o170000
export const S_IFSOCK = 0o140000
export const S_IFLNK = 0o120000
export const S_IFREG = 0o100000
export const S_IFBLK = 0o060000
export const S_IFDIR = 0o040000
export const S_IFCHR = 0o020000
export const S_IFIFO = 0o010000

const NS_PER_SEC = 1_000_000_000n

export const fileType = (st: BigIntStats): number => Number(st.mode) & S_IFMT
export const isDirectory = (st: BigIntStats): boolean => fileType(st) === S_IFDIR

/** Whole seconds of a nanosecond time, rounded down (Go's Truncate(time.Second)). */
export function floorSeconds(ns: bigint): bigint {
  const s = ns / NS_PER_SEC
  return ns < 0n && s * NS_PER_SEC !== ns ? s - 1n : s
}

/** True when a nanosecond time has no fraction of a second. */
export const wholeSecond = (ns: bigint): boolean => ns % NS_PER_SEC === 0n

/** Major and minor numbers of a Linux dev_t (glibc's gnu_dev_major/minor, Go's unix.Major). */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n)
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n)
  return { major: Number(major), minor: Number(minor) }
}
