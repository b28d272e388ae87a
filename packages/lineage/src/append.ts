// Building a lineage: the acting agent signs a hop for each outgoing call; the callee signs a receipt.
import { randomBytes } from 'node:crypto'
import { AgentIdError, decodeJwt, parseStatusEntry, signCompactJws, VerificationError, type Signer } from '@agentid/core'
import { argsDigest } from './args.js'
import {
  credentialHash,
  custodyStep,
  decodeEntry,
  DEFAULT_ENTRY_TTL_SEC,
  delegationHash,
  HOP_TYP,
  initialCustody,
  joinLineage,
  MAX_ENTRY_LIFETIME_SEC,
  RECEIPT_TYP,
  sha256,
  splitLineage,
  type CustodyState,
  type DecodedEntry,
  type HopClaims,
  type LineageLimits,
  type ReceiptClaims,
} from './format.js'

/** What every entry needs: the signer and its identity credential. */
export interface EntrySignerOptions {
  /** The acting agent's key (its did:key). */
  signer: Signer
  /** The agent's identity credential (compact JWT VC) whose subject is the signer: referenced by hash and status entry. */
  credential: string
  /** Lifetime of the entry in seconds (default 60, at most 300). */
  ttlSec?: number
  /** Clock in milliseconds (default Date.now). */
  clock?: () => number
  /** Limits applied to the lineage built on and to the one returned (default {@link DEFAULT_LINEAGE_LIMITS}): keep them the callee's. */
  limits?: Partial<LineageLimits>
}

/** Options of {@link appendHop}. */
export interface AppendHopOptions extends EntrySignerOptions {
  /** The exact target: the service URL (`https://pay.example`) or `mcp://server/name`. */
  target: string
  /** The command (`httpCommand(method, url)` or `mcpCommand('tools/call', name)`). */
  command: string
  /** The arguments (`httpArgs(url, body)`, or the tool's `arguments`); their RFC 8785 digest is signed. */
  args?: unknown
  /** The DID of the agent serving the target, when it is an agent that may call further (the next signer). */
  callee?: string
  /** The delegation chain the signer relies on for this call (link JWTs, root first): its hash is signed. */
  delegationChain?: readonly string[]
  /** The user on whose behalf the transaction runs. Taken from the lineage when it names one (and must then be the same). */
  user?: string
  /** New lineage only: the originating request or grant, hashed into entry 0's `prv` (default: the transaction id). */
  origin?: string | Uint8Array
  /** New lineage only: what `origin` is (`request`, `grant`, `approval`, ...). */
  originKind?: string
  /** New lineage only: the transaction id (default 12 random bytes, base64url: 16 characters). */
  transactionId?: string
  /**
   * The human approval receipt this call carries (`_meta["io.agentid/approval"]`, `Agentid-Approval`): its
   * RFC 8785 digest is signed as `apr`, making the approval a part of this hop.
   */
  approval?: unknown
}

/** Options of {@link createReceipt}. */
export interface ReceiptOptions extends EntrySignerOptions {
  /** What the call returned (a JSON value); its RFC 8785 digest is signed. */
  output: unknown
  /** Outcome (default `ok`): lower case, at most 32 characters (`ok`, `error`, `refused`, ...). */
  outcome?: string
}

function entryTimes(options: EntrySignerOptions): { iat: number; exp: number } {
  const ttl = options.ttlSec ?? DEFAULT_ENTRY_TTL_SEC
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_ENTRY_LIFETIME_SEC) throw new TypeError(`lineage: ttlSec must be an integer from 1 to ${MAX_ENTRY_LIFETIME_SEC}`)
  const iat = Math.floor((options.clock ?? Date.now)() / 1000)
  return { iat, exp: iat + ttl }
}

function signerCredential(options: EntrySignerOptions): { crd: string; sts: [string, string] } {
  const { signer, credential } = options
  if (!signer || typeof signer.sign !== 'function' || typeof signer.did !== 'string') throw new TypeError('lineage: signer is required')
  if (typeof credential !== 'string' || credential === '') throw new TypeError('lineage: credential (the signer\'s identity credential JWT) is required')
  // Not verified here (services do that); read for its status entry, and to refuse another agent's credential.
  let payload: Record<string, unknown>
  try {
    payload = decodeJwt(credential).payload
  } catch (cause) {
    throw new TypeError('lineage: credential is not a compact JWT', { cause })
  }
  if (payload.sub !== signer.did) throw new TypeError('lineage: the credential names another agent than the signer')
  const vc = payload.vc as { credentialStatus?: unknown } | undefined
  const entry = parseStatusEntry(vc?.credentialStatus, 'ERR_INVALID_INPUT')
  return { crd: credentialHash(credential), sts: [entry.statusListCredential, entry.statusListIndex] }
}

function sign(typ: string, claims: Record<string, unknown>, signer: Signer): Promise<string> {
  return signCompactJws({ alg: 'EdDSA', typ }, JSON.stringify(claims), signer)
}

/** Decodes a lineage one builds on and replays its custody; refuses (AgentIdError ERR_INVALID_INPUT) what cannot be built on. */
function custodyOf(lineage: string, limits?: Partial<LineageLimits>): { entries: DecodedEntry[]; state: CustodyState } {
  try {
    const tokens = splitLineage(lineage, limits)
    const entries = tokens.map((t, i) => decodeEntry(t, i, limits?.maxEntryBytes))
    let state = initialCustody()
    for (const e of entries) state = custodyStep(state, e)
    return { entries, state }
  } catch (cause) {
    if (cause instanceof VerificationError) throw new AgentIdError('ERR_INVALID_INPUT', `lineage cannot be built on: ${cause.message}`, { cause, details: cause.details })
    throw cause
  }
}

/**
 * Joins the entries into header form, refusing (AgentIdError ERR_INVALID_INPUT, the verifier's
 * `details.reason`) a lineage the verifier's limits would refuse: too many entries, too many bytes, an
 * entry too large. What a verifier will refuse is refused here, before it is signed into a call.
 */
function joinedWithinLimits(entries: readonly string[], limits: Partial<LineageLimits> | undefined, what: string): string {
  const lineage = joinLineage(entries)
  try {
    splitLineage(lineage, limits)
  } catch (cause) {
    if (cause instanceof VerificationError) throw new AgentIdError('ERR_INVALID_INPUT', `${what}: verifiers would refuse the new lineage (${cause.message})`, { cause, details: cause.details })
    throw cause
  }
  return lineage
}

function inputError(message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', `lineage: ${message}`)
}

/**
 * Appends a hop, signed by the acting agent, to the lineage it received with the call it is serving
 * (or starts a new lineage when `lineage` is undefined): the next index, the same transaction, `prv`
 * the hash of the last entry, the target, command and argument digest of the outgoing call. Returns the
 * lineage in header form. Throws AgentIdError ERR_INVALID_INPUT when the signer does not hold custody
 * (the last hop named another agent) or the lineage does not hold together; TypeError on misuse.
 * @example
 * const lineage = await appendHop(received, { signer, credential, target: 'https://pay.example', callee: payDid,
 *   command: httpCommand('POST', url), args: httpArgs(url, body) })
 * await fetch(url, { method: 'POST', body, headers: { 'agentid-lineage': lineage } })
 */
export async function appendHop(lineage: string | undefined | null, options: AppendHopOptions): Promise<string> {
  if (!options || typeof options !== 'object') throw new TypeError('appendHop: options are required')
  const { target, command, callee, user } = options
  if (typeof target !== 'string' || target === '') throw new TypeError('appendHop: target is required')
  if (typeof command !== 'string' || command === '') throw new TypeError('appendHop: command is required')
  const { crd, sts } = signerCredential(options)
  const { iat, exp } = entryTimes(options)
  const arg = argsDigest(options.args)
  const dlg = options.delegationChain === undefined ? undefined : delegationHash(options.delegationChain)
  let apr: string | undefined
  if (options.approval !== undefined) {
    let receipt: unknown = options.approval
    if (typeof receipt === 'string') {
      try {
        receipt = JSON.parse(receipt)
      } catch {
        inputError('approval: the receipt is not JSON')
      }
    }
    apr = argsDigest(receipt)
  }

  let prefix: string[] = []
  let base: { txn: string; idx: number; prv: string; usr: string | null; ori?: string }
  if (lineage === undefined || lineage === null || lineage === '') {
    const txn = options.transactionId ?? randomBytes(12).toString('base64url')
    const origin = options.origin ?? txn
    base = { txn, idx: 0, prv: sha256(origin), usr: null, ...(options.originKind === undefined ? {} : { ori: options.originKind }) }
  } else {
    if (options.origin !== undefined || options.originKind !== undefined || options.transactionId !== undefined) {
      throw new TypeError('appendHop: origin, originKind and transactionId only start a new lineage')
    }
    const { entries, state } = custodyOf(lineage, options.limits)
    if (state.holder === '') inputError('the last hop named no agent: nothing may follow it')
    if (state.holder !== options.signer.did) inputError('the signer does not hold custody: the last entry handed it to another agent')
    prefix = entries.map((e) => e.token)
    base = { txn: state.txn!, idx: state.next, prv: state.last!, usr: state.user }
  }
  if (base.usr !== null && user !== undefined && user !== base.usr) inputError('the lineage acts for another user')
  const usr = base.usr ?? user
  const claims: Omit<HopClaims, 'sts'> & { sts: string[] } = {
    txn: base.txn,
    idx: base.idx,
    prv: base.prv,
    iss: options.signer.did,
    crd,
    sts,
    aud: target,
    ...(callee === undefined ? {} : { sub: callee }),
    cmd: command,
    arg,
    ...(dlg === undefined ? {} : { dlg }),
    ...(usr === undefined ? {} : { usr }),
    ...(base.ori === undefined ? {} : { ori: base.ori }),
    ...(apr === undefined ? {} : { apr }),
    iat,
    exp,
    jti: randomBytes(12).toString('base64url'),
  }
  const hop = await sign(HOP_TYP, claims, options.signer)
  // Refuse to hand out what no verifier would accept (bad target text, bad callee DID, ...).
  try {
    const entry = decodeEntry(hop, base.idx, Number.MAX_SAFE_INTEGER)
    if (entry.kind !== 'hop') throw new TypeError('unreachable')
  } catch (cause) {
    if (cause instanceof VerificationError) throw new AgentIdError('ERR_INVALID_INPUT', `appendHop: ${cause.message}`, { cause, details: cause.details })
    throw cause
  }
  return joinedWithinLimits([...prefix, hop], options.limits, 'appendHop')
}

/**
 * The callee's receipt for the innermost open call of `lineage` (the call it is serving, after any
 * calls of its own and their receipts): it signs that hop's hash, the RFC 8785 digest of `output` and
 * the outcome. Returns the lineage with the receipt appended (the callee's record, which it returns
 * to the caller in the `Agentid-Lineage` response header). Throws AgentIdError ERR_INVALID_INPUT when
 * the signer is not the callee of that call.
 * @example
 * const record = await createReceipt(verified.lineage, { signer, credential, output: result, outcome: 'ok' })
 * response.setHeader('agentid-lineage', record)
 */
export async function createReceipt(lineage: string, options: ReceiptOptions): Promise<string> {
  if (!options || typeof options !== 'object') throw new TypeError('createReceipt: options are required')
  if (typeof lineage !== 'string' || lineage === '') throw new TypeError('createReceipt: the lineage of the call answered is required')
  const { crd, sts } = signerCredential(options)
  const { iat, exp } = entryTimes(options)
  const out = argsDigest(options.output)
  const outcome = options.outcome ?? 'ok'
  if (typeof outcome !== 'string' || !/^[a-z][a-z0-9_-]{0,31}$/.test(outcome)) throw new TypeError('createReceipt: outcome must be lower case, at most 32 characters')
  const { entries, state } = custodyOf(lineage, options.limits)
  const call = state.open[state.open.length - 1]
  if (call === undefined) inputError('no open call to answer')
  if (call.callee !== options.signer.did) inputError('the signer is not the callee of the call answered')
  const claims: Omit<ReceiptClaims, 'sts'> & { sts: string[] } = {
    txn: state.txn!,
    idx: state.next,
    prv: state.last!,
    iss: options.signer.did,
    crd,
    sts,
    hop: call.hash,
    out,
    res: outcome,
    iat,
    exp,
    jti: randomBytes(12).toString('base64url'),
  }
  const receipt = await sign(RECEIPT_TYP, claims, options.signer)
  return joinedWithinLimits([...entries.map((e) => e.token), receipt], options.limits, 'createReceipt')
}
