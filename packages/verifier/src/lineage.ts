// verifier.verifyLineage: the chain of custody of a call, verified before the service acts.
import { VerificationError } from '@agentid/core'
import {
  argsDigest,
  credentialHash,
  CustodyCursor,
  decodeEntry,
  delegationHash,
  LINEAGE_SEPARATOR,
  lineageError,
  type CustodyEntry,
  type CustodyState,
  type DecodedEntry,
  type HopClaims,
  type LineageLimits,
} from '@agentid/lineage'
import type { DelegationRequest, VerifiedDelegation } from './delegation.js'
import { verifyUnderAnyKey, verifyUnderAnyKeySync, type KeyResolver, type VerificationKey } from './keys.js'
import { BoundedCache } from './lru.js'
import type { ReplayCache } from './replay-cache.js'
import type { VerifiedAgent } from './types.js'
import type { VerifiedApproval, VerifyApprovalOptions } from './approval.js'
import { isRecord } from './util.js'

/** Options of `verifier.verifyLineage`: the call the service is about to act on. */
export interface VerifyLineageOptions {
  /** This service, exactly as callers name it: the last hop's `aud` must equal it (service URL or `mcp://server/name`). */
  audience: string
  /** The command received (`httpCommand(method, url)`, `mcpCommand('tools/call', name)`): the last hop's `cmd` must equal it. */
  command: string
  /** The arguments received (a JSON value: `httpArgs(url, body)`, the tool's `arguments`); their RFC 8785 digest must be the last hop's `arg`. */
  args?: unknown
  /** Instead of `args`: their digest (`argsDigest(args)`), when the service computed it already. */
  argsDigest?: string
  /** This service's agent DID, when it is an agent: the last hop's `sub` must name it. */
  self?: string
  /**
   * Identity credentials (compact JWTs) of the lineage's actors, as sent with the call (a list, or the
   * `Agentid-Credentials` header form joined by `~`). A credential the verifier verified before (memoized
   * by its bytes) need not be sent again.
   */
  credentials?: readonly string[] | string
  /** Delegation chains (link JWTs, root first) the hops rely on, matched to each hop's `dlg` by hash. */
  delegationChains?: readonly (readonly string[])[]
  /**
   * Approval receipts sent with the call (`_meta["io.agentid/approval"]`, `Agentid-Approval`): each hop
   * naming an approval (`apr`) whose receipt is here must verify for that hop (agent = signer, target,
   * command, arguments digest, transaction) with `verifyApproval` (`consume: false`: the service acting
   * on the call spends it), and the last hop's must be here when it names one. An earlier hop whose
   * receipt is not here (it travelled with the call it approved, not along the chain: a transaction with
   * two approvals) is accepted as without this option: `approval.verified: null`, not approved.
   */
  approvals?: readonly unknown[]
  /** The request each hop's chain is checked for. Default `{ resource: hop.aud, action: 'invoke' }`. */
  delegationRequest?: (hop: HopClaims) => { resource: string; action: string }
}

/** An actor of the lineage, from its verified identity credential. */
export type LineageActor = VerifiedAgent

/** A verified hop: who called what, when, for whom, with which authority. */
export interface VerifiedLineageHop {
  readonly kind: 'hop'
  readonly index: number
  /** The caller, with its identity credential's claims (purpose, controller, model, ...). */
  readonly actor: LineageActor
  /** The exact target (`aud`). */
  readonly target: string
  /** The agent serving the target (`sub`), or null when the hop ends the lineage. */
  readonly callee: string | null
  readonly command: string
  /** SHA-256 (base64url) of the RFC 8785 canonical arguments. */
  readonly argsDigest: string
  /** Unix seconds. */
  readonly issuedAt: number
  readonly expiresAt: number
  readonly id: string
  /** SHA-256 (base64url) of the hop's compact JWS. */
  readonly hash: string
  /** The user on whose behalf the transaction runs, when the hops name one (asserted by the actors). */
  readonly user: string | null
  /** The delegation chain the actor relied on: its hash, and the verified chain when it was given. */
  readonly delegation: { readonly hash: string; readonly chain: VerifiedDelegation | null } | null
  /** The human approval the hop acts on (`apr`): the receipt's digest, and the verified approval when the receipts were given. */
  readonly approval: { readonly digest: string; readonly verified: VerifiedApproval | null } | null
  /**
   * True only when the hop names an approval (`apr`) and its receipt, sent with the call (`approvals`),
   * verified for this hop with `verifyApproval`. A hop that only claims an approval (no receipt given) is
   * not approved.
   */
  readonly approved: boolean
}

/** A human approval verified in the lineage: the hop it is for, and what `verifyApproval` established. */
export interface VerifiedLineageApproval {
  /** Index of the approved hop. */
  readonly hop: number
  /** The hop's signer (the agent the approval is for). */
  readonly actor: string
  readonly target: string
  readonly command: string
  readonly approval: VerifiedApproval
}

/** A verified receipt: the callee of hop `answers` returned an output with this digest and outcome. */
export interface VerifiedLineageReceipt {
  readonly kind: 'receipt'
  readonly index: number
  readonly actor: LineageActor
  /** Index of the hop answered. */
  readonly answers: number
  readonly outputDigest: string
  readonly outcome: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly id: string
  readonly hash: string
}

/** What `verifyLineage` returns. */
export interface VerifiedLineage {
  readonly transactionId: string
  /** What entry 0's `prv` hashes: the originating request or grant, and its kind when named. */
  readonly origin: { readonly digest: string; readonly kind: string | null }
  /** The user the hops name, or null. */
  readonly user: string | null
  /** Every entry in order, hops and receipts. */
  readonly entries: readonly (VerifiedLineageHop | VerifiedLineageReceipt)[]
  /** The hops only, in order. */
  readonly hops: readonly VerifiedLineageHop[]
  /** The last hop: the call this service received. */
  readonly last: VerifiedLineageHop
  /**
   * The approvals whose receipts verified (`approvals` option), in hop order: empty when the hops name
   * none or when no receipts were given. Never from a hop's `apr` claim alone.
   */
  readonly approvals: readonly VerifiedLineageApproval[]
  /** The lineage as received (header form): what the service builds its own hops and receipt on. */
  readonly lineage: string
}

/** What the lineage check needs from its verifier. */
export interface LineageContext {
  keys: KeyResolver
  now: () => number
  clockSkewSec: number
  /** How old the last hop's `iat` may be (plus skew). */
  maxAgeSec: number
  limits: LineageLimits
  offloadSignatures: boolean
  replayCache: ReplayCache
  memo: BoundedCache<string, PrefixMemo>
  /** The verified identity credential whose SHA-256 (base64url) is `hash`, if the verifier knows it (time and status checked now). */
  knownCredential: (hash: string) => Promise<VerifiedAgent | undefined>
  /** The same without a promise: `'unknown'` when not known, `'fetch'` when its status list must be fetched first (then `knownCredential`). */
  knownCredentialSync: (hash: string) => VerifiedAgent | 'unknown' | 'fetch'
  /**
   * Bounds (ms) within which `knownCredentialSync(hash)` keeps its answer while `actorsVersion()` is
   * unchanged: the credential's time window and its status list's freshness. Undefined when not known.
   */
  knownCredentialWindow: (hash: string) => { from: number; until: number } | undefined
  /** Changes whenever the verifier's revocation state does (a status list cached anew or dropped, a revocation event). */
  actorsVersion: () => number
  verifyAgentCredential: (jwt: string) => Promise<VerifiedAgent>
  verifyDelegation: (chain: readonly string[], request: DelegationRequest) => Promise<VerifiedDelegation>
  verifyApproval: (receipt: unknown, options: VerifyApprovalOptions) => Promise<VerifiedApproval>
}

/**
 * A verified prefix: its entries' signatures, custody and time order checked. Kept under the signature
 * segment of its last entry (a lookup key only) and used only when the lineage received starts with
 * exactly `prefix`, compared whole: the bytes, not a digest of them, decide.
 */
export interface PrefixMemo {
  /** The prefix in header form (entries joined by `~`). */
  readonly prefix: string
  /** What later checks read of its entries (no signature or signing input: those are done with). */
  readonly entries: readonly CustodyEntry[]
  /** Custody after its last entry. */
  readonly state: CustodyState
  /**
   * The latest `iat` of its entries. Served only while the clock stands past it (minus the skew): each
   * entry was checked not to be issued in the future when it was verified, and a clock stepped back
   * since would refuse it again.
   */
  readonly latestIat: number
  /**
   * The verified view of each of its hops as last returned, by index: a hop with no delegation and
   * no approval, whose actor is the same verified credential again, is the same frozen object, so a
   * long workflow does not rebuild its whole history on every call. Filled on use.
   */
  readonly views: (VerifiedLineageHop | undefined)[]
  /** Its actors as last checked in full, and until when that check stands (filled on use). */
  actors: ActorsCheck | undefined
}

/**
 * The actors of a memoized prefix, each entry's credential checked (known, in time, not revoked, its
 * subject the signer, its status entry the one the entry names) at actors version `version`. While
 * that version is unchanged and the clock within [from, until), every one of those checks would give
 * the same answer again (the credentials' time windows and status lists' freshness bound it), so a
 * later call skips them for the prefix; anything else runs them all again.
 */
export interface ActorsCheck {
  readonly version: number
  readonly from: number
  readonly until: number
  /** The verified agent of each entry of the prefix, by index. */
  readonly agents: readonly VerifiedAgent[]
}

export function createLineageMemo(size: number): BoundedCache<string, PrefixMemo> {
  return new BoundedCache(size)
}

/** Re-throws a failure of an actor's credential (or chain) naming the entry. */
function named(error: unknown, hop: number, reason: string, extra: Record<string, unknown> = {}): never {
  if (error instanceof VerificationError) {
    throw new VerificationError(error.code, `lineage entry ${hop}: ${reason}: ${error.message}`, { details: { ...error.details, ...extra, hop, reason }, cause: error })
  }
  throw error
}

function signerKeysSync(ctx: LineageContext, entry: DecodedEntry): readonly VerificationKey[] | undefined {
  const iss = entry.claims.iss
  const kid = entry.header.kid as string | undefined
  try {
    return ctx.keys.keysForSync(iss, 'capabilityInvocation', kid)
  } catch (error) {
    if (!(error instanceof VerificationError) || error.code !== 'ERR_KEY_MISMATCH') named(error, entry.index, 'signer-key', { signer: iss })
    try {
      return ctx.keys.keysForSync(iss, 'assertionMethod', kid)
    } catch (again) {
      named(again, entry.index, 'signer-key', { signer: iss })
    }
  }
}

/**
 * The entry's signature under its signer's capabilityInvocation key (else assertionMethod). Without a
 * promise when the signer's keys are at hand and signatures are not offloaded: returns true; false when
 * it must go through {@link verifySignature}.
 */
function verifySignatureSync(ctx: LineageContext, entry: DecodedEntry): boolean {
  if (ctx.offloadSignatures) return false
  const keys = signerKeysSync(ctx, entry)
  if (keys === undefined) return false
  try {
    verifyUnderAnyKeySync(keys, entry)
  } catch (error) {
    named(error, entry.index, 'signature', { signer: entry.claims.iss })
  }
  return true
}

async function verifySignature(ctx: LineageContext, entry: DecodedEntry): Promise<void> {
  const iss = entry.claims.iss
  const kid = entry.header.kid as string | undefined
  let keys
  try {
    keys = await ctx.keys.keysFor(iss, 'capabilityInvocation', kid)
  } catch (error) {
    if (!(error instanceof VerificationError) || error.code !== 'ERR_KEY_MISMATCH') named(error, entry.index, 'signer-key', { signer: iss })
    try {
      keys = await ctx.keys.keysFor(iss, 'assertionMethod', kid)
    } catch (again) {
      named(again, entry.index, 'signer-key', { signer: iss })
    }
  }
  try {
    await verifyUnderAnyKey(keys, entry, ctx.offloadSignatures)
  } catch (error) {
    named(error, entry.index, 'signature', { signer: iss })
  }
}

// A character of a lineage in header form other than base64url, the JWS dots and the `~` separators.
// Global: `test` searches from `lastIndex`, set by every caller (synchronous, so never shared midway).
// Irregexp's compiled class scan is about 3 times faster per character than a table walk in
// JavaScript here (0.6 against 1.8 ns, random base64url text, Node 20).
const NOT_LINEAGE_CHAR = /[^A-Za-z0-9_.~-]/g

/** True when `text` from `from` on holds only those characters. */
function lineageChars(text: string, from: number): boolean {
  NOT_LINEAGE_CHAR.lastIndex = from
  return !NOT_LINEAGE_CHAR.test(text)
}

/**
 * The limits of `splitLineage` (size, entries, entry size, empty entries) and the end offset of each
 * entry, found without cutting the lineage into strings (only new entries are cut, by the caller).
 * Its character check is left to the caller, for the part of the lineage not memoized.
 */
function entryEnds(lineage: unknown, limits: LineageLimits): number[] {
  if (typeof lineage !== 'string' || lineage.length === 0) lineageError('ERR_MALFORMED', null, 'not-a-string', 'must be a non-empty string')
  if (lineage.length > limits.maxBytes) lineageError('ERR_MALFORMED', null, 'too-large', `larger than ${limits.maxBytes} bytes`, { maxBytes: limits.maxBytes })
  const ends: number[] = []
  let from = 0
  for (;;) {
    const found = lineage.indexOf(LINEAGE_SEPARATOR, from)
    const end = found === -1 ? lineage.length : found
    ends.push(end)
    if (found === -1) break
    from = found + 1
  }
  if (ends.length > limits.maxEntries) lineageError('ERR_MALFORMED', null, 'too-many-entries', `more than ${limits.maxEntries} entries`, { maxEntries: limits.maxEntries, entries: ends.length })
  for (let i = 0, start = 0; i < ends.length; start = ends[i]! + 1, i++) {
    const length = ends[i]! - start
    if (length === 0) lineageError('ERR_MALFORMED', i, 'empty-entry', 'is empty')
    if (length > limits.maxEntryBytes) lineageError('ERR_MALFORMED', i, 'entry-too-large', `larger than ${limits.maxEntryBytes} bytes`, { maxEntryBytes: limits.maxEntryBytes })
  }
  return ends
}

/**
 * The memo key of the prefix ending at `end`: the last 22 characters (132 bits) of its last entry's
 * signature. A lookup key only (the bytes are compared); short, as it is hashed on every look-up.
 */
function memoKey(lineage: string, end: number): string {
  return lineage.slice(Math.max(0, end - 22), end)
}

const NO_CREDENTIALS: readonly string[] = Object.freeze([])
const NO_APPROVALS: readonly VerifiedLineageApproval[] = Object.freeze([])

function credentialList(input: VerifyLineageOptions['credentials']): readonly string[] {
  if (input === undefined) return NO_CREDENTIALS
  const list = typeof input === 'string' ? (input === '' ? NO_CREDENTIALS : input.split(LINEAGE_SEPARATOR)) : input
  if (!Array.isArray(list) || !list.every((c) => typeof c === 'string')) throw new TypeError('verifyLineage: credentials must be a list of compact JWTs or their `~`-joined form')
  return list as string[]
}

/**
 * The standing of the first `m` entries' actors, just checked in full at actors version `version`: the
 * intersection of their credentials' windows. Undefined when one is no longer known (nothing to stand
 * on) or the version moved during the checks (a status list fetched meanwhile).
 */
function actorsCheck(ctx: LineageContext, entries: readonly CustodyEntry[], agents: readonly VerifiedAgent[], m: number, version: number): ActorsCheck | undefined {
  if (ctx.actorsVersion() !== version) return undefined
  let from = Number.NEGATIVE_INFINITY
  let until = Number.POSITIVE_INFINITY
  for (let k = 0; k < m; k++) {
    const window = ctx.knownCredentialWindow(entries[k]!.claims.crd)
    if (window === undefined) return undefined
    if (window.from > from) from = window.from
    if (window.until < until) until = window.until
  }
  return Object.freeze({ version, from, until, agents: Object.freeze(agents.slice(0, m)) })
}

/**
 * Verifies a lineage (header form) for the call this service received. See `Verifier.verifyLineage`.
 */
export async function verifyLineageWith(ctx: LineageContext, lineage: unknown, options: VerifyLineageOptions): Promise<VerifiedLineage> {
  if (!isRecord(options) || typeof options.audience !== 'string' || options.audience === '') throw new TypeError('verifyLineage: options.audience is required')
  if (typeof options.command !== 'string' || options.command === '') throw new TypeError('verifyLineage: options.command is required')
  if (options.argsDigest !== undefined && (typeof options.argsDigest !== 'string' || options.args !== undefined)) throw new TypeError('verifyLineage: give args or argsDigest, not both')
  if (options.self !== undefined && typeof options.self !== 'string') throw new TypeError('verifyLineage: options.self must be a DID')
  const chains = options.delegationChains ?? []
  if (!Array.isArray(chains)) throw new TypeError('verifyLineage: delegationChains must be a list of chains')

  // Limits first: size, number and size of entries, before any decoding (characters: below).
  const ends = entryEnds(lineage, ctx.limits)
  const text = lineage as string
  const n = ends.length
  const suppliedCredentials = credentialList(options.credentials)
  if (suppliedCredentials.length > ctx.limits.maxEntries) lineageError('ERR_MALFORMED', null, 'too-many-credentials', `more than ${ctx.limits.maxEntries} credentials`)

  // The longest prefix verified before: the lineage starts with exactly its bytes. Its entries are
  // neither checked for characters, decoded, hashed nor verified again; custody resumes from its state.
  let start = 0
  // Exactly n entries: the memoized prefix's, then each new one as it is checked (no growth copies).
  const entries: CustodyEntry[] = new Array<CustodyEntry>(n)
  let cursor: CustodyCursor | undefined
  let knownViews: (VerifiedLineageHop | undefined)[] | undefined
  let resumed: PrefixMemo | undefined
  const nowMs = ctx.now()
  const t = nowMs / 1000
  const skew = ctx.clockSkewSec
  // Longest first, from the entry before the last: a whole lineage found in the memo was received
  // before, and its last hop is then a replay (refused below, after its signature is checked again).
  for (let k = n - 2; k >= 0; k--) {
    const end = ends[k]!
    const known = ctx.memo.get(memoKey(text, end))
    if (known === undefined || known.entries.length !== k + 1 || known.prefix.length !== end || text.slice(0, end) !== known.prefix || known.latestIat - skew > t) continue
    start = k + 1
    for (let i = 0; i <= k; i++) entries[i] = known.entries[i]!
    knownViews = known.views
    resumed = known
    cursor = new CustodyCursor(known.state)
    break
  }
  cursor ??= new CustodyCursor()
  const from = start === 0 ? 0 : ends[start - 1]! + 1
  if (start < n && !lineageChars(text, from)) {
    lineageError('ERR_MALFORMED', null, 'charset', 'holds characters other than base64url, "." and "~" (two headers joined?)')
  }

  // Custody after all but the last entry: memoized too, for the next call of the same workflow with another last hop.
  let beforeLast: CustodyState | undefined
  // The latest iat of the entries so far, and of all but the last (see PrefixMemo.latestIat).
  let latestIat = resumed === undefined ? Number.NEGATIVE_INFINITY : resumed.latestIat
  let latestBeforeLast = latestIat
  for (let k = start; k < n; k++) {
    // Its characters were checked above (lineageChars), not again per segment.
    const entry = decodeEntry(text.slice(k === 0 ? 0 : ends[k - 1]! + 1, ends[k]), k, ctx.limits.maxEntryBytes, true)
    if (k === n - 1 && k > start) beforeLast = cursor.snapshot()
    // Custody before the signature: a splice or a signer without custody is refused without crypto.
    cursor.step(entry)
    if (!verifySignatureSync(ctx, entry)) await verifySignature(ctx, entry)
    const c = entry.claims
    if (c.iat - skew > t) lineageError('ERR_NOT_YET_VALID', k, 'issued-in-the-future', 'iat is in the future', { iat: c.iat })
    const previous = entries[k - 1]
    if (previous !== undefined && c.iat + skew < previous.claims.iat) lineageError('ERR_LINEAGE_BROKEN', k, 'time-order', 'issued before the entry it follows')
    if (k === n - 1) latestBeforeLast = latestIat
    if (c.iat > latestIat) latestIat = c.iat
    // Kept without its signature bytes (a view into a shared 8 KiB buffer, which a memoized prefix
    // would hold on to) and its signing input.
    entries[k] = entry.kind === 'hop' ? { kind: 'hop', index: k, hash: entry.hash, claims: entry.claims } : { kind: 'receipt', index: k, hash: entry.hash, claims: entry.claims }
  }
  // Memoized, each once with its final state only: the prefix before the last entry (the next call of
  // the workflow may end with another hop), and the whole lineage unless nothing may follow it (its
  // last hop names no callee: custody refuses any next entry).
  if (start < n) {
    if (beforeLast !== undefined) ctx.memo.set(memoKey(text, ends[n - 2]!), { prefix: text.slice(0, ends[n - 2]), entries: Object.freeze(entries.slice(0, n - 1)), state: beforeLast, latestIat: latestBeforeLast, views: [], actors: undefined })
    if (cursor.currentHolder !== '') ctx.memo.set(memoKey(text, ends[n - 1]!), { prefix: text, entries: Object.freeze(entries.slice()), state: cursor.snapshot(), latestIat, views: [], actors: undefined })
  }

  // The last entry is the call this service received: exactly this target, command and arguments, fresh.
  const last = entries[n - 1]!
  if (last.kind !== 'hop') lineageError('ERR_LINEAGE_MISMATCH', n - 1, 'not-a-call', 'the last entry is a receipt, not a call to this service')
  const hop = last.claims
  if (hop.aud !== options.audience) lineageError('ERR_AUDIENCE_MISMATCH', n - 1, 'audience', 'the last hop targets another service', { aud: hop.aud })
  if (options.self !== undefined && hop.sub !== options.self) lineageError('ERR_LINEAGE_MISMATCH', n - 1, 'callee', 'the last hop names another agent as its callee', { sub: hop.sub ?? null })
  if (hop.cmd !== options.command) lineageError('ERR_LINEAGE_MISMATCH', n - 1, 'command', 'the last hop was signed for another command', { cmd: hop.cmd })
  let digest: string
  if (options.argsDigest !== undefined) digest = options.argsDigest
  else {
    try {
      digest = argsDigest(options.args)
    } catch (cause) {
      return lineageError('ERR_MALFORMED', n - 1, 'arguments', 'the arguments received are not a JSON value of bounded depth', {}, cause)
    }
  }
  if (hop.arg !== digest) lineageError('ERR_LINEAGE_MISMATCH', n - 1, 'arguments', 'the last hop was signed for other arguments')
  if (hop.exp + skew <= t) lineageError('ERR_EXPIRED', n - 1, 'expired', 'the last hop has expired', { exp: hop.exp })
  if (t - hop.iat > ctx.maxAgeSec + skew) lineageError('ERR_EXPIRED', n - 1, 'too-old', 'the last hop was issued too long ago', { iat: hop.iat, maxAgeSec: ctx.maxAgeSec })

  // Every actor's identity credential, on every call: valid now, not revoked (status lists, cached TTL).
  // A resumed prefix whose actors were checked in full at this actors version, the clock still inside
  // the window that check holds for, gives the same answers again: its entries are not checked anew.
  const version = ctx.actorsVersion()
  const agents: VerifiedAgent[] = new Array<VerifiedAgent>(n)
  const standing = resumed?.actors
  let firstChecked = 0
  if (standing !== undefined && standing.version === version && nowMs >= standing.from && nowMs < standing.until) {
    for (let k = 0; k < start; k++) agents[k] = standing.agents[k]!
    firstChecked = start
  }
  let supplied: Map<string, string> | undefined
  for (let k = firstChecked; k < n; k++) {
    const entry = entries[k]!
    const c = entry.claims
    // An actor already checked in this call (the same credential acting again): not checked twice.
    let agent: VerifiedAgent | undefined
    for (let j = firstChecked; j < k; j++) {
      if (entries[j]!.claims.crd === c.crd) {
        agent = agents[j]
        break
      }
    }
    if (agent === undefined) {
      try {
        // Known and its status list fresh: no promise. Else its list is fetched, or it is verified from what was sent.
        const now = ctx.knownCredentialSync(c.crd)
        agent = now === 'fetch' ? await ctx.knownCredential(c.crd) : now === 'unknown' ? undefined : now
        if (agent === undefined) {
          // An empty item (`a~~b`, a stray `~`) is no credential: skipped, not hashed (credentialHash throws).
          supplied ??= new Map(suppliedCredentials.filter((jwt) => jwt !== '').map((jwt) => [credentialHash(jwt), jwt]))
          const jwt = supplied.get(c.crd)
          if (jwt === undefined) lineageError('ERR_LINEAGE_CREDENTIAL_MISSING', entry.index, 'credential-missing', 'the actor\'s identity credential was not sent and is not known here', { actor: c.iss })
          agent = await ctx.verifyAgentCredential(jwt)
        }
      } catch (error) {
        if (error instanceof VerificationError && error.details.reason === 'credential-missing') throw error
        named(error, entry.index, 'actor-credential', { actor: c.iss })
      }
    }
    if (agent.did !== c.iss) lineageError('ERR_KEY_MISMATCH', entry.index, 'credential-subject', 'the credential referenced names another agent than the signer', { actor: c.iss })
    if (agent.status.statusListCredential !== c.sts[0] || String(agent.status.statusListIndex) !== c.sts[1]) {
      lineageError('ERR_LINEAGE_BROKEN', entry.index, 'status-entry', 'the status entry is not the credential\'s')
    }
    agents[k] = agent
  }
  // Checked in full for a resumed prefix: what later calls of the workflow may stand on.
  if (resumed !== undefined && firstChecked === 0) resumed.actors = actorsCheck(ctx, entries, agents, start, version)

  // Delegated authority, when chains are given: each chain verified for its hop, and only narrowing along the lineage.
  // Maps allocated only when there is something to put in them (most calls have neither).
  const delegations = chains.length > 0 ? new Map<number, VerifiedDelegation>() : undefined
  if (delegations !== undefined) {
    const byHash = new Map<string, readonly string[]>()
    for (const chain of chains) byHash.set(delegationHash(chain), chain)
    let previousChain: readonly string[] | undefined
    // The first hop naming a chain that was not given: no later hop's chain can be shown to narrow it (the
    // caller chose which chains to send, and may leave out the narrow one a wider chain would not extend).
    let missing: number | undefined
    for (const entry of entries) {
      if (entry.kind !== 'hop' || entry.claims.dlg === undefined) continue
      const chain = byHash.get(entry.claims.dlg)
      if (chain === undefined) {
        missing ??= entry.index
        continue
      }
      if (missing !== undefined) {
        lineageError('ERR_DELEGATION_ESCALATION', missing, 'delegation-missing', 'the hop relies on a delegation chain that was not given, so a later hop\'s chain cannot be shown to narrow it')
      }
      const request = options.delegationRequest ? options.delegationRequest(entry.claims) : { resource: entry.claims.aud, action: 'invoke' }
      try {
        delegations.set(entry.index, await ctx.verifyDelegation(chain, { invoker: entry.claims.iss, resource: request.resource, action: request.action, audience: entry.claims.aud }))
      } catch (error) {
        named(error, entry.index, 'delegation', { actor: entry.claims.iss })
      }
      if (previousChain !== undefined && (chain.length < previousChain.length || !previousChain.every((link, i) => chain[i] === link))) {
        lineageError('ERR_DELEGATION_ESCALATION', entry.index, 'delegation-not-narrowing', 'the chain does not extend the chain of an earlier hop (authority may only narrow)')
      }
      previousChain = chain
    }
  }

  // Approvals the hops act on: each receipt verified for its hop (not consumed here).
  const hopsWithApproval = options.approvals === undefined ? [] : entries.filter((e) => e.kind === 'hop' && e.claims.apr !== undefined)
  const approvals = hopsWithApproval.length > 0 ? new Map<number, VerifiedApproval>() : undefined
  if (options.approvals !== undefined && approvals !== undefined) {
    if (!Array.isArray(options.approvals) || options.approvals.length > 16) throw new TypeError('verifyLineage: approvals must be a list of at most 16 receipts')
    const byDigest = new Map<string, unknown>()
    for (const r of options.approvals) {
      try {
        byDigest.set(argsDigest(typeof r === 'string' ? JSON.parse(r) : r), r)
      } catch {
        // Not JSON: it matches no hop.
      }
    }
    for (const entry of hopsWithApproval) {
      if (entry.kind !== 'hop') continue
      const h = entry.claims
      const receipt = byDigest.get(h.apr!)
      if (receipt === undefined) {
        // The call received is backed by its receipt; an earlier approval is then only claimed (not approved).
        if (entry.index === n - 1) lineageError('ERR_APPROVAL_MISMATCH', entry.index, 'approval-missing', 'the hop names an approval whose receipt was not sent')
        continue
      }
      try {
        approvals.set(entry.index, await ctx.verifyApproval(receipt, {
          // The controller is the one the actor's verified credential names, never the receipt's say-so.
          call: { agent: h.iss, controller: agents[entry.index]!.claims.controller, target: h.aud, command: h.cmd, argumentsDigest: `sha-256:${h.arg}`, transactionId: h.txn },
          consume: false,
        }))
      } catch (error) {
        named(error, entry.index, 'approval', { actor: h.iss })
      }
      // The user the approval was given for (its call names them) is the one the hop acts for, when both name one.
      const approvedFor = approvals.get(entry.index)!.call.user
      if (h.usr !== undefined && approvedFor !== null && approvedFor.id !== h.usr) {
        lineageError('ERR_APPROVAL_MISMATCH', entry.index, 'approval-user', 'the approval was given for another user than the hop acts for')
      }
    }
  }

  // Last: single use of the last hop (only lineages that passed every other check are recorded).
  let fresh: boolean
  try {
    const stored = ctx.replayCache.checkAndStore(`lineage ${hop.iss} ${hop.jti}`, Math.ceil((Math.min(hop.exp, hop.iat + ctx.maxAgeSec) + skew) * 1000) + 1000)
    fresh = typeof stored === 'boolean' ? stored : await stored
  } catch (cause) {
    return lineageError('ERR_REPLAY', n - 1, 'replay-cache', 'the replay cache failed; refusing rather than risk a replay', {}, cause)
  }
  if (fresh !== true) lineageError('ERR_REPLAY', n - 1, 'replay', 'this call was already accepted once', { jti: hop.jti })

  const verified = entries.map((entry): VerifiedLineageHop | VerifiedLineageReceipt => {
    const c = entry.claims
    const actor = agents[entry.index]!
    if (entry.kind === 'receipt') {
      const answered = entries.find((e) => e.hash === entry.claims.hop)!
      return Object.freeze({ kind: 'receipt', index: entry.index, actor, answers: answered.index, outputDigest: entry.claims.out, outcome: entry.claims.res, issuedAt: c.iat, expiresAt: c.exp, id: c.jti, hash: entry.hash })
    }
    const h = entry.claims
    // A hop of the memoized prefix: its view is a function of its bytes and its actor alone unless it
    // carries a delegation or an approval (verified per call); reused when the actor is the same.
    const reuse = knownViews !== undefined && entry.index < start && h.dlg === undefined && h.apr === undefined
    if (reuse) {
      const view = knownViews![entry.index]
      if (view !== undefined && view.actor === actor) return view
    }
    const view: VerifiedLineageHop = Object.freeze({
      kind: 'hop',
      index: entry.index,
      actor,
      target: h.aud,
      callee: h.sub ?? null,
      command: h.cmd,
      argsDigest: h.arg,
      issuedAt: h.iat,
      expiresAt: h.exp,
      id: h.jti,
      hash: entry.hash,
      user: h.usr ?? null,
      delegation: h.dlg === undefined ? null : Object.freeze({ hash: h.dlg, chain: delegations?.get(entry.index) ?? null }),
      approval: h.apr === undefined ? null : Object.freeze({ digest: h.apr, verified: approvals?.get(entry.index) ?? null }),
      approved: approvals?.has(entry.index) ?? false,
    })
    if (reuse) knownViews![entry.index] = view
    return view
  })
  // Without receipts the entries are the hops (one frozen list for both); approvals only when some verified.
  const hops = verified.every((e) => e.kind === 'hop') ? Object.freeze(verified as VerifiedLineageHop[]) : Object.freeze(verified.filter((e): e is VerifiedLineageHop => e.kind === 'hop'))
  const approved = approvals === undefined || approvals.size === 0 ? NO_APPROVALS : Object.freeze(hops.filter((h) => h.approved).map((h) => Object.freeze({ hop: h.index, actor: h.actor.did, target: h.target, command: h.command, approval: approvals.get(h.index)! })))
  const first = entries[0]!
  return Object.freeze({
    transactionId: first.claims.txn,
    origin: Object.freeze({ digest: first.claims.prv, kind: first.kind === 'hop' ? (first.claims.ori ?? null) : null }),
    user: cursor.currentUser,
    entries: Object.isFrozen(verified) ? verified : Object.freeze(verified),
    hops,
    last: hops[hops.length - 1]!,
    approvals: approved,
    lineage: lineage as string,
  })
}
