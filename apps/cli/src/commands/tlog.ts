// `agentid witness keygen|serve` (C2SP tlog-witness) and `agentid audit verify|proof` (the issuer log).
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { dirname, resolve } from 'node:path'
import type { Command } from 'commander'
import { AgentIdError, VerificationError, lingerAfterAnswer, readBodyCapped, type StatusList } from '@agentid/core'
import {
  HASH_SIZE,
  MAX_ENTRY_BYTES,
  MAX_NOTE_BYTES,
  SIG_TYPE_COSIGNATURE_V1,
  TILE_WIDTH,
  addCheckpoint,
  checkWitnessPolicy,
  createCosigner,
  decodeEntryBundle,
  entriesPath,
  generateNoteKey,
  noteVerifier,
  openCheckpoint,
  parseSignerKey,
  parseTlogProof,
  tilePath,
  verifyTlogProof,
  type NoteVerifier,
  type WitnessRecord,
} from '@agentid/tlog'
import { fetchStatusList, type DidResolver } from '@agentid/verifier'
import { UsageError } from '../errors.js'
import type { Context } from '../context.js'
import { cliResolver } from '../resolver.js'
import { StatusLedger, describeMismatch, type NotCheckable, type StatusMismatch } from './audit-status.js'
import { FrontierTree, type ComputedTile } from './audit-tree.js'

const MAX_BODY = 64 * 1024

/**
 * Replaces `file` with `text` so that a crash leaves the old or the new content, and the new one is on
 * disk when this returns: the witness answers only after its state is persisted (C2SP tlog-witness), or
 * after a crash it could cosign, from an older size, a fork of a checkpoint it already cosigned. The
 * rename is durable only once the directory is synced too.
 */
export function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
  let dir: number
  try {
    dir = openSync(dirname(resolve(file)), 'r')
  } catch (error) {
    // A platform that cannot open a directory (Windows: EISDIR, EPERM) has no directory to sync.
    if (['EISDIR', 'EPERM', 'EACCES'].includes((error as NodeJS.ErrnoException).code ?? '')) return
    throw error
  }
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}

function pairs(values: readonly string[] | undefined, what: string): [string, string][] {
  const v = values ?? []
  if (v.length === 0 || v.length % 2 !== 0) throw new UsageError(`${what} takes pairs: <origin> <vkey>`)
  const out: [string, string][] = []
  for (let i = 0; i < v.length; i += 2) out.push([v[i]!, v[i + 1]!])
  return out
}

/**
 * The request body, or undefined as soon as it passes MAX_BODY (nothing more is kept; the handler's
 * 413 then closes the connection lingering, so a client still sending reads it).
 */
function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (c: Buffer) => {
      size += c.length
      if (size <= MAX_BODY) return void chunks.push(c)
      chunks.length = 0
      req.off('data', onData)
      resolve(undefined)
    }
    req.on('data', onData)
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export function registerTlog(program: Command, ctx: Context): void {
  const witness = program.command('witness').description('a C2SP tlog-witness: cosign checkpoints of logs it follows')
  witness
    .command('keygen <name>')
    .description('print a new witness signer key (keep it secret) and its vkey')
    .action((name: string) => {
      const { skey, vkey } = generateNoteKey(name, SIG_TYPE_COSIGNATURE_V1)
      ctx.io.stdout(`${skey}\n${vkey}\n`)
    })
  witness
    .command('serve')
    .description('serve POST /add-checkpoint (C2SP tlog-witness) for the given logs')
    .requiredOption('--key <file>', 'file holding the witness signer key (PRIVATE+KEY+name+id+base64, type 0x04)')
    .requiredOption('--log <origin-and-vkey...>', 'a log to follow: its origin and its vkey (repeatable)')
    .option('--state <file>', 'where the latest cosigned checkpoint of each log is kept', 'witness-state.json')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0: any free one)', '0')
    .action(async (options: { key: string; log: string[]; state: string; host: string; port: string }) => {
      const cosigner = createCosigner(parseSignerKey(readFileSync(options.key, 'utf8').trim()))
      // One log per origin, with every key given for it (--log twice for one origin: a key rotation).
      const keysOf = new Map<string, NoteVerifier[]>()
      for (const [origin, vkey] of pairs(options.log, '--log')) keysOf.set(origin, [...(keysOf.get(origin) ?? []), noteVerifier(vkey)])
      const logs = [...keysOf].map(([origin, keys]) => ({ origin, keys }))
      const state: Record<string, { size: number; rootHash: string; checkpoint: string }> = existsSync(options.state)
        ? (JSON.parse(readFileSync(options.state, 'utf8')) as Record<string, { size: number; rootHash: string; checkpoint: string }>)
        : {}
      const store = {
        get: (origin: string): WitnessRecord | undefined => {
          const r = Object.hasOwn(state, origin) ? state[origin] : undefined
          return r ? { size: r.size, rootHash: Buffer.from(r.rootHash, 'base64'), checkpoint: r.checkpoint } : undefined
        },
        put: (origin: string, r: WitnessRecord) => {
          state[origin] = { size: r.size, rootHash: Buffer.from(r.rootHash).toString('base64'), checkpoint: r.checkpoint }
          writeFileDurably(options.state, JSON.stringify(state)) // persisted before the answer
        },
      }
      const server = createServer(async (req, res) => {
        try {
          const path = (req.url ?? '').split('?')[0]
          if (path !== '/add-checkpoint') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
          if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST\n')
          if (Number(req.headers['content-length']) > MAX_BODY) {
            lingerAfterAnswer(res) // answered before the body: the rest is read and dropped within bounds
            return void res.writeHead(413, { 'content-type': 'text/plain' }).end('request too large\n')
          }
          const body = await readBody(req)
          if (!body) {
            lingerAfterAnswer(res) // a client still sending reads the 413 instead of a reset
            return void res.writeHead(413, { 'content-type': 'text/plain' }).end('request too large\n')
          }
          const answer = addCheckpoint(body, {
            cosigner,
            logs,
            store,
            onRefused: (origin, status, reason) => ctx.io.stderr(`witness: refused a checkpoint of ${origin} (${status}: ${reason})\n`),
          })
          res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body)
        } catch (error) {
          ctx.io.stderr(`witness: ${String(error)}\n`)
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n')
        }
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(Number(options.port), options.host, () => resolve())
      })
      const addr = server.address()
      const port = typeof addr === 'object' && addr ? addr.port : options.port
      ctx.io.stdout(`witness ${cosigner.name} listening on http://${options.host}:${port} vkey ${cosigner.vkey}\n`)
      await new Promise<void>((resolve) => {
        const stop = () => server.close(() => resolve())
        process.once('SIGTERM', stop)
        process.once('SIGINT', stop)
      })
    })

  const audit = program.command('audit').description('check the issuer log: every hash, checkpoint, cosignature and per-agent event sequence')
  audit
    .command('verify')
    .description('fetch the whole log over HTTP and verify it')
    .requiredOption('--log <url>', 'base URL of the issuer serving /log/…')
    .option('--log-key <vkey>', "the log's vkey (default: the one pinned in the state file, else fetched from <url>/log/key and pinned)")
    .option('--witness <vkey...>', 'trusted witness vkeys (type 0x04)')
    .option('--quorum <n>', 'how many of them must have cosigned the checkpoint', '0')
    .option('--state <file>', 'checkpoints seen before (kept between runs)', 'agentid-audit-state.json')
    .option('--issuer-did <did>', "the DID whose key must sign the status lists (default: the one pinned in the state file, else fetched from <url>/v1/issuer and pinned)")
    .option('--skip-status-lists', 'do not compare the status lists with the log (compared by default when entries name status entries)')
    .option('--max-entries <n>', 'refuse, before reading any entry, a checkpoint claiming more entries than this', String(DEFAULT_MAX_ENTRIES))
    .option('--json', 'print the result as JSON')
    .action(async (options: { log: string; logKey?: string; witness?: string[]; quorum: string; state: string; issuerDid?: string; skipStatusLists?: boolean; maxEntries?: string; json?: boolean }) => {
      const result = await auditVerify(options)
      ctx.io.stdout(options.json ? `${JSON.stringify(result)}\n` : `log ${result.origin}: ${result.size} entries verified, root ${result.root}, ${result.cosignatures} cosignatures, ${result.agents} agents checked; ${describeStatusCheck(result.status)}\n`)
    })
  audit
    .command('proof <credential>')
    .description("print and check a credential's tlog-proof")
    .requiredOption('--log <url>', 'base URL of the issuer')
    .option('--log-key <vkey>', "the log's vkey (default: fetched from <url>/log/key)")
    .option('--witness <vkey...>', 'trusted witness vkeys')
    .option('--quorum <n>', 'witness cosignatures required', '0')
    .action(async (credential: string, options: { log: string; logKey?: string; witness?: string[]; quorum: string }) => {
      const { text, index, size, cosignatures } = await auditProof(credential, options)
      ctx.io.stdout(text)
      ctx.io.stderr(`agentid: proof verified: entry ${index} in checkpoint of size ${size}, ${cosignatures} witness cosignatures\n`)
    })
}

/** The entries that issue a credential: a tlog-proof of any other entry naming it proves no issuance. */
const ISSUING_ACTIONS = new Set(['agent.spawned', 'agent.renewed'])

/**
 * `agentid audit proof`: the credential's tlog-proof from the log, verified (log signature, witness quorum
 * with cosignatures not from the future, inclusion), and its entry the spawn or renewal that issued it.
 */
export async function auditProof(credential: string, options: { log: string; logKey?: string; witness?: string[]; quorum: string }) {
  const base = options.log.replace(/\/+$/, '')
  const vkey = options.logKey ?? (await fetchText(`${base}/log/key`, MAX_KEY_BYTES)).trim()
  const policy = witnessPolicy(vkey, options)
  const text = await fetchText(`${base}/v1/log/proof?credential=${encodeURIComponent(credential)}`, MAX_PROOF_BYTES)
  const p = parseTlogProof(text)
  if (!p.extra) throw new VerificationError('ERR_MALFORMED', 'the proof carries no entry')
  const verified = verifyTlogProof(text, { entry: p.extra, ...policy, now: Math.floor(Date.now() / 1000) })
  let entry: { action?: unknown; details?: { credentialId?: unknown } }
  try {
    entry = JSON.parse(Buffer.from(p.extra).toString('utf8')) as typeof entry
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', 'the logged entry is not JSON', { cause })
  }
  if (entry?.details?.credentialId !== credential) throw new VerificationError('ERR_MALFORMED', 'the logged entry is not about this credential')
  if (typeof entry.action !== 'string' || !ISSUING_ACTIONS.has(entry.action)) throw new VerificationError('ERR_MALFORMED', 'the logged entry did not issue this credential', { details: { action: String(entry.action) } })
  return { text, index: verified.index, size: verified.checkpoint.size, cosignatures: verified.checkpoint.cosignatures.length }
}

/**
 * The log key and witness policy of an audit, checked before anything is read from the log: a policy
 * one key could meet alone (the log's key among the witnesses, one witness key under two names, a
 * quorum above the witnesses) is a usage error, not a finding about the log.
 */
function witnessPolicy(vkey: string, options: { witness?: string[]; quorum: string }): { log: NoteVerifier; witnesses: NoteVerifier[]; quorum: number } {
  const quorum = quorumOf(options.quorum)
  const log = noteVerifier(vkey) // the log's (possibly fetched) key: malformed is ERR_MALFORMED
  const witnesses = (options.witness ?? []).map((w) => {
    try {
      return noteVerifier(w)
    } catch {
      throw new UsageError(`--witness ${w.slice(0, 80)} is not a verifier key`)
    }
  })
  try {
    checkWitnessPolicy(log, witnesses, quorum)
  } catch (error) {
    if (error instanceof TypeError) throw new UsageError(`--witness/--quorum: ${error.message}`)
    throw error
  }
  return { log, witnesses, quorum }
}

/**
 * Most entries `audit verify` reads unless `--max-entries` says otherwise: far above a real issuer log,
 * and a bound on what a hostile checkpoint claiming any size can make the auditor download and keep
 * (the tree is a frontier of constant size, but every agent and status entry the log names is kept:
 * ~340 bytes of heap per spawn, ~600 of RSS, so 10^8 spawns is tens of GB at worst).
 */
export const DEFAULT_MAX_ENTRIES = 100_000_000

function maxEntriesOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_ENTRIES
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError('--max-entries must be a positive integer')
  return Number(text)
}

/** A checkpoint larger than the auditor agreed to read: refused before any entry is fetched. */
function refuseSize(size: number, maxEntries: number): void {
  if (size <= maxEntries) return
  throw new AgentIdError('ERR_PAYLOAD_TOO_LARGE', `the log's checkpoint claims ${size} entries, more than --max-entries ${maxEntries}: nothing was read`, { details: { size, maxEntries } })
}

function quorumOf(text: string): number {
  if (!/^[0-9]{1,2}$/.test(text)) throw new UsageError('--quorum must be a small non-negative integer')
  return Number(text)
}

/**
 * Largest answers of a log, by what they are (a log server may be hostile: it must not make the auditor
 * hold more than a well-formed answer can be). A bigger answer is ERR_PAYLOAD_TOO_LARGE.
 */
const MAX_KEY_BYTES = 4096
const MAX_PROOF_BYTES = 2 * MAX_NOTE_BYTES
const maxBundleBytes = (width: number) => width * (2 + MAX_ENTRY_BYTES)
const maxTileBytes = (width: number) => width * HASH_SIZE

async function fetchBytes(url: string, maxBytes: number): Promise<Buffer> {
  const signal = AbortSignal.timeout(30_000)
  const res = await fetch(url, { signal })
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined)
    throw new AgentIdError('ERR_UNAVAILABLE', `GET ${url} answered ${res.status}`)
  }
  return readBodyCapped(res, maxBytes, signal)
}
const fetchText = async (url: string, maxBytes: number) => (await fetchBytes(url, maxBytes)).toString('utf8')

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_SIGNATURE_INVALID', message, { details })
}

interface AuditState { logKey?: string; issuerDid?: string; checkpoints?: { size: number; root: string }[] }

/** `agentid audit verify`: the whole log recomputed from its entries. */
export async function auditVerify(options: { log: string; logKey?: string; witness?: string[]; quorum: string; state: string; issuerDid?: string; skipStatusLists?: boolean; maxEntries?: string }) {
  const base = options.log.replace(/\/+$/, '')
  const maxEntries = maxEntriesOf(options.maxEntries)
  const state: AuditState = existsSync(options.state) ? (JSON.parse(readFileSync(options.state, 'utf8')) as AuditState) : {}
  const vkey = options.logKey ?? state.logKey ?? (await fetchText(`${base}/log/key`, MAX_KEY_BYTES)).trim()
  if (state.logKey !== undefined && state.logKey !== vkey) fail('the log key differs from the one pinned in the state file')
  const policy = witnessPolicy(vkey, options)
  const cp = openCheckpoint(await fetchText(`${base}/log/checkpoint`, MAX_NOTE_BYTES), { ...policy, now: Math.floor(Date.now() / 1000) })
  const size = cp.size
  refuseSize(size, maxEntries)
  // Checkpoints seen before: the log may only have grown from them. Their roots are compared as the
  // entries stream past their sizes (the tree keeps no old nodes).
  const seenRoots = new Map<number, Set<string>>()
  for (const seen of state.checkpoints ?? []) {
    if (seen.size > size) fail(`the log shrank: a checkpoint of size ${seen.size} was seen before, now ${size}`)
    seenRoots.set(seen.size, (seenRoots.get(seen.size) ?? new Set()).add(seen.root))
  }
  // Every full tile the log serves up to the checkpoint must be the one recomputed: checked as the
  // entries complete it (a batch of bundles at a time, so only a batch's tiles wait), the partial
  // ones at the end.
  let pending: ComputedTile[] | undefined = []
  const tree = new FrontierTree((tile) => void pending?.push(tile))
  const sequences = new AgentSequences()
  const ledger = new StatusLedger()
  const checkSeenRoots = () => {
    const roots = seenRoots.get(tree.size)
    if (!roots) return
    const root = Buffer.from(tree.root()).toString('base64')
    if ([...roots].some((r) => r !== root)) fail(`the log is not consistent with the checkpoint of size ${tree.size} seen before`, { size: tree.size })
  }
  checkSeenRoots() // a checkpoint of size 0
  const feed = (e: Uint8Array) => {
    ledger.add(sequences.add(e, tree.size), tree.size)
    tree.appendEntry(e)
    checkSeenRoots()
  }
  const checkTiles = async (tiles: ComputedTile[]) => {
    for (let start = 0; start < tiles.length; start += 16) {
      await Promise.all(
        tiles.slice(start, start + 16).map(async ({ level, index, width, hashes }) => {
          const path = tilePath(level, index, width)
          const served = await fetchBytes(`${base}/log/${path}`, maxTileBytes(width))
          if (!served.equals(hashes)) fail(`tile ${path} does not match the entries`, { level, tile: index })
        }),
      )
    }
  }
  await readEntries(base, 0, size, feed, () => checkTiles(pending!.splice(0)))
  if (!Buffer.from(tree.root()).equals(cp.rootHash)) fail('the entries do not hash to the checkpoint root', { size })
  await checkTiles([...pending.splice(0), ...tree.partialTiles()])
  pending = undefined // the tiles past this checkpoint are not checked
  // The status lists against the log (which may grow meanwhile: `latest` is the checkpoint last verified).
  let latest = { size, rootHash: cp.rootHash }
  let status: StatusCheck
  let mismatches: StatusMismatch[] = []
  if (options.skipStatusLists) status = { checked: false, reason: 'skipped (--skip-status-lists)' }
  else if (ledger.statuses === 0) status = { checked: false, reason: 'not checked: no entry names a status entry', notCheckable: ledger.notCheckable }
  else {
    const issuer = options.issuerDid ?? state.issuerDid ?? (await fetchIssuerDid(base))
    if (state.issuerDid !== undefined && state.issuerDid !== issuer) fail('the issuer DID differs from the one pinned in the state file')
    state.issuerDid = issuer
    const fetched = new Map<string, StatusList>()
    const listIds = ledger.lists()
    for (const id of listIds) fetched.set(id, await fetchStatusList(`${base}/v1/status-lists/${id}`, { issuer, ...statusResolver(base, issuer), fetchTimeoutMs: 30_000 }))
    let result = ledger.compare(fetched, size)
    // A bit set by a revocation committed after the checkpoint: its entry is in a later one (≤ 1 s).
    for (let round = 0; round < 4 && result.mismatches.some(laterEntryMayExplain); round++) {
      await new Promise((resolve) => setTimeout(resolve, 750))
      const next = openCheckpoint(await fetchText(`${base}/log/checkpoint`, MAX_NOTE_BYTES), { ...policy, now: Math.floor(Date.now() / 1000) })
      if (next.size < latest.size) fail(`the log shrank: a checkpoint of size ${latest.size} was seen, now ${next.size}`)
      refuseSize(next.size, maxEntries)
      if (next.size === latest.size) {
        // Two signed checkpoints of one size with different roots: the log forked (proof of misbehaviour).
        if (!Buffer.from(next.rootHash).equals(Buffer.from(latest.rootHash))) fail(`the log signed two checkpoints of size ${next.size} with different roots`, { size: next.size, reason: 'split view' })
        continue
      }
      await readEntries(base, latest.size, next.size, feed)
      if (!Buffer.from(tree.root()).equals(next.rootHash)) fail('the entries do not hash to the checkpoint root', { size: next.size })
      latest = { size: next.size, rootHash: next.rootHash }
      result = ledger.compare(fetched, size)
    }
    mismatches = result.mismatches
    status = { checked: true, lists: listIds.length, statuses: result.bits, revoked: result.revoked, mismatches: mismatches.length, notCheckable: ledger.notCheckable }
  }
  const agents = sequences.size
  const root = Buffer.from(latest.rootHash).toString('base64')
  const seen = [...(state.checkpoints ?? []).filter((c) => c.size !== size && c.size !== latest.size), { size, root: Buffer.from(cp.rootHash).toString('base64') }, ...(latest.size !== size ? [{ size: latest.size, root }] : [])].slice(-1000)
  writeFileDurably(options.state, JSON.stringify({ logKey: vkey, ...(state.issuerDid === undefined ? {} : { issuerDid: state.issuerDid }), checkpoints: seen } satisfies AuditState))
  if (mismatches.length > 0) {
    const shown = mismatches.slice(0, 20).map(describeMismatch)
    fail(`the status lists disagree with the log (${mismatches.length} mismatches): ${shown.join('; ')}${mismatches.length > shown.length ? `; and ${mismatches.length - shown.length} more` : ''}`, { mismatches })
  }
  return { origin: cp.origin, size: latest.size, root, cosignatures: cp.cosignatures.length, agents, status }
}

/** What the status-list check did, for the output. */
export type StatusCheck =
  | { checked: false; reason: string; notCheckable?: NotCheckable }
  | { checked: true; lists: number; statuses: number; revoked: number; mismatches: number; notCheckable: NotCheckable }

/** The one-line summary of the status-list check. */
export function describeStatusCheck(s: StatusCheck): string {
  if (!s.checked) return `status lists ${s.reason}`
  const n = s.notCheckable
  const unchecked = n.issued + n.revoked + n.unattributedBits + n.omitted
  return `status lists checked: ${s.lists} lists, ${s.statuses} status entries (${s.revoked} revoked) match the log` +
    (unchecked > 0 ? `; not checkable (logged before status entries): ${n.issued} issued, ${n.revoked} revoked, ${n.unattributedBits} set bits, ${n.omitted} omitted entries` : '')
}

// Only a bit set with no revocation (yet) can be explained by entries past the checkpoint.
const laterEntryMayExplain = (m: StatusMismatch) => m.kind === 'set-without-revocation' || m.kind === 'set-without-issuance'

/**
 * The entries [from, to) of the log, bundle by bundle (16 fetched at a time), each given to `each` in
 * order; `afterBatch` runs after each batch's entries (before the next batch is fetched).
 */
async function readEntries(base: string, from: number, to: number, each: (e: Uint8Array) => void, afterBatch?: () => Promise<void>): Promise<void> {
  const first = Math.floor(from / TILE_WIDTH)
  const bundles = Math.ceil(to / TILE_WIDTH)
  for (let start = first; start < bundles; start += 16) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(16, bundles - start) }, (_, k) => {
        const n = start + k
        const width = Math.min(TILE_WIDTH, to - n * TILE_WIDTH)
        return fetchBytes(`${base}/log/${entriesPath(n, width)}`, maxBundleBytes(width)).then((b) => ({ n, width, b }))
      }),
    )
    for (const { n, width, b } of batch) {
      const got = decodeEntryBundle(b)
      if (got.length !== width) fail(`entry bundle ${n} holds ${got.length} entries, not ${width}`, { bundle: n })
      // A partial bundle read before is read again whole: its first entries are already counted.
      for (let i = Math.max(0, from - n * TILE_WIDTH); i < got.length; i++) each(got[i]!)
    }
    await afterBatch?.()
  }
}

/** The issuer's DID as it says (`GET /v1/issuer`), pinned in the state file on first use like the log key. */
async function fetchIssuerDid(base: string): Promise<string> {
  let did: unknown
  try {
    did = (JSON.parse(await fetchText(`${base}/v1/issuer`, MAX_KEY_BYTES)) as { did?: unknown }).did
  } catch (cause) {
    if (cause instanceof AgentIdError) throw cause
    throw new VerificationError('ERR_MALFORMED', 'GET /v1/issuer did not answer JSON', { cause })
  }
  if (typeof did !== 'string' || !/^did:(key|web):[A-Za-z0-9._:%-]{1,1024}$/.test(did)) throw new VerificationError('ERR_MALFORMED', 'GET /v1/issuer did not name a did:key or did:web')
  return did
}

/**
 * How the issuer's key is found: a did:key from the DID itself; a did:web on the audited host from
 * its `/.well-known/did.json` there (also over plain http, as the log is read), any other over HTTPS.
 */
function statusResolver(base: string, did: string): { resolver?: DidResolver } {
  if (!did.startsWith('did:web:')) return {}
  const url = new URL(base)
  const sameHost = did === `did:web:${url.host.replace(':', '%3A')}` && (url.pathname === '/' || url.pathname === '')
  const document = async () => {
    const text = await fetchText(`${url.origin}/.well-known/did.json`, MAX_DID_DOCUMENT_BYTES)
    const doc = JSON.parse(text) as unknown
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : null
  }
  return { resolver: cliResolver({ ...(sameHost ? { issuer: { did, document } } : {}), fetch: globalThis.fetch }) }
}
const MAX_DID_DOCUMENT_BYTES = 256 * 1024

/**
 * Ids kept per agent: a plain array while few (an agent has a few credentials, and a million agents
 * with a Set each was most of the audit's garbage collection), a Set past SMALL_IDS, so that a log
 * giving one agent very many credentials (a renewal each, then each revoked) costs linear time, not
 * a search of every earlier id per entry.
 */
type Ids = string[] | Set<string>
const SMALL_IDS = 16
const hasId = (ids: Ids | null, id: string) => (ids === null ? false : Array.isArray(ids) ? ids.includes(id) : ids.has(id))
function addId(ids: Ids | null, id: string): Ids {
  if (ids === null) return [id]
  if (!Array.isArray(ids)) return ids.add(id)
  if (ids.length < SMALL_IDS) {
    ids.push(id)
    return ids
  }
  return new Set(ids).add(id)
}

/**
 * Per agent: spawned once and first; renewed, granted, given tokens and credential-revoked only
 * while active; revoked at most once, and then naming every credential not revoked before. Fed one
 * entry at a time, in log order, so a million-entry audit keeps no entry in memory.
 */
export class AgentSequences {
  readonly #agents = new Map<string, { revoked: boolean; issued: Ids; revokedCreds: Ids | null }>()
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true })

  /** Number of agents seen. */
  get size(): number {
    return this.#agents.size
  }

  /** Checks the entry at `index`; returns it parsed. */
  add(bytes: Uint8Array, index: number): { action?: unknown; subject?: unknown; details?: Record<string, unknown>; detailsOmitted?: unknown } {
    let e: { action?: unknown; subject?: unknown; details?: Record<string, unknown>; detailsOmitted?: unknown }
    try {
      e = JSON.parse(this.#utf8.decode(bytes)) as typeof e
    } catch {
      return fail(`entry ${index} is not JSON`, { index })
    }
    const did = typeof e.subject === 'string' ? e.subject : ''
    const a = this.#agents.get(did)
    const d = e.details ?? {}
    const bad: (why: string) => never = (why) => fail(`entry ${index} (${String(e.action)} ${did}): ${why}`, { index })
    switch (e.action) {
      case 'agent.spawned':
        if (a) bad('the agent was spawned before')
        this.#agents.set(did, { revoked: false, issued: [String(d.credentialId)], revokedCreds: null })
        break
      case 'agent.renewed':
      case 'delegation.granted':
      case 'token.issued':
      case 'token.exchanged':
        if (!a) bad('the agent was never spawned')
        if (a.revoked) bad('the agent had been revoked')
        if (e.action === 'agent.renewed') a.issued = addId(a.issued, String(d.credentialId))
        break
      case 'credential.revoked':
        if (!a) bad('the agent was never spawned')
        if (!hasId(a.issued, String(d.credentialId))) bad('this credential was never issued')
        a.revokedCreds = addId(a.revokedCreds, String(d.credentialId))
        break
      case 'agent.revoked': {
        if (!a) bad('the agent was never spawned')
        if (a.revoked) bad('the agent was revoked twice')
        const listed = new Set(Array.isArray(d.credentials) ? d.credentials.map(String) : [])
        for (const c of a.issued) if (!hasId(a.revokedCreds, c) && !listed.has(c)) bad(`credential ${c} is missing from the revocation`)
        a.revoked = true
        break
      }
      default:
        break
    }
    return e
  }
}
