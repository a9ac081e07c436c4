import type { IdMapping } from './types.js'

/** The host id of container id `id`, or undefined when no range maps it (idtools.toHost). */
export function mapId(maps: readonly IdMapping[], id: number): number | undefined {
  for (const m of maps) {
    if (id >= m.containerId && id < m.containerId + m.size) return m.hostId + (id - m.containerId)
  }
  return undefined
}
