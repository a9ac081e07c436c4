/** What the crash harnesses' children share: seeded choices and lines the parent surely sees. */
import { writeSync } from 'node:fs'

/** xorshift32 from `seedArg`: the same seed gives the same operations. rand(n) is in [0, n). */
export function seeded(seedArg: string | undefined): (n: number) => number {
  let seed = Number(seedArg ?? 1) >>> 0 || 1
  return (n) => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) % n
  }
}

/** Prints a line synchronously: a line printed is a line the parent sees, even if killed next. */
export function say(line: string): void {
  writeSync(1, line + '\n')
}
