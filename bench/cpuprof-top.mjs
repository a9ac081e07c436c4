#!/usr/bin/env node
// Top self-time functions of V8 .cpuprofile files (from `node --cpu-prof`).
// usage: node bench/cpuprof-top.mjs [-n 15] FILE.cpuprofile...
// Self time per function (callFrame.functionName + url + line) = sum of the timeDeltas of the
// samples whose leaf is one of its nodes.
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

const args = process.argv.slice(2)
let top = 15
if (args[0] === '-n') {
  top = Number(args[1])
  args.splice(0, 2)
}
if (args.length === 0) {
  process.stderr.write('usage: node bench/cpuprof-top.mjs [-n 15] FILE.cpuprofile...\n')
  process.exit(2)
}

for (const file of args) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const byNode = new Map(prof.nodes.map((n) => [n.id, n]))
  const self = new Map()
  let total = 0
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0
    total += dt
    const cf = byNode.get(prof.samples[i]).callFrame
    const url = cf.url === '' ? '' : cf.url.replace(/^file:\/\//, '').replace(/^.*\/dist\//, '')
    const key = `${cf.functionName || '(anonymous)'}\t${url === '' ? '' : `${url}:${cf.lineNumber + 1}`}`
    self.set(key, (self.get(key) ?? 0) + dt)
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
  console.log(`${basename(file)}: ${(total / 1e6).toFixed(2)} s sampled`)
  console.log('| # | self ms | % | function | where |')
  console.log('|---:|---:|---:|---|---|')
  rows.forEach(([key, us], i) => {
    const [fn, where] = key.split('\t')
    const pct = ((100 * us) / total).toFixed(1)
    console.log(`| ${i + 1} | ${(us / 1000).toFixed(0)} | ${pct} | \`${fn}\` | ${where} |`)
  })
}
