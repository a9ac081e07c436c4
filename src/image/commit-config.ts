/**
 * The configuration of an image committed from a read-write layer (Docker's `docker commit`):
 * the configuration of the image it was made from, with the new layer's DiffID appended to
 * `rootfs.diff_ids` and a history entry; or, made from bare layers, a minimal one for the host.
 */
import type { DiffId } from '../digest/digest.js'
import type { LayerInfo } from '../layer/types.js'
import { hostPlatform } from './platform.js'

/** `base`: the parsed configuration of the image under the layer, if there is one. */
export function commitConfig(
  base: Record<string, unknown> | undefined,
  layer: LayerInfo,
  createdBy: string,
  now = new Date(),
): Buffer {
  const created = now.toISOString()
  const diffIds: DiffId[] = []
  for (let l: LayerInfo | undefined = layer; l !== undefined; l = l.parent)
    diffIds.unshift(l.diffId)
  const history = Array.isArray(base?.['history']) ? [...(base['history'] as unknown[])] : []
  history.push({ created, created_by: createdBy })
  const host = hostPlatform()
  const config: Record<string, unknown> = {
    architecture: host.architecture,
    os: host.os,
    ...(host.variant !== undefined ? { variant: host.variant } : {}),
    config: {},
    ...base,
    created,
    history,
    rootfs: { type: 'layers', diff_ids: diffIds },
  }
  return Buffer.from(JSON.stringify(config))
}
