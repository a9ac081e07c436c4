/**
 * Writes every entry's data to `root/<name>` exactly as the tar reader returns it, the way
 * Docker's layer directory holds the files tar-split reads back (the corpus's tsextract:
 * names joined and cleaned as Go's filepath.Join does). Only for benign archives: names are
 * not confined. A file that cannot be placed (its parent is a file) is left out, so that
 * assembling it fails as it does with Go.
 */
import { createReadStream } from 'node:fs'
import { mkdir, open } from 'node:fs/promises'
import { TarReader } from '../tar/reader.js'
import { cleanPath } from '../tarsplit/clean-path.js'

export async function extractPayloads(tar: string, root: string): Promise<void> {
  const reader = new TarReader(createReadStream(tar, { highWaterMark: 1 << 20 }))
  for (;;) {
    const e = await reader.next()
    if (e === undefined) return
    if (e.header.size <= 0) continue
    const rel = cleanPath('/' + e.header.nameRaw.toString('latin1'))
    const path = Buffer.from(root + rel, 'latin1')
    const parent = Buffer.from(root + rel.slice(0, rel.lastIndexOf('/')), 'latin1')
    try {
      await mkdir(parent, { recursive: true })
      const fh = await open(path, 'w')
      try {
        for await (const chunk of e.body) await fh.write(chunk)
      } finally {
        await fh.close()
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOTDIR' && code !== 'EISDIR' && code !== 'EEXIST') throw err
    }
  }
}
