/**
 * Image references parsed and normalized as Docker does (distribution's `reference` package:
 * `ParseNormalizedNamed`, `FamiliarName`, `FamiliarString`, `TagNameOnly`).
 *
 * Grammar (the package's own, regex for regex):
 *
 *     reference   := name [ ":" tag ] [ "@" digest ]
 *     name        := [ domain "/" ] path              ; path at most 255 characters
 *     domain      := host [ ":" port ]                 ; host: DNS-like name or [IPv6]
 *     path        := component ( "/" component )*
 *     component   := [a-z0-9]+ ( separator [a-z0-9]+ )*   ; separator: . _ __ -+
 *     tag         := [\w][\w.-]{0,127}
 *     digest      := algorithm ":" hex
 *
 * Normalization: a first path element that has no `.` or `:`, is not `localhost` and is lower
 * case is not a domain, so `busybox` → `docker.io/library/busybox` and `foo/bar` →
 * `docker.io/foo/bar`; `index.docker.io` becomes `docker.io`; on `docker.io` a one-element
 * path gets `library/`. A tag is added only by {@link withDefaultTag} (`TagNameOnly`).
 *
 * ```ts
 * const ref = parseReference('busybox')  // docker.io/library/busybox, familiar name busybox
 * formatReference(withDefaultTag(ref))    // 'docker.io/library/busybox:latest'
 * familiarString(parseReference('docker.io/foo/bar:1'))  // 'foo/bar:1'
 * normalizeTag('localhost:5000/x:y')      // 'localhost:5000/x:y'
 * ```
 *
 * Image IDs typed where a reference may stand (`docker image inspect 3f5a`) are the second half
 * of this file: {@link parseImageQuery} and the comment above it give Docker's lookup order.
 *
 * Divergence: Docker also accepts sha384 and sha512 digests; this store knows only sha256
 * (see digest/digest.ts), so other algorithms are refused as invalid.
 */
import { DIGEST_ALGORITHM, digestFromHex, isDigest } from '../digest/digest.js'
import { ReferenceInvalidError } from './errors.js'
import type { ImageId, NamedReference } from './types.js'

/** Docker Hub's canonical domain, what familiar names expand to. */
export const DEFAULT_DOMAIN = 'docker.io'
/** Docker Hub's old "index" domain, canonicalized to {@link DEFAULT_DOMAIN}. */
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
/** Namespace of Docker Hub's official images (`busybox` is `library/busybox`). */
const OFFICIAL_REPO_PREFIX = 'library/'
export const DEFAULT_TAG = 'latest'
/** Cap on the path (the name less its domain), as distribution's `RepositoryNameTotalLengthMax`. */
export const REPOSITORY_NAME_MAX_LENGTH = 255

// Written as distribution's regexp.go writes them, so that JavaScript's backtracking picks the
// same captures as Go's leftmost-first matching. No repeat nests another that can match the
// same characters, so hostile input cannot make backtracking explode (a test times it).
const ALPHANUMERIC = '[a-z0-9]+'
const SEPARATOR = '(?:[._]|__|[-]+)'
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]'
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`
const TAG = '[\\w][\\w.-]{0,127}'
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'

const REFERENCE_RE = new RegExp(
  `^((?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`,
)
const NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`)
const TAG_RE = new RegExp(`^${TAG}$`)
/** A 64-hex string is an image ID, never a name (ParseNormalizedNamed refuses it). */
const IDENTIFIER_RE = /^[a-f0-9]{64}$/

/** The parts of a parsed name; `domain` is '' only for odd names such as `a_b.c/x`. */
interface Parts {
  readonly domain: string
  readonly path: string
  readonly tag: string | undefined
  readonly digest: string | undefined
}

function invalid(s: string, why: string): ReferenceInvalidError {
  const shown = s.length > 300 ? `${s.slice(0, 300)}…` : s
  return new ReferenceInvalidError(`Cannot parse reference "${shown}": ${why}`)
}

/** distribution's `splitDockerDomain`: which part of a familiar name is the domain. */
function splitDockerDomain(s: string): [domain: string, remainder: string] {
  const slash = s.indexOf('/')
  if (slash === -1) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + s]
  const first = s.slice(0, slash)
  let domain: string
  let remainder: string
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    // `localhost`, a host name or address, or upper case (never valid in a path): a domain.
    domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first
    remainder = s.slice(slash + 1)
  } else {
    domain = DEFAULT_DOMAIN
    remainder = s
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/'))
    remainder = OFFICIAL_REPO_PREFIX + remainder
  return [domain, remainder]
}

/** distribution's `Parse`: the grammar, without normalization. */
function parseParts(s: string, input: string): Parts {
  const m = REFERENCE_RE.exec(s)
  if (m === null) {
    const lower = s.toLowerCase()
    if (lower !== s && REFERENCE_RE.test(lower))
      throw invalid(input, 'repository name must be lowercase')
    throw invalid(input, 'invalid reference format')
  }
  const [, name = '', tag, digest] = m
  const n = NAME_RE.exec(name)
  const domain = n?.[1] ?? ''
  const path = n?.[2] ?? name
  if (path.length > REPOSITORY_NAME_MAX_LENGTH)
    throw invalid(
      input,
      `repository name must not be more than ${String(REPOSITORY_NAME_MAX_LENGTH)} characters`,
    )
  if (digest !== undefined && !isDigest(digest))
    throw invalid(input, `digest "${digest.slice(0, 80)}" is not sha256:<64 lowercase hex>`)
  return { domain, path, tag, digest }
}

/** distribution's `familiarizeName`: drops `docker.io/` and, for one-element paths, `library/`. */
function familiarize(domain: string, path: string): string {
  if (domain !== DEFAULT_DOMAIN) return domain === '' ? path : `${domain}/${path}`
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length)
    if (!rest.includes('/')) return rest
  }
  return path
}

/**
 * Parses a reference as `docker` commands do (`ParseNormalizedNamed`): `busybox`,
 * `foo/bar:1`, `localhost:5000/x@sha256:…`. No tag is added; see {@link withDefaultTag}.
 * Throws REFERENCE_INVALID for anything else, upper case in the path and 64-hex strings
 * (image IDs) included.
 */
export function parseReference(s: string): NamedReference {
  if (IDENTIFIER_RE.test(s))
    throw invalid(s, 'a 64-character hexadecimal string is an image ID, not a repository name')
  const [domain, remainder] = splitDockerDomain(s)
  const colon = remainder.indexOf(':')
  const remote = colon === -1 ? remainder : remainder.slice(0, colon)
  if (remote.toLowerCase() !== remote)
    throw invalid(s, `repository name "${remote}" must be lowercase`)
  const parts = parseParts(`${domain}/${remainder}`, s)
  const ref: { -readonly [K in keyof NamedReference]: NamedReference[K] } = {
    name: parts.domain === '' ? parts.path : `${parts.domain}/${parts.path}`,
    familiarName: familiarize(parts.domain, parts.path),
  }
  if (parts.tag !== undefined) ref.tag = parts.tag
  if (parts.digest !== undefined && isDigest(parts.digest)) ref.digest = parts.digest
  return ref
}

/** `TagNameOnly`: adds tag `latest` to a reference that has neither tag nor digest. */
export function withDefaultTag(ref: NamedReference): NamedReference {
  if (ref.tag !== undefined || ref.digest !== undefined) return ref
  return { ...ref, tag: DEFAULT_TAG }
}

/** A copy of `ref` with the given tag (`WithTag`); REFERENCE_INVALID for a malformed tag. */
export function withTag(ref: NamedReference, tag: string): NamedReference {
  if (!TAG_RE.test(tag)) throw invalid(tag, 'invalid tag format')
  return { ...ref, tag }
}

/** The full form, `docker.io/library/busybox:latest` (the reference's `String()`). */
export function formatReference(ref: NamedReference): string {
  return ref.name + suffix(ref)
}

/** Docker's familiar form (`FamiliarString`): `busybox:latest`, `foo/bar@sha256:…`. */
export function familiarString(ref: NamedReference): string {
  return ref.familiarName + suffix(ref)
}

function suffix(ref: NamedReference): string {
  const tag = ref.tag === undefined ? '' : `:${ref.tag}`
  return ref.digest === undefined ? tag : `${tag}@${ref.digest}`
}

/**
 * Refuses, with REFERENCE_INVALID, a reference `docker tag` would not record: one with a digest
 * (`refusing to create a tag with a digest reference`), one named `sha256` (Docker's reference
 * store: `refusing to create an ambiguous tag using digest algorithm as name`), and one whose
 * familiar name is 64 hex digits (`docker.io/<64 hex>`: the API carries the familiar name,
 * which then parses as an image ID).
 */
export function checkTaggable(ref: NamedReference): void {
  const shown = familiarString(ref)
  if (ref.digest !== undefined) throw invalid(shown, 'a tag cannot have a digest')
  if (ref.familiarName === DIGEST_ALGORITHM)
    throw invalid(shown, `"${DIGEST_ALGORITHM}" as a name is ambiguous with a digest`)
  if (IDENTIFIER_RE.test(ref.familiarName))
    throw invalid(shown, 'a 64-character hexadecimal name is ambiguous with an image ID')
}

/**
 * Normalizes a name an archive gives an image (`RepoTags` of a docker-archive, an OCI index
 * entry's `io.containerd.image.name`) to the fully qualified `name:tag` the store records:
 * `busybox` → `docker.io/library/busybox:latest`, `foo/bar:1` → `docker.io/foo/bar:1`.
 * Undefined for what is not a valid name; for a digest reference (archives name images by
 * tag; a digest is not a tag to record); and for the name `sha256`, a tag `docker load`
 * skips (its reference store refuses it). Docker itself refuses a `RepoTags` entry without a
 * tag; this takes it as `latest`.
 *
 * A bare word is read as a repository name, as Docker's grammar reads it: `latest` gives
 * `docker.io/library/latest:latest`. For `org.opencontainers.image.ref.name`, which is often a
 * bare tag, use {@link normalizeRefName}.
 */
export function normalizeTag(name: string): string | undefined {
  let ref: NamedReference
  try {
    ref = parseReference(name)
  } catch {
    return undefined
  }
  if (ref.digest !== undefined || ref.familiarName === DIGEST_ALGORITHM) return undefined
  return formatReference(withDefaultTag(ref))
}

/**
 * Normalizes an OCI index entry's `org.opencontainers.image.ref.name`. Writers put a bare tag
 * there (`docker save` and containerd write `latest`, with the full name in
 * `io.containerd.image.name`), so a value with none of `/`, `:`, `@` is a tag without a
 * repository and gives undefined (containerd's import rule); anything else is
 * {@link normalizeTag}.
 */
export function normalizeRefName(refName: string): string | undefined {
  if (!/[/:@]/.test(refName)) return undefined
  return normalizeTag(refName)
}

/*
 * Image IDs on the command line. `docker image inspect X` (and rm, tag, save, run) resolves X
 * as the classic image service does (daemon/images GetImage, over `ParseAnyReference`):
 *
 * 1. `sha256:<64 hex>` or a bare `<64 hex>` is an image ID and nothing else: names are never
 *    consulted (a 64-hex string cannot be a name, see parseReference).
 * 2. Anything else must parse as a name, else REFERENCE_INVALID: `ABC` is refused, even though
 *    it reads as hex, because upper case is not a name.
 * 3. The name, with `latest` added when it has neither tag nor digest, is looked up among the
 *    store's tags and digests (one with both a tag and a digest by its digest alone).
 * 4. Only if no name matches, X as typed is tried as an ID prefix: lower-case hex, bare or
 *    after `sha256:`, of any length from 1 digit (the classic store's digest set sets no
 *    minimum; Docker's containerd image store asks for 4). `sha256:abc` gets there because it
 *    parses as the name `docker.io/library/sha256:abc`. A prefix that more than one image ID
 *    starts with is REFERENCE_AMBIGUOUS.
 *
 * When nothing matches, Docker says `No such image: <familiarString(ref)>`, `ref` as in step 3.
 */

const FULL_ID_RE = /^(?:sha256:)?([a-f0-9]{64})$/
const ID_PREFIX_RE = /^(?:sha256:)?([a-f0-9]{1,64})$/

/** Step 1 above: the image ID `s` names exactly (`sha256:<64 hex>`, `<64 hex>`), else undefined. */
export function exactImageId(s: string): ImageId | undefined {
  const m = FULL_ID_RE.exec(s)
  return m?.[1] === undefined ? undefined : digestFromHex(m[1])
}

/** Whether Docker tries `s` as an image ID prefix (step 4): `[sha256:]<1 to 64 lower-case hex>`. */
export function isImageIdPrefix(s: string): boolean {
  return ID_PREFIX_RE.test(s)
}

/**
 * The ID prefix `s` stands for, in the `sha256:<hex>` form so that `id.startsWith(prefix)`
 * tests an image ID against it; undefined when `s` is no ID prefix (see {@link isImageIdPrefix}).
 */
export function imageIdPrefix(s: string): string | undefined {
  const m = ID_PREFIX_RE.exec(s)
  return m?.[1] === undefined ? undefined : `sha256:${m[1]}`
}

/** How to look an image up from what a user typed (the steps above). */
export type ImageQuery =
  /** Step 1: exactly this image ID. */
  | { readonly kind: 'id'; readonly id: ImageId }
  /**
   * Steps 3 and 4: `ref` (tag defaulted) among the names; if none, images whose ID starts
   * with `idPrefix`, when present.
   */
  | { readonly kind: 'name'; readonly ref: NamedReference; readonly idPrefix?: string }

/** Classifies what a user typed as an image ID or a name (steps 1, 2); else REFERENCE_INVALID. */
export function parseImageQuery(s: string): ImageQuery {
  const id = exactImageId(s)
  if (id !== undefined) return { kind: 'id', id }
  const ref = withDefaultTag(parseReference(s))
  const idPrefix = imageIdPrefix(s)
  return idPrefix === undefined ? { kind: 'name', ref } : { kind: 'name', ref, idPrefix }
}
