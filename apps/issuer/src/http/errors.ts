import type { IncomingMessage } from 'node:http'
import { AgentIdError, type AgentIdErrorCode } from '@agentid/core'

/** The one table from error code to HTTP status. Anything not here is a 500 ERR_INTERNAL. */
export const HTTP_STATUS: Readonly<Record<AgentIdErrorCode, number>> = Object.freeze({
  ERR_INVALID_INPUT: 400,
  ERR_MALFORMED: 400,
  ERR_UNSUPPORTED_ALG: 400,
  ERR_DID_UNRESOLVABLE: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_SIGNATURE_INVALID: 401,
  ERR_KEY_MISMATCH: 401,
  ERR_USER_NOT_VERIFIED: 401,
  ERR_AUDIENCE_MISMATCH: 401,
  ERR_EXPIRED: 401,
  ERR_NOT_YET_VALID: 401,
  ERR_UNTRUSTED_ISSUER: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_AUTHORIZED: 403,
  ERR_REVOKED: 403,
  ERR_DELEGATION_BROKEN: 403,
  ERR_DELEGATION_ESCALATION: 403,
  ERR_DELEGATION_DEPTH: 403,
  ERR_APPROVAL_REQUIRED: 403,
  ERR_APPROVAL_DENIED: 403,
  ERR_APPROVAL_MISMATCH: 403,
  ERR_LINEAGE_BROKEN: 403,
  ERR_LINEAGE_MISMATCH: 403,
  ERR_LINEAGE_CREDENTIAL_MISSING: 401,
  ERR_NOT_LOGGED: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_REPLAY: 409,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_RATE_LIMITED: 429,
  ERR_HEADERS_TOO_LARGE: 431,
  ERR_INTERNAL: 500,
  ERR_POLICY_INVALID: 500,
  ERR_ATTESTATION_REJECTED: 403,
  ERR_STATUS_UNAVAILABLE: 503,
  ERR_UNAVAILABLE: 503,
})

export interface ErrorBody {
  error: { code: AgentIdErrorCode; message: string; details?: Record<string, unknown> }
}

// Details that are safe to send: field names and the like, never causes or stack traces.
const PUBLIC_DETAILS = new Set(['check', 'field', 'didKeyError', 'reason', 'statusListError'])

/**
 * Maps any thrown value to a status and the JSON error body of DESIGN.md. Our own errors keep their
 * code and message; framework errors for bad requests keep their 4xx; anything else is a 500
 * ERR_INTERNAL whose cause is for the log only (`internal: true`).
 */
export function toHttpError(error: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (error instanceof AgentIdError && error.code !== 'ERR_INTERNAL') {
    const details = Object.fromEntries(Object.entries(error.details).filter(([k]) => PUBLIC_DETAILS.has(k)))
    return {
      status: HTTP_STATUS[error.code] ?? 500,
      body: { error: { code: error.code, message: error.message, ...(Object.keys(details).length ? { details } : {}) } },
      internal: false,
    }
  }
  const fx = error as { statusCode?: unknown; code?: unknown; message?: unknown }
  if (typeof fx?.statusCode === 'number' && fx.statusCode >= 400 && fx.statusCode < 500 && typeof fx.code === 'string' && fx.code.startsWith('FST_')) {
    const code: AgentIdErrorCode = fx.statusCode === 413 ? 'ERR_PAYLOAD_TOO_LARGE' : fx.statusCode === 415 ? 'ERR_UNSUPPORTED_MEDIA_TYPE' : 'ERR_INVALID_INPUT'
    const message = fx.statusCode === 413 ? 'request body is larger than 64 KiB'
      : fx.statusCode === 415 ? 'request body must be application/json'
      : fx.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'request body is empty' : 'request body is not valid JSON'
    return { status: HTTP_STATUS[code], body: { error: { code, message } }, internal: false }
  }
  if (error instanceof SyntaxError) {
    return { status: 400, body: { error: { code: 'ERR_INVALID_INPUT', message: 'request body is not valid JSON' } }, internal: false }
  }
  return { status: 500, body: { error: { code: 'ERR_INTERNAL', message: 'internal error' } }, internal: true }
}

/**
 * True when `error` is the client hanging up before its request was read (Node's "aborted",
 * ECONNRESET on the request stream): the client's doing, not ours. Logged at info and answered with
 * nothing anyone will read; never an internal error, so an unauthenticated client cannot fill the
 * error log.
 */
export function isClientAbort(error: unknown, request: IncomingMessage): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return code === 'ECONNRESET' || code === 'ECONNABORTED' || request.readableAborted || request.aborted
}

/**
 * The raw HTTP/1.1 answer to a request Node's parser refused before any route saw it (Node's
 * `clientError`: bad chunk sizes, NUL in a header, Content-Length with Transfer-Encoding, headers
 * over the limit, a timeout), with the documented `{ error: { code, message } }` body and
 * `Connection: close` (the stream cannot be trusted past the error). Null when nothing can be sent.
 */
export function clientErrorResponse(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'ECONNRESET' || code === 'EPIPE') return null
  const [agentidCode, message]: [AgentIdErrorCode, string] =
    code === 'HPE_HEADER_OVERFLOW' ? ['ERR_HEADERS_TOO_LARGE', 'request headers are larger than the server reads']
    : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['ERR_REQUEST_TIMEOUT', 'the request did not arrive in time']
    : ['ERR_INVALID_INPUT', 'the request is not valid HTTP/1.1']
  const status = HTTP_STATUS[agentidCode]
  const body = JSON.stringify({ error: { code: agentidCode, message } })
  const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`
}
