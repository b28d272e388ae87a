import type { Command } from 'commander'
import { assertEd25519PublicKey, parseDidKeySyntax, publicKeyFromRaw, verifyJwsSignature, VerificationError } from '@agentid/core'
import { custodyStep, decodeEntry, initialCustody, splitLineage, type CustodyState, type DecodedEntry } from '@agentid/lineage'
import { emit, type Context } from '../context.js'
import { ExitStatus } from '../errors.js'
import { clean } from '../output.js'

/** One entry as `lineage inspect` reports it. */
interface InspectedEntry {
  index: number
  kind: 'hop' | 'receipt' | null
  actor: string | null
  target: string | null
  callee: string | null
  command: string | null
  argsDigest: string | null
  answers: number | null
  outcome: string | null
  outputDigest: string | null
  user: string | null
  issuedAt: string | null
  expiresAt: string | null
  /** `ok`, `expired` (signature and custody fine, past `exp`), `refused` (see error) or `not-checked` (after a refusal). */
  verdict: 'ok' | 'expired' | 'refused' | 'not-checked'
  error: { code: string; reason: string | null; message: string } | null
  /** Calls open around this entry (for the tree). */
  depth: number
}

interface Inspection {
  transactionId: string | null
  origin: { digest: string; kind: string | null } | null
  valid: boolean
  checked: string
  entries: InspectedEntry[]
}

const CHECKED = 'structure, signatures by the actors\' DIDs, linkage and custody, time; not the identity credentials nor revocation (a service\'s verifier checks those)'

function iso(sec: number): string {
  return new Date(sec * 1000).toISOString().replace('.000Z', 'Z')
}

function errorOf(error: unknown): InspectedEntry['error'] {
  if (error instanceof VerificationError) return { code: error.code, reason: typeof error.details.reason === 'string' ? error.details.reason : null, message: error.message }
  throw error
}

/** Inspects a lineage offline. Exported for tests. */
export function inspectLineage(input: string, nowSec: number): Inspection {
  const tokens = splitLineage(input.trim())
  let state: CustodyState = initialCustody()
  let broken = false
  const entries: InspectedEntry[] = []
  let first: DecodedEntry | undefined
  tokens.forEach((token, index) => {
    const blank: InspectedEntry = { index, kind: null, actor: null, target: null, callee: null, command: null, argsDigest: null, answers: null, outcome: null, outputDigest: null, user: null, issuedAt: null, expiresAt: null, verdict: 'not-checked', error: null, depth: state.open.length }
    let entry: DecodedEntry
    try {
      entry = decodeEntry(token, index)
    } catch (error) {
      entries.push({ ...blank, verdict: broken ? 'not-checked' : 'refused', error: errorOf(error) })
      broken = true
      return
    }
    first ??= entry
    const c = entry.claims
    const depth = entry.kind === 'receipt' ? Math.max(0, state.open.length - 1) : state.open.length
    const shown: InspectedEntry = {
      ...blank,
      depth,
      kind: entry.kind,
      actor: c.iss,
      issuedAt: iso(c.iat),
      expiresAt: iso(c.exp),
      ...(entry.kind === 'hop'
        ? { target: entry.claims.aud, callee: entry.claims.sub ?? null, command: entry.claims.cmd, argsDigest: entry.claims.arg, user: entry.claims.usr ?? null }
        : { answers: state.open[state.open.length - 1]?.hash === entry.claims.hop ? state.open[state.open.length - 1]!.index : null, outcome: entry.claims.res, outputDigest: entry.claims.out }),
    }
    if (broken) {
      entries.push(shown)
      return
    }
    try {
      state = custodyStep(state, entry)
      const { publicKey, keyId } = parseDidKeySyntax(c.iss)
      // A kid must name the signer's own key (in full or as its fragment), as the verifier's key selection requires.
      const kid = entry.header.kid
      if (kid !== undefined && kid !== keyId && kid !== keyId.slice(c.iss.length)) {
        throw new VerificationError('ERR_KEY_MISMATCH', 'the JWS header kid names another key than the actor\'s DID key', { details: { hop: index, reason: 'signer-key' } })
      }
      try {
        verifyJwsSignature(entry, publicKeyFromRaw(publicKey))
        // As the verifier does after a signature verifies: a key of small order (or not canonical)
        // verifies signatures anyone can make.
        assertEd25519PublicKey(publicKey, { signatureVerified: true })
      } catch (cause) {
        throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature does not verify under the actor\'s DID key', { details: { hop: index, reason: 'signature' }, cause })
      }
      entries.push({ ...shown, verdict: c.exp <= nowSec ? 'expired' : 'ok' })
    } catch (error) {
      entries.push({ ...shown, verdict: 'refused', error: errorOf(error) })
      broken = true
    }
  })
  return {
    transactionId: first?.claims.txn ?? null,
    origin: first ? { digest: first.claims.prv, kind: first.kind === 'hop' ? (first.claims.ori ?? null) : null } : null,
    valid: !broken,
    checked: CHECKED,
    entries,
  }
}

function short(did: string | null): string {
  if (did === null) return '-'
  return did.length > 28 ? `${did.slice(0, 20)}…${did.slice(-6)}` : did
}

function render(result: Inspection): string {
  const lines = [`lineage ${clean(result.transactionId ?? '?')}: ${result.entries.length} entries, ${result.valid ? 'holds together' : 'REFUSED'}`]
  if (result.origin) lines.push(`origin  ${result.origin.kind ?? 'unnamed'} sha256:${result.origin.digest}`)
  result.entries.forEach((e, i) => {
    const last = i === result.entries.length - 1
    const pad = '  '.repeat(e.depth)
    const branch = `${pad}${last ? '└─' : '├─'}`
    const more = `${pad}${last ? '  ' : '│ '}    `
    const verdict = e.error ? `${e.verdict} ${e.error.code}${e.error.reason ? ` (${e.error.reason})` : ''}` : e.verdict
    if (e.kind === 'hop') {
      lines.push(`${branch} #${e.index} ${short(e.actor)} → ${clean(e.target!)}${e.callee ? ` (agent ${short(e.callee)})` : ''}  [${verdict}]`)
      lines.push(`${more}${clean(e.command!)}  args sha256:${e.argsDigest}${e.user ? `  for ${clean(e.user)}` : ''}  at ${e.issuedAt} until ${e.expiresAt}`)
    } else if (e.kind === 'receipt') {
      lines.push(`${branch} #${e.index} receipt by ${short(e.actor)} for #${e.answers ?? '?'}: ${clean(e.outcome!)}  [${verdict}]`)
      lines.push(`${more}output sha256:${e.outputDigest}  at ${e.issuedAt}`)
    } else {
      lines.push(`${branch} #${e.index} unreadable  [${verdict}]`)
    }
    if (e.error) lines.push(`${more}${clean(e.error.message)}`)
  })
  lines.push(`checked: ${CHECKED}`)
  return lines.join('\n') + '\n'
}

/** `agentid lineage inspect <lineage|->`. */
export function registerLineage(program: Command, ctx: Context): void {
  const lineage = program.command('lineage').description('chains of custody (Agentid-Lineage): inspect them offline')
  lineage
    .command('inspect')
    .argument('<lineage|->', 'a lineage in header form (entries joined by ~), or - to read it from standard input')
    .option('--json', 'print JSON')
    .description('print the hops and receipts of a lineage as a tree: actor, target, command, time, verdict per entry')
    .addHelpText('after', `
Checks the structure, each signature by its actor's DID key, the linkage and custody rules, and the
time; not the identity credentials nor revocation (a service's verifier does). Exit code 1 when an
entry is refused; entries after it are shown but not checked.`)
    .action(async (input: string, options: { json?: boolean }) => {
      const text = input === '-' ? await ctx.io.readStdin!() : input
      const result = inspectLineage(text, Math.floor(Date.now() / 1000))
      emit(ctx, options, result, () => render(result))
      if (!result.valid) throw new ExitStatus(1)
    })
}
