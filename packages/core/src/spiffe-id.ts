import { AgentIdError, VerificationError, type AgentIdErrorCode } from './errors.js'

/**
 * Why a string is not a SPIFFE ID (or trust domain), kept in `details.spiffeIdError`. The names follow
 * go-spiffe's `spiffeid` errors; the two length limits are the SPIFFE-ID.md §2.3 maximums, which
 * agentid enforces (go-spiffe does not).
 */
export type SpiffeIdErrorName =
  | 'empty'
  | 'wrong_scheme'
  | 'missing_trust_domain'
  | 'bad_trust_domain_char'
  | 'bad_path_segment_char'
  | 'dot_segment'
  | 'empty_segment'
  | 'trailing_slash'
  | 'no_leading_slash'
  | 'trust_domain_too_long'
  | 'id_too_long'

/** A parsed SPIFFE ID: `spiffe://<trustDomain><path>`. */
export interface SpiffeId {
  /** The whole ID, exactly as given (a valid ID has a single spelling). */
  readonly id: string
  /** Lower-case trust domain name, e.g. `example.org`. */
  readonly trustDomain: string
  /** `''` or `/seg/seg...`. */
  readonly path: string
  /** The path's segments (empty for the trust domain's own ID). */
  readonly segments: readonly string[]
}

const SCHEME = 'spiffe://'
/** Longest SPIFFE ID accepted, in bytes (SPIFFE-ID.md §2.3). */
export const MAX_SPIFFE_ID_BYTES = 2048
/** Longest trust domain accepted, in bytes (SPIFFE-ID.md §2.3). */
export const MAX_TRUST_DOMAIN_BYTES = 255

const MESSAGES: Readonly<Record<SpiffeIdErrorName, string>> = {
  empty: 'cannot be empty',
  wrong_scheme: 'scheme is missing or invalid',
  missing_trust_domain: 'trust domain is missing',
  bad_trust_domain_char: 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
  bad_path_segment_char: 'path segment characters are limited to letters, numbers, dots, dashes, and underscores',
  dot_segment: 'path cannot contain dot segments',
  empty_segment: 'path cannot contain empty segments',
  trailing_slash: 'path cannot have a trailing slash',
  no_leading_slash: 'path must have a leading slash',
  trust_domain_too_long: `trust domain longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`,
  id_too_long: `SPIFFE ID longer than ${MAX_SPIFFE_ID_BYTES} bytes`,
}

/** Options of the SPIFFE ID parsers. */
export interface ParseSpiffeIdOptions {
  /** Code of the error thrown (default `ERR_MALFORMED`, a VerificationError; API input passes `ERR_INVALID_INPUT`). */
  code?: AgentIdErrorCode
}

function fail(name: SpiffeIdErrorName, code: AgentIdErrorCode): never {
  const message = `SPIFFE ID: ${MESSAGES[name]}`
  const options = { details: { spiffeIdError: name } }
  if (code === 'ERR_MALFORMED' || code === 'ERR_UNTRUSTED_ISSUER' || code === 'ERR_KEY_MISMATCH') throw new VerificationError(code, message, options)
  throw new AgentIdError(code, message, options)
}

// Byte checks, as go-spiffe does them: a non-ASCII character is refused at its first UTF-16 unit.
const isTdChar = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f
const isPathChar = (c: number) => isTdChar(c) || (c >= 0x41 && c <= 0x5a)

function checkPath(path: string, code: AgentIdErrorCode): void {
  if (path === '') return
  if (path.charCodeAt(0) !== 0x2f) fail('no_leading_slash', code)
  let start = 0
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === 0x2f) {
      const segment = path.slice(start, i)
      if (segment === '/') fail('empty_segment', code)
      if (segment === '/.' || segment === '/..') fail('dot_segment', code)
      start = i
      continue
    }
    if (!isPathChar(c)) fail('bad_path_segment_char', code)
  }
  const last = path.slice(start)
  if (last === '/') fail('trailing_slash', code)
  if (last === '/.' || last === '/..') fail('dot_segment', code)
}

/**
 * Parses a SPIFFE ID exactly as SPIFFE-ID.md defines it (the go-spiffe rules): scheme `spiffe://` in
 * lower case; a trust domain of `[a-z0-9._-]` only (no port, user info, IP literal brackets or
 * percent-encoding); a path of `/`-separated non-empty segments of `[a-zA-Z0-9._-]`, none `.` or `..`,
 * no trailing `/`; no query or fragment; at most 255 bytes of trust domain and 2048 bytes in all.
 * Throws `ERR_MALFORMED` (or `options.code`) with `details.spiffeIdError`.
 * @example
 * parseSpiffeId('spiffe://example.org/agent/orch/z6Mk...').trustDomain // 'example.org'
 */
export function parseSpiffeId(input: unknown, options: ParseSpiffeIdOptions = {}): SpiffeId {
  const code = options.code ?? 'ERR_MALFORMED'
  if (typeof input !== 'string' || input === '') fail('empty', code)
  // Bound the work before anything else: no valid ID is longer than 2048 bytes.
  if (input.length > MAX_SPIFFE_ID_BYTES * 4) fail('id_too_long', code)
  if (!input.startsWith(SCHEME)) fail('wrong_scheme', code)
  let end = SCHEME.length
  for (; end < input.length; end++) {
    const c = input.charCodeAt(end)
    if (c === 0x2f) break
    if (!isTdChar(c)) fail('bad_trust_domain_char', code)
  }
  if (end === SCHEME.length) fail('missing_trust_domain', code)
  const trustDomain = input.slice(SCHEME.length, end)
  const path = input.slice(end)
  checkPath(path, code)
  // Only ASCII passed the checks above, so length is bytes.
  if (trustDomain.length > MAX_TRUST_DOMAIN_BYTES) fail('trust_domain_too_long', code)
  if (input.length > MAX_SPIFFE_ID_BYTES) fail('id_too_long', code)
  return Object.freeze({ id: input, trustDomain, path, segments: Object.freeze(path === '' ? [] : path.slice(1).split('/')) })
}

/**
 * Parses a trust domain name (`example.org`), or takes the trust domain of a SPIFFE ID when the input
 * contains `:/` (go-spiffe's `TrustDomainFromString`). Throws like {@link parseSpiffeId}.
 * @example
 * parseTrustDomain('example.org') // 'example.org'
 */
export function parseTrustDomain(input: unknown, options: ParseSpiffeIdOptions = {}): string {
  const code = options.code ?? 'ERR_MALFORMED'
  if (typeof input !== 'string' || input === '') fail('missing_trust_domain', code)
  if (input.includes(':/')) return parseSpiffeId(input, options).trustDomain
  if (input.length > MAX_TRUST_DOMAIN_BYTES * 4) fail('trust_domain_too_long', code)
  for (let i = 0; i < input.length; i++) if (!isTdChar(input.charCodeAt(i))) fail('bad_trust_domain_char', code)
  if (input.length > MAX_TRUST_DOMAIN_BYTES) fail('trust_domain_too_long', code)
  return input
}

/** True when `value` is a valid SPIFFE ID. */
export function isSpiffeId(value: unknown): value is string {
  try {
    parseSpiffeId(value)
    return true
  } catch {
    return false
  }
}

/** Path segment that prefixes every agent's SPIFFE ID path. */
export const AGENT_SPIFFE_PATH_PREFIX = 'agent'

/**
 * The SPIFFE ID agentid gives an agent: `spiffe://<trustDomain>/agent/<orchestrator>/<key>`, where
 * `<orchestrator>` is the name of the orchestrator that spawned it and `<key>` the multibase part of
 * its did:key (`z6Mk...`), so the DID is recovered from the ID alone ({@link agentDidFromSpiffeId}).
 * @example
 * agentSpiffeId('example.org', 'billing', 'did:key:z6MkA...') // 'spiffe://example.org/agent/billing/z6MkA...'
 */
export function agentSpiffeId(trustDomain: string, orchestrator: string, did: string): string {
  const td = parseTrustDomain(trustDomain, { code: 'ERR_INVALID_INPUT' })
  if (!did.startsWith('did:key:z')) throw new TypeError('agentSpiffeId: an Ed25519 did:key is required')
  // One segment each: a '/' in the orchestrator name would move the key down a level.
  if (typeof orchestrator !== 'string' || orchestrator.includes('/') || orchestrator === '') fail('bad_path_segment_char', 'ERR_INVALID_INPUT')
  const id = `${SCHEME}${td}/${AGENT_SPIFFE_PATH_PREFIX}/${orchestrator}/${did.slice('did:key:'.length)}`
  return parseSpiffeId(id, { code: 'ERR_INVALID_INPUT' }).id
}

/**
 * The agent did:key named by an agentid SPIFFE ID (`.../agent/<orchestrator>/z6Mk...`), or null when the
 * ID does not follow that scheme. Only the shape is checked here; the DID itself is checked by whoever
 * uses it.
 * @example
 * agentDidFromSpiffeId('spiffe://example.org/agent/billing/z6MkA...') // 'did:key:z6MkA...'
 */
export function agentDidFromSpiffeId(id: SpiffeId): string | null {
  const [prefix, orchestrator, key] = id.segments
  if (id.segments.length !== 3 || prefix !== AGENT_SPIFFE_PATH_PREFIX || !orchestrator || !key?.startsWith('z')) return null
  return `did:key:${key}`
}
