// The chain of custody of MCP calls: the lineage a `tools/call` (`resources/read`, `prompts/get`) carries in
// `params._meta["io.agentid/lineage"]`, verified by the guard before the server sees the call, handed to the
// handler, written into the audit event, and answered with the server's signed receipt.
import { signerFromJwk, VerificationError, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import { createReceipt, decodeEntry, LINEAGE_SEPARATOR, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand } from '@agentid/lineage'
import type { LineageInput } from '@agentid/policy'
import type { RequestHeaders, VerifiedLineage, Verifier } from '@agentid/verifier'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { AuditLineage, Caller, McpLineageAgent } from './types.js'
import { receiptOf } from './approval.js'

/**
 * JSON-RPC error code of a call whose lineage was refused (answered for its id; the handler never runs).
 * `error.data` is `{ code, hop, reason }`: the agentid code (`ERR_LINEAGE_BROKEN`, `ERR_LINEAGE_MISMATCH`,
 * `ERR_REPLAY`, `ERR_REVOKED`, …), the index of the entry refused (or null) and the reason.
 * @example
 * catch (e) { if (e instanceof McpError && e.code === MCP_LINEAGE_REFUSED) console.log(e.data) }
 */
export const MCP_LINEAGE_REFUSED = -32004

/** The methods whose lineage the guard verifies, and the `mcpCommand` method each is signed as. */
const LINEAGE_METHODS = new Set(['tools/call', 'resources/read', 'prompts/get'])

/** The verified lineage of the call a handler serves, by the AuthInfo the guard handed to it. */
const verifiedByAuth = new WeakMap<object, VerifiedLineage>()

/**
 * The verified lineage of the call a tool (resource, prompt) handler is serving, or null when the call
 * carried none. Pass the handler's `extra` (the SDK's RequestHandlerExtra). Only the guard can set it:
 * a lineage a client put in `_meta` is not one until the guard verified it.
 * @example
 * server.registerTool('pay', { inputSchema }, async (args, extra) => {
 *   const lineage = verifiedLineage(extra)        // VerifiedLineage: hops, actors, user, transaction
 *   if (lineage === null) throw new Error('a lineage is required')
 * })
 */
export function verifiedLineage(extra: { authInfo?: AuthInfo | undefined } | undefined): VerifiedLineage | null {
  const auth = extra?.authInfo
  return (auth !== undefined && verifiedByAuth.get(auth)) || null
}

/** The AuthInfo handed to the handler of a call whose lineage the guard verified. */
export function authInfoWithLineage(authInfo: AuthInfo, lineage: VerifiedLineage): AuthInfo {
  const next: AuthInfo = { ...authInfo, extra: { ...authInfo.extra, lineage } }
  verifiedByAuth.set(next, lineage)
  return next
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** The guard's lineage settings, checked once. */
export interface LineageSettings {
  readonly required: boolean
  /** This server's agent: the callee hops must name, and (with a signer) the signer of receipts. */
  readonly self: string | undefined
  readonly signer: Signer | undefined
  readonly credential: string | undefined
}

export function lineageSettings(required: unknown, agent: McpLineageAgent | undefined): LineageSettings {
  if (required !== undefined && typeof required !== 'boolean') throw new TypeError('createMcpGuard: requireLineage must be a boolean')
  if (agent === undefined) return { required: required === true, self: undefined, signer: undefined, credential: undefined }
  if (!isRecord(agent as unknown) || typeof agent.did !== 'string' || !agent.did.startsWith('did:key:')) throw new TypeError('createMcpGuard: lineageAgent.did must be the server agent\'s did:key')
  const signer = agent.signer ?? (agent.privateJwk === undefined ? undefined : signerFromJwk(agent.privateJwk as Ed25519PrivateJwk))
  if (signer !== undefined && signer.did !== agent.did) throw new TypeError('createMcpGuard: lineageAgent.signer is another agent\'s key')
  if ((signer === undefined) !== (agent.credential === undefined)) throw new TypeError('createMcpGuard: lineageAgent needs both a key and its credential to sign receipts (or neither)')
  if (agent.credential !== undefined && (typeof agent.credential !== 'string' || agent.credential === '')) throw new TypeError('createMcpGuard: lineageAgent.credential must be a compact JWT')
  return { required: required === true, self: agent.did, signer, credential: agent.credential }
}

/** The call a message makes, as its lineage's last hop must name it; null when it is not a call the guard checks. */
export function lineageCall(message: unknown): { method: string; name: string; args: unknown; meta: unknown } | null {
  if (!isRecord(message) || typeof message.method !== 'string' || message.id === undefined || !LINEAGE_METHODS.has(message.method)) return null
  const params = isRecord(message.params) ? message.params : {}
  const name = message.method === 'resources/read' ? params.uri : params.name
  if (typeof name !== 'string' || name === '') return null // the gate refuses it (invalid params)
  return { method: message.method, name, args: message.method === 'resources/read' ? undefined : params.arguments, meta: params._meta }
}

function refusal(code: VerificationError['code'], reason: string, message: string): VerificationError {
  return new VerificationError(code, `lineage: ${message}`, { details: { hop: null, reason } })
}

/**
 * Verifies the lineage of one call for this server: the last hop targets `mcp://<serverId>/<name>` with
 * `<method> <name>` and the digest of the call's arguments, is signed by the authenticated caller, names
 * this server's agent as callee when it has one; the actors' users agree with the caller's. Returns null
 * when the call carries no lineage and none is required. Throws VerificationError.
 */
export async function verifyCallLineage(
  verifier: Verifier,
  settings: LineageSettings,
  serverId: string,
  caller: Caller,
  call: { method: string; name: string; args: unknown; meta: unknown },
  headers?: RequestHeaders,
): Promise<VerifiedLineage | null> {
  const meta = call.meta
  const lineage = isRecord(meta) ? meta[MCP_LINEAGE_META] : undefined
  if (lineage === undefined) {
    if (!settings.required) return null
    throw refusal('ERR_MALFORMED', 'missing', `${call.method} carries no _meta["${MCP_LINEAGE_META}"] and this server requires one`)
  }
  if (typeof lineage !== 'string') throw refusal('ERR_MALFORMED', 'not-a-string', `_meta["${MCP_LINEAGE_META}"] must be a string`)
  const credentials = (meta as Record<string, unknown>)[MCP_CREDENTIALS_META]
  if (credentials !== undefined && typeof credentials !== 'string') throw refusal('ERR_MALFORMED', 'credentials', `_meta["${MCP_CREDENTIALS_META}"] must be a string`)
  // The last hop must be the caller's own: checked on its claims before anything is verified, so that a
  // lineage taken from another agent's call is refused without spending its single use.
  const tokens = lineage.split(LINEAGE_SEPARATOR)
  const lastToken = tokens[tokens.length - 1]!
  if (lastToken.length <= 4096) {
    let signer: string | undefined
    try {
      signer = decodeEntry(lastToken, tokens.length - 1, 4096).claims.iss
    } catch {
      // Malformed: verifyLineage names the entry and the reason.
    }
    if (signer !== undefined && signer !== caller.agent) {
      throw new VerificationError('ERR_LINEAGE_MISMATCH', `lineage entry ${tokens.length - 1}: signed by another agent than the caller`, { details: { hop: tokens.length - 1, reason: 'caller' } })
    }
  }
  // A receipt of a human approval sent with the call (`_meta`, else the Agentid-Approval header, as the
  // approval step reads it): a hop naming it (`apr`) is checked against it. An unreadable header gives none
  // here (such a hop then approves nothing; the approval step refuses the header itself).
  let approval: unknown
  try {
    approval = receiptOf({ _meta: meta }, headers)
  } catch {
    approval = undefined
  }
  const verified = await verifier.verifyLineage(lineage, {
    ...(approval === undefined ? {} : { approvals: [approval] }),
    audience: `mcp://${serverId}/${call.name}`,
    command: mcpCommand(call.method as 'tools/call', call.name),
    args: call.args,
    ...(credentials === undefined || credentials === '' ? {} : { credentials }),
    ...(settings.self === undefined ? {} : { self: settings.self }),
  })
  if (verified.last.actor.did !== caller.agent) {
    throw new VerificationError('ERR_LINEAGE_MISMATCH', `lineage entry ${verified.last.index}: signed by another agent than the caller`, { details: { hop: verified.last.index, reason: 'caller' } })
  }
  // The user the caller's token names (token exchange) and the user the hops name must be the same one.
  if (caller.user !== null && verified.user !== null && caller.user !== verified.user) {
    throw new VerificationError('ERR_LINEAGE_MISMATCH', 'lineage: the hops name another user than the caller\'s token', { details: { hop: null, reason: 'user' } })
  }
  return verified
}

/** The caller with the verified lineage in its policy subject (`context.lineage`). */
export function callerWithLineage(caller: Caller, lineage: VerifiedLineage): Caller {
  return Object.freeze({ ...caller, subject: Object.freeze({ ...caller.subject, lineage: lineage as unknown as LineageInput }) })
}

/**
 * The approved last hop of the call a caller makes (its lineage's last hop carries an approval whose receipt
 * verified), else undefined: the approval the guard must spend before the server acts on the call.
 */
export function approvedLastHop(caller: Caller): VerifiedLineage['last'] | undefined {
  const lineage = caller.subject.lineage as VerifiedLineage | null | undefined
  return lineage?.last.approved === true ? lineage.last : undefined
}

/**
 * Spends the approval of the call about to be forwarded. `verifyLineage` checks approval receipts without
 * spending them (`consume: false`), so a policy resting on `context.lineage.approvedCalls` alone let the same
 * receipt approve the same call again on each fresh hop; the service acting on the call spends it, once,
 * whichever policy allowed it. Throws VerificationError (ERR_REPLAY when it was spent before).
 */
export async function spendLineageApproval(verifier: Verifier, caller: Caller, params: Record<string, unknown>, headers: RequestHeaders | undefined): Promise<void> {
  const hop = approvedLastHop(caller)
  if (hop === undefined) return
  const lineage = caller.subject.lineage as unknown as VerifiedLineage
  // The receipt verifyCallLineage checked this hop against (the same reading of _meta, else the header).
  const receipt = receiptOf(params, headers)
  await verifier.verifyApproval(receipt, {
    call: { agent: hop.actor.did, controller: hop.actor.claims.controller, target: hop.target, command: hop.command, argumentsDigest: `sha-256:${hop.argsDigest}`, transactionId: lineage.transactionId },
  })
}

/** The lineage as the audit event records it: every entry, its signer, target, command and digests. */
export function auditLineage(lineage: LineageInput | VerifiedLineage | null | undefined): AuditLineage | undefined {
  if (lineage === null || lineage === undefined) return undefined
  const v = lineage as VerifiedLineage
  return {
    transactionId: v.transactionId,
    user: v.user,
    origin: v.origin.kind,
    entries: v.entries.map((e) =>
      e.kind === 'hop'
        ? { index: e.index, kind: 'hop' as const, actor: e.actor.did, purpose: e.actor.claims.purpose, target: e.target, callee: e.callee, command: e.command, argsDigest: e.argsDigest, hash: e.hash }
        : { index: e.index, kind: 'receipt' as const, actor: e.actor.did, purpose: e.actor.claims.purpose, answers: e.answers, outputDigest: e.outputDigest, outcome: e.outcome, hash: e.hash },
    ),
  }
}

/**
 * The server's record of an answered call: the lineage received (or, when the handler returned in
 * `result._meta["io.agentid/lineage"]` a record extending it — its own calls and their receipts — that
 * record), closed by the server agent's signed receipt over the result (without `_meta`) and its outcome
 * (`error` when `isError`). Null when the server has no signing key.
 */
export async function receiptFor(settings: LineageSettings, received: VerifiedLineage, result: Record<string, unknown>): Promise<string | null> {
  if (settings.signer === undefined || settings.credential === undefined) return null
  const { _meta: meta, ...output } = result
  const returned = isRecord(meta) ? meta[MCP_LINEAGE_META] : undefined
  const base = typeof returned === 'string' && returned.startsWith(`${received.lineage}${LINEAGE_SEPARATOR}`) ? returned : received.lineage
  const outcome = result.isError === true ? 'error' : 'ok'
  try {
    return await createReceipt(base, { signer: settings.signer, credential: settings.credential, output, outcome })
  } catch {
    // The handler's record does not hold together: the receipt goes on the lineage received.
    if (base === received.lineage) return null
    return createReceipt(received.lineage, { signer: settings.signer, credential: settings.credential, output, outcome })
  }
}
