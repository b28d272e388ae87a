// Small helpers the verifier's modules share (internal; not exported from index.ts).
import { agentDidFromSpiffeId, parseSpiffeId, parseStatusListIndex, StatusListError, VerificationError, type AgentClaims } from '@agentid/core'

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Freezes a result all the way down: memoized results are shared between callers. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    // Indexed and for-in loops: Object.values allocated an array per object, on every verification.
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) deepFreeze(value[i])
    } else {
      for (const key in value) if (Object.hasOwn(value, key)) deepFreeze((value as Record<string, unknown>)[key])
    }
  }
  return value
}

/** A credential's `statusListIndex` as a number; ERR_MALFORMED naming the spec error otherwise. */
export function statusIndexOf(statusListIndex: string): number {
  try {
    return parseStatusListIndex(statusListIndex)
  } catch (cause) {
    if (cause instanceof StatusListError) {
      throw new VerificationError('ERR_MALFORMED', 'credentialStatus.statusListIndex is invalid', { details: { statusListError: cause.statusListError } })
    }
    throw cause
  }
}

/**
 * A `spiffeId` claim in agentid's scheme (`.../agent/<orchestrator>/<key>`) must name the credential's own
 * agent: an issuer bug or a copied claim naming another agent's key is ERR_MALFORMED.
 */
export function assertSpiffeIdNamesAgent(claims: AgentClaims, did: string): void {
  if (claims.spiffeId === undefined) return
  const named = agentDidFromSpiffeId(parseSpiffeId(claims.spiffeId))
  if (named !== null && named !== did) throw new VerificationError('ERR_MALFORMED', 'spiffeId names another agent than the credential subject', { details: { field: 'spiffeId' } })
}

/**
 * True when the path of a request URL (as received: `${origin}${req.url}`) holds a dot segment (`.`,
 * `..`, percent-encoded or not), a backslash, or an escape of an unreserved character (RFC 3986: a letter,
 * a digit, `-`, `.`, `_`, `~`; `%61` for `a`), which new URL() leaves as sent. A call's command is
 * `METHOD /path` with the path resolved (`httpCommand`: new URL), but the server's router takes the path as
 * sent: Express and Fastify run /v1/refunds/%2e%2e/charges as /v1/refunds/:id/charges, not the /v1/charges
 * a hop or approval names; and Fastify (find-my-way) and Hono decode a path before matching, so
 * /v1/ch%61rges runs the /v1/charges route under a command no policy or check written for
 * 'POST /v1/charges' recognizes. No fetch client sends such a path (it resolves dot segments; new URL(),
 * encodeURIComponent and RFC 3986 encoders never escape unreserved characters), so verifyRequest (the DPoP
 * htu is compared after the same resolution) and the lineage and approval steps refuse it.
 */
export function ambiguousPath(url: string): boolean {
  // A server sees the same URL again and again: the last answer is kept (a pure function of the string).
  if (url === lastPath.url) return lastPath.ambiguous
  const path = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#\\]*/, '').split(/[?#]/)[0]!
  const ambiguous = path.includes('\\') || /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i.test(path) || ALIAS_ESCAPE.test(path)
  lastPath = { url, ambiguous }
  return ambiguous
}

/** The last URL {@link ambiguousPath} answered for, and its answer. */
let lastPath: { url: string | undefined; ambiguous: boolean } = { url: undefined, ambiguous: false }

// An escape (either case) of an unreserved character: A-Z a-z 0-9 - . _ ~ (RFC 3986 §2.3: equivalent to the
// character itself, and normalized to it).
const ALIAS_ESCAPE = /%(?:2[DEde]|3[0-9]|4[1-9A-Fa-f]|5[0-9AFaf]|6[1-9A-Fa-f]|7[0-9AEae])/
