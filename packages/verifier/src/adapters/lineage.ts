// The lineage part of the HTTP adapters: read `Agentid-Lineage` (and `Agentid-Credentials`), verify it
// for this exact request, and answer a refusal.
import { ambiguousPath } from '../util.js'
import { VerificationError } from '@agentid/core'
import { CREDENTIALS_HEADER, decodeEntry, httpArgs, httpCommand, LINEAGE_HEADER, LINEAGE_SEPARATOR, type HttpBody } from '@agentid/lineage'
import { headerValues, type RequestHeaders } from '../request.js'
import type { VerifiedLineage } from '../lineage.js'
import type { Verifier } from '../verifier.js'

/** Lineage options of the adapters (`lineage: { ... }`); `lineage: true` takes every default. */
export interface AdapterLineageOptions {
  /**
   * The target callers name in their hops: the last hop's `aud` must equal it. Default: the adapter's
   * `audience`, else the audience the access token was verified for (createVerifier's `resourceAudience`), never the request's Host.
   */
  audience?: string
  /** This service's agent DID, when it is an agent: the last hop must name it as callee. */
  self?: string
  /** Refuse requests without a lineage (default true). False: a request without one passes with `agentidLineage` null. */
  required?: boolean
  /** The arguments the last hop must have signed. Default `httpArgs(url, body)` (see `@agentid/lineage`). */
  args?: (request: { method: string; url: string; body: unknown }) => unknown
}

/** A refused lineage as an HTTP answer: 401 when credentials are missing (send them), else 403. */
export interface LineageRefusal {
  status: number
  body: { error: { code: string; message: string; details: { hop: unknown; reason: unknown } } }
}

function one(headers: RequestHeaders, name: string): string | undefined {
  const all = headerValues(headers, name)
  // Two headers are refused, not merged: Node and fetch join repeated headers with ", ", which no lineage holds.
  if (all.length > 1) throw new VerificationError('ERR_MALFORMED', `more than one ${name} header`, { details: { hop: null, reason: 'repeated-header' } })
  return all[0]
}


/**
 * Verifies the lineage of an HTTP request: the `Agentid-Lineage` header (one), with the credentials of
 * `Agentid-Credentials`, for this service, `METHOD /path` and `httpArgs(url, body)`, and with `caller`
 * (the agent the request authenticated, as the adapters pass it) its last hop signed by that agent; with
 * `user` (the user its access token names) the hops naming no other user.
 * Returns null when there is none and it is not required. Throws VerificationError.
 * @example
 * const lineage = await verifyHttpLineage(verifier, { method, url, headers, body: req.body }, { self: myDid })
 */
export async function verifyHttpLineage(
  verifier: Verifier,
  request: { method: string; url: string; headers: RequestHeaders; body?: unknown },
  options: AdapterLineageOptions & { defaultAudience?: string | undefined; caller?: string | undefined; user?: string | null | undefined } = {},
): Promise<VerifiedLineage | null> {
  const lineage = one(request.headers, LINEAGE_HEADER)
  if (lineage === undefined) {
    if (options.required === false) return null
    throw new VerificationError('ERR_MALFORMED', 'the request carries no Agentid-Lineage header', { details: { hop: null, reason: 'missing' } })
  }
  if (ambiguousPath(request.url)) {
    throw new VerificationError('ERR_MALFORMED', 'the request path holds dot segments, backslashes or escaped unreserved characters: its command is ambiguous', { details: { hop: null, reason: 'path' } })
  }
  // A method no hop can name (httpCommand takes letters only; HTTP allows M-SEARCH and other tokens): a
  // refusal of the lineage, not an internal error.
  let command: string
  try {
    command = httpCommand(request.method, request.url)
  } catch {
    throw new VerificationError('ERR_MALFORMED', 'the request method is not one a hop can name', { details: { hop: null, reason: 'method' } })
  }
  // The last hop must be the authenticated caller's own (`caller`: the agent the DPoP check verified), as the
  // MCP guard requires: checked on its claims first, so that a lineage taken from another agent's call is
  // refused without spending its single use, and on the verified lineage below.
  const caller = options.caller
  if (caller !== undefined) {
    const from = lineage.lastIndexOf(LINEAGE_SEPARATOR) + 1
    const index = countSeparators(lineage)
    let signer: string | undefined
    try {
      signer = decodeEntry(lineage.slice(from), index).claims.iss
    } catch {
      // Malformed: verifyLineage names the entry and the reason.
    }
    if (signer !== undefined && signer !== caller) notTheCaller(index)
  }
  const credentials = one(request.headers, CREDENTIALS_HEADER)
  const audience = options.audience ?? options.defaultAudience ?? new URL(request.url).origin
  const args = options.args ? options.args({ method: request.method, url: request.url, body: request.body }) : httpArgs(request.url, request.body as HttpBody)
  // A human approval's receipt sent with the call (Agentid-Approval): a hop naming it (`apr`) is checked against it.
  const approval = one(request.headers, 'agentid-approval')
  const verified = await verifier.verifyLineage(lineage, {
    ...(approval === undefined || !/^[A-Za-z0-9_-]+$/.test(approval) ? {} : { approvals: [Buffer.from(approval, 'base64url').toString('utf8')] }),
    audience,
    command,
    args,
    ...(credentials === undefined ? {} : { credentials }),
    ...(options.self === undefined ? {} : { self: options.self }),
  })
  if (caller !== undefined && verified.last.actor.did !== caller) notTheCaller(verified.last.index)
  // The user the access token names (token exchange) and the user the hops name must be the same one.
  if (options.user != null && verified.user !== null && verified.user !== options.user) {
    throw new VerificationError('ERR_LINEAGE_MISMATCH', 'lineage: the hops name another user than the caller\'s token', { details: { hop: null, reason: 'user' } })
  }
  return verified
}

function notTheCaller(hop: number): never {
  throw new VerificationError('ERR_LINEAGE_MISMATCH', `lineage entry ${hop}: signed by another agent than the caller`, { details: { hop, reason: 'caller' } })
}

function countSeparators(text: string): number {
  let n = 0
  for (let i = text.indexOf(LINEAGE_SEPARATOR); i !== -1; i = text.indexOf(LINEAGE_SEPARATOR, i + 1)) n++
  return n
}

/** The answer to a refused lineage, or undefined for anything but a VerificationError. */
export function lineageRefusal(error: unknown): LineageRefusal | undefined {
  if (!(error instanceof VerificationError)) return undefined
  return {
    status: error.code === 'ERR_LINEAGE_CREDENTIAL_MISSING' ? 401 : 403,
    body: { error: { code: error.code, message: 'the lineage of this call was refused', details: { hop: error.details.hop ?? null, reason: error.details.reason ?? null } } },
  }
}

/** The options object of `lineage: true | { ... }`, or undefined when off. */
export function lineageOptionsOf(value: boolean | AdapterLineageOptions | undefined): AdapterLineageOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return {}
  if (typeof value !== 'object' || value === null) throw new TypeError('agentid adapter: lineage must be true or an options object')
  return value
}
