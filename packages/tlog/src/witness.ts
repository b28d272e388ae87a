import { VerificationError } from '@agentid/core'
import { parseCheckpoint } from './checkpoint.js'
import type { Cosigner } from './cosignature.js'
import { HASH_SIZE, emptyRoot, verifyConsistency } from './merkle.js'
import { SIG_TYPE_ED25519, openNote, parseNote, type NoteVerifier } from './note.js'
import { bytesEqual, decodeBase64Strict, encodeBase64, malformed, parseDecimal, utf8Fatal } from './util.js'

/** Most consistency proof lines in an add-checkpoint request (C2SP tlog-witness). */
export const MAX_CONSISTENCY_LINES = 63

/** A parsed tlog-witness add-checkpoint request. */
export interface AddCheckpointRequest {
  oldSize: number
  proof: Uint8Array[]
  /** The signed checkpoint note, verbatim. */
  checkpoint: string
}

/**
 * Formats an add-checkpoint request body: `old <size>`, proof lines, a blank line, the checkpoint.
 * @example
 * await fetch(`${witness}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest(10, proof, note) })
 */
export function formatAddCheckpointRequest(oldSize: number, proof: readonly Uint8Array[], checkpoint: string): string {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) throw new TypeError('oldSize must be a non-negative integer')
  if (proof.length > MAX_CONSISTENCY_LINES) throw new TypeError('at most 63 proof lines')
  return `old ${oldSize}\n${proof.map((h) => `${encodeBase64(h)}\n`).join('')}\n${checkpoint}`
}

/**
 * Parses an add-checkpoint request body. Throws ERR_MALFORMED.
 * @example
 * parseAddCheckpointRequest(body).oldSize
 */
export function parseAddCheckpointRequest(body: string | Uint8Array): AddCheckpointRequest {
  const bad: (why: string) => never = (why) => malformed(`malformed add-checkpoint request: ${why}`, 'malformed request')
  let text = ''
  try {
    text = typeof body === 'string' ? body : utf8Fatal.decode(body)
  } catch {
    bad('not UTF-8')
  }
  let pos = 0
  const nextLine = (): string => {
    const nl = text.indexOf('\n', pos)
    if (nl < 0) bad('unterminated line')
    const line = text.slice(pos, nl)
    pos = nl + 1
    return line
  }
  const first = nextLine()
  if (!first.startsWith('old ')) bad('no old size line')
  const oldSize = parseDecimal(first.slice(4))
  if (oldSize === undefined) bad('old size is not a canonical decimal')
  const proof: Uint8Array[] = []
  for (;;) {
    const line = nextLine()
    if (line === '') break
    if (proof.length >= MAX_CONSISTENCY_LINES) bad('too many proof lines')
    const h = decodeBase64Strict(line)
    if (!h || h.length !== HASH_SIZE) bad('proof line is not a base64 SHA-256 hash')
    proof.push(h)
  }
  return { oldSize, proof, checkpoint: text.slice(pos) }
}

/** What a witness remembers per log: its latest cosigned checkpoint. */
export interface WitnessRecord {
  size: number
  rootHash: Uint8Array
  /** The checkpoint note as cosigned. */
  checkpoint: string
}

/**
 * Durable per-log state of a witness. `put` must persist before it returns; the handler calls
 * get and put with nothing in between (it is synchronous), so check-and-update is atomic.
 */
export interface WitnessStore {
  get(origin: string): WitnessRecord | undefined
  put(origin: string, record: WitnessRecord): void
}

/** A log the witness follows: its origin and the keys it trusts for it. */
export interface WitnessedLog {
  origin: string
  keys: readonly NoteVerifier[]
}

export interface WitnessOptions {
  cosigner: Cosigner
  logs: readonly WitnessedLog[]
  store: WitnessStore
  /** Seconds since the epoch (default: the system clock). */
  clock?: () => number
  /** Called when a request from a known log with a valid signature is refused (possible misbehaviour). */
  onRefused?: (origin: string, status: number, reason: string, body: string) => void
}

/** An HTTP answer. */
export interface WitnessResponse {
  status: number
  contentType: string
  body: string
}

const text = (status: number, body: string): WitnessResponse => ({ status, contentType: 'text/plain; charset=utf-8', body })

/**
 * The C2SP tlog-witness add-checkpoint logic: 400 malformed or old size above the checkpoint's,
 * 404 unknown origin, 403 no valid signature from a trusted log key, 409 (text/x.tlog.size) old
 * size is not the latest cosigned size, 422 consistency proof fails, 409 same size with another
 * root; otherwise the new checkpoint is persisted and 200 returns the cosignature line.
 * @example
 * const res = addCheckpoint(body, { cosigner, logs: [{ origin, keys: [noteVerifier(vkey)] }], store })
 */
export function addCheckpoint(body: string | Uint8Array, options: WitnessOptions): WitnessResponse {
  let req: AddCheckpointRequest
  let origin: string
  let note
  try {
    req = parseAddCheckpointRequest(body)
    note = parseNote(req.checkpoint)
    origin = note.text.slice(0, note.text.indexOf('\n'))
  } catch (e) {
    if (e instanceof VerificationError) return text(400, `${e.message}\n`)
    throw e
  }
  const log = options.logs.find((l) => l.origin === origin)
  if (!log) return text(404, 'unknown log origin\n')
  let opened
  try {
    opened = openNote(req.checkpoint, log.keys)
  } catch (e) {
    if (e instanceof VerificationError && e.code !== 'ERR_MALFORMED') return text(403, 'checkpoint is not signed by a trusted log key\n')
    if (e instanceof VerificationError) return text(400, `${e.message}\n`)
    throw e
  }
  if (!opened.verified.some((s) => s.type === SIG_TYPE_ED25519)) return text(403, 'checkpoint is not signed by a trusted log key\n')
  let cp
  try {
    cp = parseCheckpoint(opened.text)
  } catch (e) {
    if (e instanceof VerificationError) return text(400, `${e.message}\n`)
    throw e
  }
  const refuse = (status: number, reason: string, res: WitnessResponse): WitnessResponse => {
    options.onRefused?.(origin, status, reason, typeof body === 'string' ? body : Buffer.from(body).toString('utf8'))
    return res
  }
  if (req.oldSize > cp.size) return text(400, 'old size is larger than the checkpoint size\n')
  const latest = options.store.get(origin)
  const latestSize = latest?.size ?? 0
  if (req.oldSize !== latestSize) {
    return { status: 409, contentType: 'text/x.tlog.size', body: `${latestSize}\n` }
  }
  if (req.oldSize === cp.size) {
    // Size 0 too: a tree of no leaves has one root (SHA-256 of nothing), seen before or not.
    const known = latest?.rootHash ?? emptyRoot()
    if (!bytesEqual(cp.rootHash, known)) return refuse(409, 'same size, different root', text(409, 'checkpoint conflicts with the latest cosigned one\n'))
    if (req.proof.length !== 0) return refuse(422, 'non-empty proof between equal sizes', text(422, 'consistency proof between equal sizes must be empty\n'))
  } else if (req.oldSize === 0) {
    if (req.proof.length !== 0) return refuse(422, 'proof from size 0 must be empty', text(422, 'consistency proof from size 0 must be empty\n'))
  } else {
    try {
      verifyConsistency(req.oldSize, cp.size, (latest as WitnessRecord).rootHash, cp.rootHash, req.proof)
    } catch (e) {
      if (e instanceof VerificationError) return refuse(422, 'consistency proof does not verify', text(422, 'consistency proof does not verify\n'))
      throw e
    }
  }
  const now = Math.floor((options.clock ?? (() => Date.now() / 1000))())
  // Persist before answering (spec: the witness MUST persist the new checkpoint before responding).
  options.store.put(origin, { size: cp.size, rootHash: cp.rootHash, checkpoint: req.checkpoint })
  return text(200, options.cosigner.cosign(opened.text, now))
}
