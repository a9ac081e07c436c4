/**
 * Platforms as containerd's `platforms` package names and compares them: the host's platform
 * in Go's names, normalization (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm64/v8` → `arm64`),
 * and the `platforms.Only` rule used to pick one manifest of an image index: exact os and
 * architecture, the variant equal or one the host also runs (`arm/v7` runs `arm/v6`, `amd64/v3`
 * runs `amd64/v2`; `amd64` also runs `386`, `arm64` runs `arm/v8` and below), best first.
 *
 * ```ts
 * const want = hostPlatform()                  // { os: 'linux', architecture: 'amd64' }
 * platformRank(want, { os: 'linux', architecture: '386' })  // 1: usable, after amd64 (0)
 * ```
 */
import type { Platform } from './types.js'

/** Node's `process.arch` → Go's GOARCH. */
const GO_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le', // Node runs little-endian on Linux ppc64
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
}

/** Node's `process.platform` → Go's GOOS. */
const GO_OS: Readonly<Record<string, string>> = { win32: 'windows', sunos: 'solaris' }

/** The platform this process runs on, in Go's names (containerd `platforms.DefaultSpec`). */
export function hostPlatform(): Platform {
  const os = GO_OS[process.platform] ?? process.platform
  const architecture = GO_ARCH[process.arch] ?? process.arch
  if (architecture === 'arm64') return { os, architecture, variant: 'v8' }
  if (architecture === 'arm') {
    const version = (process.config.variables as { arm_version?: unknown }).arm_version
    return { os, architecture, variant: `v${typeof version === 'string' ? version : '7'}` }
  }
  return { os, architecture }
}

/** containerd `platforms.Normalize`: canonical os, architecture and variant names. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase()
  let architecture = p.architecture.toLowerCase()
  let variant = p.variant?.toLowerCase() ?? ''
  switch (architecture) {
    case 'i386':
      architecture = '386'
      variant = ''
      break
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64'
      if (variant === 'v1') variant = ''
      break
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64'
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = ''
      break
    case 'armhf':
      architecture = 'arm'
      variant = 'v7'
      break
    case 'armel':
      architecture = 'arm'
      variant = 'v6'
      break
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7'
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`
      break
  }
  return variant === '' ? { os, architecture } : { os, architecture, variant }
}

const version = (variant: string | undefined, fallback: number): number => {
  const n = Number.parseInt((variant ?? '').replace(/^v/, ''), 10)
  return Number.isNaN(n) ? fallback : n
}

/**
 * The platforms `p` runs, best first (containerd `platformVector`), normalized. Only the
 * major arm64 version counts here: `v8.x` and `v9.x` variants are rare in images.
 */
export function compatiblePlatforms(p: Platform): Platform[] {
  const n = normalizePlatform(p)
  const { os } = n
  const out: Platform[] = [n]
  switch (n.architecture) {
    case 'amd64': {
      for (let v = version(n.variant, 1) - 1; v >= 2; v--)
        out.push({ os, architecture: 'amd64', variant: `v${v}` })
      if (n.variant !== undefined) out.push({ os, architecture: 'amd64' })
      out.push({ os, architecture: '386' })
      break
    }
    case 'arm':
      for (let v = version(n.variant, 7) - 1; v >= 5; v--)
        out.push({ os, architecture: 'arm', variant: `v${v}` })
      break
    case 'arm64':
      if (n.variant !== undefined) out.push({ os, architecture: 'arm64' })
      for (let v = 8; v >= 5; v--) out.push({ os, architecture: 'arm', variant: `v${v}` })
      break
  }
  return out
}

/**
 * How well `candidate` suits `want`: 0 is an exact match, higher is a fallback the host can
 * still run, undefined is no match. A candidate without a platform suits anything, last.
 */
export function platformRank(want: Platform, candidate: Platform | undefined): number | undefined {
  const vector = compatiblePlatforms(want)
  if (candidate === undefined) return vector.length
  const c = normalizePlatform(candidate)
  const i = vector.findIndex(
    (v) => v.os === c.os && v.architecture === c.architecture && v.variant === c.variant,
  )
  return i < 0 ? undefined : i
}

/** `os/arch[/variant]`, for messages. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant === undefined ? [] : [p.variant])].join('/')
}
