import { parseChainId, type ChainId } from '../digest/digest.js'
import { UsageError } from './output.js'

/** A ChainID given on the command line; a malformed one is a usage error. */
export function chainIdArg(s: string): ChainId {
  try {
    return parseChainId(s)
  } catch {
    throw new UsageError(`not a ChainID (sha256:<64 hex>): "${s.slice(0, 80)}"`)
  }
}
