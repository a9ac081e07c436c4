/** How commands talk to the user: results on stdout, errors on stderr, per the CLI contract. */
import { StoreError } from '../errors.js'
import { EXIT } from './exit-codes.js'

export interface GlobalOptions {
  readonly json: boolean
  readonly quiet: boolean
  readonly root?: string
  readonly driver?: string
}

/** A command's result: `json` with --json, else `text`. */
export function print(global: GlobalOptions, json: unknown, text: string): void {
  process.stdout.write(global.json ? JSON.stringify(json) + '\n' : text)
}

/** A command-line mistake: exit status 2 with the usage hint. */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly code = 'USAGE'
}

/** Prints an error the way DESIGN.md's CLI contract says and returns the exit status. */
export function reportError(err: unknown, json: boolean): number {
  let code = 'UNEXPECTED'
  let status = EXIT.unexpected
  let message = err instanceof Error ? err.message : String(err)
  if (err instanceof UsageError || isParseArgsError(err)) {
    code = 'USAGE'
    status = EXIT.usage
  } else if (err instanceof StoreError) {
    code = err.code
    status = EXIT[err.kind]
  } else if (err instanceof Error && 'code' in err && typeof err.code === 'string') {
    // System errors (ENOENT, EACCES…) keep their own code.
    code = err.code
    message = err.message
  }
  process.stderr.write(`layerstore: ${code}: ${message}\n`)
  if (json) process.stderr.write(JSON.stringify({ error: { code, message } }) + '\n')
  return status
}

/** util.parseArgs reports an unknown option or a missing value with an ERR_PARSE_ARGS_* code. */
function isParseArgsError(err: unknown): boolean {
  return (
    err instanceof TypeError &&
    String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_')
  )
}
