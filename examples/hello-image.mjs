// Builds the quick start's example image, with nothing downloaded: a docker-archive (the layout
// `docker save` writes since Docker 25) of two layers, written with layerstore's own tar writer.
// Usage: node examples/hello-image.mjs OUT.tar   (after `npm run build`)
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { buffer } from 'node:stream/consumers'
import { writeTar } from '../dist/tar/writer.js'

const out = process.argv[2]
if (out === undefined) throw new Error('usage: node examples/hello-image.mjs OUT.tar')
const sha256 = (b) => createHash('sha256').update(b).digest('hex')
const MTIME = 1704067200 // fixed, so that the image ID is the same on every machine

async function layer(files) {
  const entries = Object.entries(files).map(([name, content]) =>
    name.endsWith('/')
      ? { header: { name, typeflag: 53, mode: 0o755, mtime: MTIME } }
      : {
          header: {
            name,
            mode: name.startsWith('bin/') ? 0o755 : 0o644,
            mtime: MTIME,
            size: Buffer.byteLength(content),
          },
          body: Buffer.from(content),
        },
  )
  return buffer(writeTar(entries))
}

const layers = [
  await layer({
    'bin/': '',
    'bin/hello': '#!/bin/sh\necho "hello from a layerstore container layer"\n',
    'etc/': '',
    'etc/os-release': 'NAME="hello"\nID=hello\n',
  }),
  await layer({ 'srv/': '', 'srv/index.html': '<h1>hello</h1>\n', 'etc/motd': 'Welcome.\n' }),
]
const config = Buffer.from(
  JSON.stringify({
    architecture: { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch,
    os: 'linux',
    created: new Date(MTIME * 1000).toISOString(),
    config: { Cmd: ['/bin/hello'], WorkingDir: '/srv' },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l)}`) },
    history: [{ created_by: 'hello base' }, { created_by: 'hello site' }],
  }),
)
const blob = (b) => `blobs/sha256/${sha256(b)}`
const manifest = [{ Config: blob(config), RepoTags: ['example/hello:1'], Layers: layers.map(blob) }]
const files = [
  ['manifest.json', Buffer.from(JSON.stringify(manifest))],
  [blob(config), config],
  ...layers.map((l) => [blob(l), l]),
]
const archive = await buffer(
  writeTar(
    files.map(([name, body]) => ({
      header: { name, mode: 0o644, mtime: MTIME, size: body.length },
      body,
    })),
  ),
)
writeFileSync(out, archive)
console.log(`wrote ${out}: example/hello:1, image ID sha256:${sha256(config)}`)
