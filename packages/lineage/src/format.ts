// The lineage wire format: entries (hops and receipts), each a compact EdDSA JWS, joined by '~'.
// Decoding here is structural only (limits, strict JSON, claim shapes); signatures, credentials, time
// and replay are the verifier's (`verifier.verifyLineage`).
import { createHash, hash } from 'node:crypto'
import { decodeCompactJwsSegments, decodeUtf8Strict, parseStrictJsonObject, VerificationError, type JwsHeader } from '@agentid/core'
import { scanEntryClaims } from './claims-scan.js'
import { isWellFormedDid } from './dids.js'

/** JWS `typ` of a hop record (a call from one agent to a target). */
export const HOP_TYP = 'agentid-hop+jwt'
/** JWS `typ` of a receipt (the callee's signed answer to a hop). */
export const RECEIPT_TYP = 'agentid-receipt+jwt'
/** HTTP header carrying a lineage (request: the lineage of this call; response: the callee's record, ending with its receipt). */
export const LINEAGE_HEADER = 'agentid-lineage'
/** HTTP header carrying the identity credentials (compact JWTs joined by `~`) of the lineage's actors. */
export const CREDENTIALS_HEADER = 'agentid-credentials'
/** MCP `_meta` key of a `tools/call` (or any request) carrying the lineage, in header form. */
export const MCP_LINEAGE_META = 'io.agentid/lineage'
/** MCP `_meta` key carrying the actors' identity credentials, in header form (`~`-joined). */
export const MCP_CREDENTIALS_META = 'io.agentid/credentials'
/** HTTP header a call retried after a human approval carries the approver's receipt in (base64url of its JSON). */
export const APPROVAL_HEADER = 'agentid-approval'
/** MCP `_meta` key a retried `tools/call` carries the approver's receipt under (the receipt object or its JSON). */
export const APPROVAL_META_KEY = 'io.agentid/approval'
/** Separator of the entries of a lineage (and of credentials): never in base64url or a JWS, never added by HTTP header folding. */
export const LINEAGE_SEPARATOR = '~'
/** Longest lifetime (`exp - iat`) of an entry, in seconds. */
export const MAX_ENTRY_LIFETIME_SEC = 300
/** Lifetime given to new entries unless asked otherwise, in seconds. */
export const DEFAULT_ENTRY_TTL_SEC = 60

/** Limits checked before any parsing. */
export interface LineageLimits {
  /** Most entries (hops and receipts). Default 16. */
  maxEntries: number
  /** Largest lineage in header form, in bytes. Default 16,384 (Node's default limit for all request headers together). */
  maxBytes: number
  /** Largest single entry, in bytes. Default 4,096 (a hop is about 900). */
  maxEntryBytes: number
}

export const DEFAULT_LINEAGE_LIMITS: Readonly<LineageLimits> = Object.freeze({ maxEntries: 16, maxBytes: 16_384, maxEntryBytes: 4_096 })

/** Claims every entry carries. */
export interface EntryClaims {
  /** Transaction id, the same in every entry of a lineage. */
  readonly txn: string
  /** Position of the entry in the lineage, from 0. */
  readonly idx: number
  /** SHA-256 (base64url) of the previous entry's compact JWS; for entry 0, of the originating request or grant. */
  readonly prv: string
  /** The signer: the acting agent's DID. */
  readonly iss: string
  /** SHA-256 (base64url) of the signer's identity credential (compact JWT bytes). */
  readonly crd: string
  /** That credential's status entry: `[statusListCredential, statusListIndex]`. */
  readonly sts: readonly [string, string]
  readonly iat: number
  readonly exp: number
  readonly jti: string
}

/** A hop: the signer calls `aud` (served by agent `sub`, when it is one) with command `cmd` and arguments digest `arg`. */
export interface HopClaims extends EntryClaims {
  /** The exact target: the service URL or `mcp://server/name`. */
  readonly aud: string
  /** The agent that serves the target (its DID): the only one who may sign the next entry. Absent: the lineage ends here. */
  readonly sub?: string
  /** The command: `METHOD /path` for HTTP, `tools/call name` (or `resources/read uri`, `prompts/get name`) for MCP. */
  readonly cmd: string
  /** SHA-256 (base64url) of the RFC 8785 (JCS) canonical arguments. */
  readonly arg: string
  /** SHA-256 (base64url) of the delegation chain the signer relies on (JCS of the list of link JWTs, root first). */
  readonly dlg?: string
  /** The user on whose behalf the transaction runs; once named, every later hop names the same. */
  readonly usr?: string
  /** Entry 0 only: what `prv` is the hash of (`request`, `grant`, `approval`, ...). */
  readonly ori?: string
  /**
   * The human approval this call acts on: SHA-256 (base64url) of the RFC 8785 form of the approval receipt
   * (`@agentid/verifier` `ApprovalReceipt`), which travels with the call (`_meta["io.agentid/approval"]`,
   * `Agentid-Approval`); `verifyLineage` checks it against this hop when given the receipts.
   */
  readonly apr?: string
}

/** A receipt: the callee of hop `hop` answered, with output digest `out` and outcome `res`. */
export interface ReceiptClaims extends EntryClaims {
  /** SHA-256 (base64url) of the hop answered (its compact JWS). */
  readonly hop: string
  /** SHA-256 (base64url) of the RFC 8785 canonical output. */
  readonly out: string
  /** Outcome: `ok`, `error`, `refused`, ... (lower case, at most 32 characters). */
  readonly res: string
}

/** One entry, decoded and shape-checked, not verified. */
export type DecodedEntry =
  | { readonly kind: 'hop'; readonly index: number; readonly token: string; readonly hash: string; readonly header: JwsHeader; readonly claims: HopClaims; readonly signingInput: string; readonly signature: Buffer }
  | { readonly kind: 'receipt'; readonly index: number; readonly token: string; readonly hash: string; readonly header: JwsHeader; readonly claims: ReceiptClaims; readonly signingInput: string; readonly signature: Buffer }

/**
 * A lineage failure: a VerificationError whose `details` name the entry (`hop`, its index, or null for
 * the lineage as a whole) and a stable `reason`.
 */
export function lineageError(code: VerificationError['code'], hop: number | null, reason: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerificationError(code, hop === null ? `lineage: ${message}` : `lineage entry ${hop}: ${message}`, { details: { ...extra, hop, reason }, cause })
}

const SHA256_B64URL = /^[A-Za-z0-9_-]{43}$/
const JTI = /^[A-Za-z0-9_-]{16,64}$/
const TXN = /^[A-Za-z0-9._:-]{8,128}$/
const ORI = /^[A-Za-z0-9._:-]{1,64}$/
const RES = /^[a-z][a-z0-9_-]{0,31}$/
// Control, bidi-override and isolate characters: refused in every text claim (logs, terminals, CLIs show them).
// eslint-disable-next-line no-control-regex
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const LINEAGE_CHARS = /^[A-Za-z0-9_.~-]+$/

const HOP_CLAIMS = new Set(['txn', 'idx', 'prv', 'iss', 'crd', 'sts', 'iat', 'exp', 'jti', 'aud', 'sub', 'cmd', 'arg', 'dlg', 'usr', 'ori', 'apr'])
const RECEIPT_CLAIMS = new Set(['txn', 'idx', 'prv', 'iss', 'crd', 'sts', 'iat', 'exp', 'jti', 'hop', 'out', 'res'])
const HEADER_MEMBERS = new Set(['alg', 'typ', 'kid'])
// Headers whose members were found allowed: core returns one frozen object per header text.
const CHECKED_HEADERS = new WeakSet<object>()

/** SHA-256 of bytes or UTF-8 text, base64url (43 characters). */
export function sha256(data: string | Uint8Array): string {
  return hash('sha256', data, 'base64url') // one native call, no Hash object; text as UTF-8, as before
}

/**
 * The hash an entry is named by: SHA-256 (base64url) of its compact JWS, the exact bytes signed and sent.
 * @example
 * entryHash(lineage.split('~').at(-1)!) // the next entry's `prv`
 */
export function entryHash(entry: string): string {
  // An entry is ASCII (base64url and dots), whose UTF-8 bytes are its latin1 bytes: hashed in one
  // native call. Anything else keeps the latin1 reading it always had.
  if (Buffer.byteLength(entry, 'utf8') === entry.length) return hash('sha256', entry, 'base64url')
  return createHash('sha256').update(entry, 'latin1').digest('base64url')
}

/**
 * SHA-256 (base64url) of an identity credential's compact JWT: the `crd` of the entries its agent signs.
 * @example
 * credentialHash(credentialJwt) // 43 characters
 */
export function credentialHash(credential: string): string {
  if (typeof credential !== 'string' || credential === '') throw new TypeError('credentialHash: a compact JWT is required')
  return hash('sha256', credential, 'base64url')
}

/**
 * SHA-256 (base64url) of a delegation chain: of the RFC 8785 JSON array of its link JWTs, root first.
 * @example
 * delegationHash(chain) // the `dlg` of a hop that relies on `chain`
 */
export function delegationHash(chain: readonly string[]): string {
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every((l) => typeof l === 'string' && l !== '')) throw new TypeError('delegationHash: a non-empty list of link JWTs is required')
  return sha256(JSON.stringify(chain)) // an array of base64url/dot strings: JSON.stringify is its JCS form
}

function shapeError(hop: number, claim: string, message: string): never {
  lineageError('ERR_MALFORMED', hop, 'claims', `${claim} ${message}`, { claim })
}

function text(value: unknown, hop: number, claim: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) shapeError(hop, claim, `must be a string of 1 to ${max} characters`)
  if (UNSAFE_TEXT.test(value)) shapeError(hop, claim, 'holds control, bidi or unpaired surrogate characters')
  return value
}

function pattern(value: unknown, hop: number, claim: string, re: RegExp, what: string): string {
  if (typeof value !== 'string' || !re.test(value)) shapeError(hop, claim, `must be ${what}`)
  return value
}

function did(value: unknown, hop: number, claim: string): string {
  if (!isWellFormedDid(value)) shapeError(hop, claim, 'must be an Ed25519 did:key')
  return value
}

function seconds(value: unknown, hop: number, claim: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) shapeError(hop, claim, 'must be a NumericDate in whole seconds')
  return value
}

function commonClaims(p: Record<string, unknown>, hop: number, allowed: ReadonlySet<string>): EntryClaims {
  for (const key of Object.keys(p)) if (!allowed.has(key)) shapeError(hop, key, 'is not a claim of this entry type')
  const idx = p.idx
  if (typeof idx !== 'number' || !Number.isSafeInteger(idx) || idx < 0) shapeError(hop, 'idx', 'must be a non-negative integer')
  const sts = p.sts
  if (!Array.isArray(sts) || sts.length !== 2) shapeError(hop, 'sts', 'must be [statusListCredential, statusListIndex]')
  const url = text(sts[0], hop, 'sts[0]', 2048)
  if (!/^https?:\/\/\S+$/.test(url)) shapeError(hop, 'sts[0]', 'must be an http(s) URL')
  const index = pattern(sts[1], hop, 'sts[1]', /^(0|[1-9][0-9]{0,9})$/, 'a status list index (decimal digits)')
  const iat = seconds(p.iat, hop, 'iat')
  const exp = seconds(p.exp, hop, 'exp')
  if (exp <= iat || exp - iat > MAX_ENTRY_LIFETIME_SEC) shapeError(hop, 'exp', `must be 1 to ${MAX_ENTRY_LIFETIME_SEC} s after iat`)
  return {
    txn: pattern(p.txn, hop, 'txn', TXN, '8 to 128 characters of [A-Za-z0-9._:-]'),
    idx,
    prv: pattern(p.prv, hop, 'prv', SHA256_B64URL, 'a base64url SHA-256'),
    iss: did(p.iss, hop, 'iss'),
    crd: pattern(p.crd, hop, 'crd', SHA256_B64URL, 'a base64url SHA-256'),
    sts: [url, index],
    iat,
    exp,
    jti: pattern(p.jti, hop, 'jti', JTI, '16 to 64 base64url characters'),
  }
}

/** Checks the claims of a hop record; throws VerificationError ERR_MALFORMED naming the entry and claim. */
export function parseHopClaims(p: Record<string, unknown>, hop: number): HopClaims {
  const common = commonClaims(p, hop, HOP_CLAIMS)
  // Built member by member (no object spreads: this runs for every new entry a verifier sees), in the
  // order the spread form had: the common claims, aud, sub, cmd, arg, dlg, usr, ori, apr.
  const claims: { -readonly [K in keyof HopClaims]: HopClaims[K] } = common as { -readonly [K in keyof HopClaims]: HopClaims[K] }
  claims.aud = text(p.aud, hop, 'aud', 2048)
  if (p.sub !== undefined) claims.sub = did(p.sub, hop, 'sub')
  claims.cmd = text(p.cmd, hop, 'cmd', 2048)
  claims.arg = pattern(p.arg, hop, 'arg', SHA256_B64URL, 'a base64url SHA-256')
  if (p.dlg !== undefined) claims.dlg = pattern(p.dlg, hop, 'dlg', SHA256_B64URL, 'a base64url SHA-256')
  if (p.usr !== undefined) claims.usr = text(p.usr, hop, 'usr', 256)
  if (p.ori !== undefined) claims.ori = pattern(p.ori, hop, 'ori', ORI, '1 to 64 characters of [A-Za-z0-9._:-]')
  if (p.apr !== undefined) claims.apr = pattern(p.apr, hop, 'apr', SHA256_B64URL, 'a base64url SHA-256')
  return claims
}

/** Checks the claims of a receipt; throws VerificationError ERR_MALFORMED naming the entry and claim. */
export function parseReceiptClaims(p: Record<string, unknown>, hop: number): ReceiptClaims {
  const claims = commonClaims(p, hop, RECEIPT_CLAIMS) as { -readonly [K in keyof ReceiptClaims]: ReceiptClaims[K] }
  claims.hop = pattern(p.hop, hop, 'hop', SHA256_B64URL, 'a base64url SHA-256')
  claims.out = pattern(p.out, hop, 'out', SHA256_B64URL, 'a base64url SHA-256')
  claims.res = pattern(p.res, hop, 'res', RES, 'a lower-case outcome of at most 32 characters')
  return claims
}

/**
 * Splits a lineage in header form into its entries, checking the limits before anything else: its
 * size, its characters (base64url, `.` and `~` only), the number of entries and the size of each.
 * Throws VerificationError ERR_MALFORMED (`details.reason`: `too-large`, `charset`, `too-many-entries`,
 * `entry-too-large`, `empty-entry`).
 */
export function splitLineage(lineage: unknown, limits: Partial<LineageLimits> = {}): string[] {
  const { maxBytes, maxEntries, maxEntryBytes } = { ...DEFAULT_LINEAGE_LIMITS, ...limits }
  if (typeof lineage !== 'string' || lineage.length === 0) lineageError('ERR_MALFORMED', null, 'not-a-string', 'must be a non-empty string')
  if (lineage.length > maxBytes) lineageError('ERR_MALFORMED', null, 'too-large', `larger than ${maxBytes} bytes`, { maxBytes })
  if (!LINEAGE_CHARS.test(lineage)) lineageError('ERR_MALFORMED', null, 'charset', 'holds characters other than base64url, "." and "~" (two headers joined?)')
  const entries = lineage.split(LINEAGE_SEPARATOR)
  if (entries.length > maxEntries) lineageError('ERR_MALFORMED', null, 'too-many-entries', `more than ${maxEntries} entries`, { maxEntries, entries: entries.length })
  entries.forEach((entry, i) => {
    if (entry.length === 0) lineageError('ERR_MALFORMED', i, 'empty-entry', 'is empty')
    if (entry.length > maxEntryBytes) lineageError('ERR_MALFORMED', i, 'entry-too-large', `larger than ${maxEntryBytes} bytes`, { maxEntryBytes })
  })
  return entries
}

/** Joins entries (compact JWSs) into the header form. */
export function joinLineage(entries: readonly string[]): string {
  return entries.join(LINEAGE_SEPARATOR)
}

/**
 * Decodes one entry: strict compact JWS (EdDSA only, strict base64url, duplicate-free JSON nested at
 * most 3 deep, header members `alg`, `typ`, `kid` only), its `typ` (hop or receipt) and its claims.
 * Not verified. Throws VerificationError naming the entry. `charsChecked`: only for a caller that has
 * checked the token's characters (base64url and dots) already, as `splitLineage` does.
 */
export function decodeEntry(token: string, index: number, maxEntryBytes = DEFAULT_LINEAGE_LIMITS.maxEntryBytes, charsChecked = false): DecodedEntry {
  let jws
  try {
    // A header seen before is not parsed again (core keeps it). `charsChecked`: the caller checked the
    // lineage's characters (base64url, '.', '~': splitLineage, verifyLineage), not checked again per segment.
    jws = decodeCompactJwsSegments(token, maxEntryBytes, charsChecked)
  } catch (cause) {
    if (cause instanceof VerificationError) lineageError(cause.code, index, 'jws', cause.message, {}, cause)
    throw cause
  }
  const header = jws.header
  if (!CHECKED_HEADERS.has(header)) {
    for (const key of Object.keys(header)) if (!HEADER_MEMBERS.has(key)) lineageError('ERR_MALFORMED', index, 'jws', `JWS header member ${key} is not allowed`)
    CHECKED_HEADERS.add(header) // frozen, and shared by the entries with the same header text (core keeps it)
  }
  const typ = header.typ
  if (typ !== HOP_TYP && typ !== RECEIPT_TYP) lineageError('ERR_MALFORMED', index, 'typ', `typ must be ${HOP_TYP} or ${RECEIPT_TYP}`, { typ: typ ?? null })
  // The payload decoded into a reused buffer and read as latin1 text: what the one-pass reader
  // (claims-scan.ts) reads, since it accepts printable ASCII only (whose UTF-8 is its latin1). Anything
  // else goes the strict way: strict UTF-8 (invalid bytes refused, not turned into U+FFFD: two
  // payloads, one meaning), duplicate-free JSON nested at most 3 deep, then the claim checks.
  const segment = jws.payloadSegment
  const bytes = scratchOf(Math.ceil((segment.length * 3) / 4))
  const length = bytes.write(segment, 0, 'base64url')
  let claims = scanEntryClaims(bytes, length, bytes.toString('latin1', 0, length), typ === HOP_TYP)
  if (claims === undefined) {
    let payload: Record<string, unknown>
    try {
      payload = parseStrictJsonObject(decodeUtf8Strict(bytes.subarray(0, length), 'lineage entry'), { what: 'lineage entry', maxDepth: 3 })
    } catch (cause) {
      if (cause instanceof VerificationError) lineageError(cause.code, index, 'json', cause.message, cause.details, cause)
      throw cause
    }
    claims = typ === HOP_TYP ? parseHopClaims(payload, index) : parseReceiptClaims(payload, index)
  }
  // The token passed decoding: three base64url segments and two dots, ASCII, whose UTF-8 bytes are
  // its characters (entryHash's check, known here).
  const hash = sha256(token)
  return typ === HOP_TYP
    ? { kind: 'hop', index, token, hash, header, claims: claims as HopClaims, signingInput: jws.signingInput, signature: jws.signature }
    : { kind: 'receipt', index, token, hash, header, claims: claims as ReceiptClaims, signingInput: jws.signingInput, signature: jws.signature }
}

// One buffer for payloads decoded and read within one synchronous call (no Buffer per entry). Grows
// to the largest entry seen (at most its maxEntryBytes).
let scratch = Buffer.allocUnsafeSlow(4096)
function scratchOf(bytes: number): Buffer {
  if (scratch.length < bytes) scratch = Buffer.allocUnsafeSlow(Math.max(bytes, scratch.length * 2))
  return scratch
}

/**
 * Splits (with the limits) and decodes every entry of a lineage, and checks its custody (see
 * {@link custodyStep}). Nothing is verified: no signature, credential, time or replay check. For
 * display (`agentid lineage inspect`) and for building on a lineage; services call `verifier.verifyLineage`.
 * @example
 * const entries = decodeLineage(request.headers['agentid-lineage'])
 */
export function decodeLineage(lineage: unknown, limits: Partial<LineageLimits> = {}): DecodedEntry[] {
  const maxEntryBytes = limits.maxEntryBytes ?? DEFAULT_LINEAGE_LIMITS.maxEntryBytes
  const entries = splitLineage(lineage, limits).map((token, i) => decodeEntry(token, i, maxEntryBytes, true))
  let state = initialCustody()
  for (const entry of entries) state = custodyStep(state, entry)
  return entries
}

/** Where custody stands after some entries: who may sign the next one, and the calls still open. */
export interface CustodyState {
  readonly txn: string | null
  /** Index of the next entry. */
  readonly next: number
  /** Hash of the last entry (the next `prv`), null before entry 0. */
  readonly last: string | null
  /** Who may sign the next entry: null before entry 0 (any agent); `''` after a hop naming no callee (nothing may follow but nothing can answer it). */
  readonly holder: string | null
  /** Calls not yet answered by a receipt, innermost last. */
  readonly open: readonly { readonly hash: string; readonly index: number; readonly caller: string; readonly callee: string | null }[]
  /** The user named by the hops, once one names it. */
  readonly user: string | null
  readonly jtis: ReadonlySet<string>
}

export function initialCustody(): CustodyState {
  return { txn: null, next: 0, last: null, holder: null, open: [], user: null, jtis: new Set() }
}

type OpenCall = CustodyState['open'][number]

// Before entry 0, for cursors given no state (never written: a cursor copies what it changes).
const START: CustodyState = Object.freeze({ ...initialCustody(), open: Object.freeze([]) })

/** What the custody rules read of an entry: a {@link DecodedEntry}, or what a verifier keeps of one. */
export type CustodyEntry =
  | { readonly kind: 'hop'; readonly index: number; readonly hash: string; readonly claims: HopClaims }
  | { readonly kind: 'receipt'; readonly index: number; readonly hash: string; readonly claims: ReceiptClaims }

/**
 * The custody rules of {@link custodyStep}, applied in place entry after entry: no copy of the state
 * (its open calls, its set of `jti`s) at each step. For verifiers walking a lineage; `snapshot()`
 * gives an immutable {@link CustodyState} to keep. A step that throws leaves the cursor unchanged.
 * @example
 * const cursor = new CustodyCursor()
 * for (const entry of entries) cursor.step(entry) // throws VerificationError ERR_LINEAGE_BROKEN
 * const state = cursor.snapshot()
 */
export class CustodyCursor {
  private txn: string | null
  private next: number
  private last: string | null
  private holder: string | null
  // The open calls: the first `baseOpen` of those of the state started from (never written), then
  // those opened since; and the `jti`s of that state (a snapshot's own set) and those added since. So
  // resuming from a memoized prefix copies neither its open calls nor its set.
  private readonly baseOpenList: readonly OpenCall[]
  private baseOpen: number
  private readonly opened: OpenCall[] = []
  private user: string | null
  private readonly baseJtis: ReadonlySet<string>
  // The first `jti` added (most resumed walks add one), then a set for any later ones.
  private newJti: string | undefined
  private newJtis: Set<string> | undefined

  /** Starts from `state` (copied once), or before entry 0. */
  constructor(state: CustodyState = START) {
    this.txn = state.txn
    this.next = state.next
    this.last = state.last
    this.holder = state.holder
    this.baseOpenList = state.open
    this.baseOpen = state.open.length
    this.user = state.user
    this.baseJtis = state.jtis
  }

  /** Who may sign the next entry (see {@link CustodyState.holder}). */
  get currentHolder(): string | null {
    return this.holder
  }

  /** The user named by the hops so far, or null. */
  get currentUser(): string | null {
    return this.user
  }

  /** Applies the rules of {@link custodyStep} to `entry`; throws VerificationError ERR_LINEAGE_BROKEN naming it. */
  step(entry: CustodyEntry): void {
    const c = entry.claims
    const k = entry.index
    if (c.idx !== this.next || k !== this.next) lineageError('ERR_LINEAGE_BROKEN', k, 'index', `idx is ${c.idx}, expected ${this.next} (an entry dropped, added or moved)`, { idx: c.idx })
    if (this.txn !== null && c.txn !== this.txn) lineageError('ERR_LINEAGE_BROKEN', k, 'transaction', 'belongs to another transaction (spliced in)', { txn: c.txn })
    if (this.last !== null && c.prv !== this.last) lineageError('ERR_LINEAGE_BROKEN', k, 'previous-hash', 'prv is not the hash of the previous entry (dropped, reordered or spliced)')
    if (k > 0 && entry.kind === 'hop' && entry.claims.ori !== undefined) lineageError('ERR_LINEAGE_BROKEN', k, 'origin', 'only entry 0 names an origin')
    if (this.holder === '') lineageError('ERR_LINEAGE_BROKEN', k, 'no-callee', 'the previous hop named no agent (sub): nothing may follow it')
    if (this.holder !== null && c.iss !== this.holder) {
      lineageError('ERR_LINEAGE_BROKEN', k, 'signer-not-target', 'signed by an agent the previous entry did not hand custody to', { signer: c.iss, expected: this.holder })
    }
    if (this.baseJtis.has(c.jti) || c.jti === this.newJti || this.newJtis?.has(c.jti) === true) lineageError('ERR_LINEAGE_BROKEN', k, 'duplicate-jti', 'jti already used in this lineage (a cycle or a copy)')
    if (entry.kind === 'hop') {
      const h = entry.claims
      if (this.user !== null && h.usr !== this.user) lineageError('ERR_LINEAGE_BROKEN', k, 'user-changed', 'names another user than earlier hops (or drops it)', { usr: h.usr ?? null })
      this.holder = h.sub ?? ''
      this.opened.push({ hash: entry.hash, index: k, caller: h.iss, callee: h.sub ?? null })
      this.user = h.usr ?? this.user
    } else {
      const call = this.opened.length > 0 ? this.opened[this.opened.length - 1] : this.baseOpen > 0 ? this.baseOpenList[this.baseOpen - 1] : undefined
      if (call === undefined) lineageError('ERR_LINEAGE_BROKEN', k, 'receipt-without-call', 'a receipt with no open call to answer')
      if (entry.claims.hop !== call.hash) lineageError('ERR_LINEAGE_BROKEN', k, 'receipt-for-another-hop', 'answers another hop than the innermost open call', { call: call.index })
      if (call.callee === null || entry.claims.iss !== call.callee) lineageError('ERR_LINEAGE_BROKEN', k, 'receipt-signer', 'not signed by the callee of the hop it answers', { call: call.index })
      this.holder = call.caller
      if (this.opened.length > 0) this.opened.pop()
      else this.baseOpen--
    }
    if (this.newJti === undefined) this.newJti = c.jti
    else (this.newJtis ??= new Set()).add(c.jti)
    this.txn = c.txn
    this.next = k + 1
    this.last = entry.hash
  }

  /** The state reached, as an immutable value (its own copies of the open calls and `jti`s). */
  snapshot(): CustodyState {
    const jtis = new Set(this.baseJtis)
    if (this.newJti !== undefined) jtis.add(this.newJti)
    if (this.newJtis !== undefined) for (const jti of this.newJtis) jtis.add(jti)
    const open = Object.freeze([...this.baseOpenList.slice(0, this.baseOpen), ...this.opened])
    return Object.freeze({ txn: this.txn, next: this.next, last: this.last, holder: this.holder, open, user: this.user, jtis })
  }
}

/**
 * One step of the custody rules: entry k has index k, the transaction of entry 0, `prv` = hash of
 * entry k-1; its signer holds custody (entry 0: anyone; after a hop: the agent it named in `sub`;
 * after a receipt: the caller of the hop answered); a receipt answers the innermost open hop (its
 * `hop` is that hop's hash); a user, once named, is never changed or dropped; no `jti` twice.
 * Returns the new state; throws VerificationError ERR_LINEAGE_BROKEN naming the entry and the reason.
 * (A walk over many entries: {@link CustodyCursor}, which does not copy the state at each step.)
 */
export function custodyStep(state: CustodyState, entry: CustodyEntry): CustodyState {
  const cursor = new CustodyCursor(state)
  cursor.step(entry)
  return cursor.snapshot()
}
