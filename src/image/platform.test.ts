/** Platform names and matching, against containerd's `platforms` rules. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { arch } from 'node:os'
import {
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  platformRank,
} from './platform.js'

test('hostPlatform() names this machine as Go does', () => {
  const p = hostPlatform()
  const want: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }
  if (want[arch()] !== undefined) assert.equal(p.architecture, want[arch()])
  if (process.platform === 'linux') assert.equal(p.os, 'linux')
  assert.equal(p.variant === undefined, !['arm64', 'arm'].includes(p.architecture))
})

test('normalizePlatform() folds aliases and default variants', () => {
  const n = (architecture: string, variant?: string): string =>
    formatPlatform(
      normalizePlatform({
        os: 'Linux',
        architecture,
        ...(variant === undefined ? {} : { variant }),
      }),
    )
  assert.equal(n('x86_64'), 'linux/amd64')
  assert.equal(n('amd64', 'v1'), 'linux/amd64')
  assert.equal(n('amd64', 'v3'), 'linux/amd64/v3')
  assert.equal(n('aarch64'), 'linux/arm64')
  assert.equal(n('arm64', 'v8'), 'linux/arm64')
  assert.equal(n('armhf'), 'linux/arm/v7')
  assert.equal(n('armel'), 'linux/arm/v6')
  assert.equal(n('arm'), 'linux/arm/v7')
  assert.equal(n('arm', '6'), 'linux/arm/v6')
  assert.equal(n('i386'), 'linux/386')
})

test('compatiblePlatforms() lists what a platform runs, best first', () => {
  const list = (architecture: string, variant?: string): string[] =>
    compatiblePlatforms({
      os: 'linux',
      architecture,
      ...(variant === undefined ? {} : { variant }),
    }).map(formatPlatform)
  assert.deepEqual(list('amd64'), ['linux/amd64', 'linux/386'])
  assert.deepEqual(list('amd64', 'v3'), [
    'linux/amd64/v3',
    'linux/amd64/v2',
    'linux/amd64',
    'linux/386',
  ])
  assert.deepEqual(list('arm', 'v7'), ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'])
  assert.deepEqual(list('arm64', 'v8'), [
    'linux/arm64',
    'linux/arm/v8',
    'linux/arm/v7',
    'linux/arm/v6',
    'linux/arm/v5',
  ])
  assert.deepEqual(list('s390x'), ['linux/s390x'])
})

test('platformRank(): exact first, fallbacks after, other OSes never, no platform last', () => {
  const want = { os: 'linux', architecture: 'amd64' }
  assert.equal(platformRank(want, { os: 'linux', architecture: 'x86_64' }), 0)
  assert.equal(platformRank(want, { os: 'linux', architecture: '386' }), 1)
  assert.equal(platformRank(want, undefined), 2)
  assert.equal(platformRank(want, { os: 'windows', architecture: 'amd64' }), undefined)
  assert.equal(platformRank(want, { os: 'linux', architecture: 'amd64', variant: 'v2' }), undefined)
  assert.equal(platformRank(want, { os: 'unknown', architecture: 'unknown' }), undefined)
})
