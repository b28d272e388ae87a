import { VerificationError } from '@agentid/core'
import { openCheckpoint, type OpenCheckpointOptions, type VerifiedCheckpoint } from './checkpoint.js'
import { HASH_SIZE, hashLeaf, verifyInclusion } from './merkle.js'
import { decodeBase64Strict, encodeBase64, malformed, parseDecimal } from './util.js'

/** First line of a C2SP tlog-proof. */
export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1'
/** Most inclusion proof lines accepted (a uint64 tree needs at most 63). */
export const MAX_PROOF_HASHES = 63

/** The parts of a tlog-proof. */
export interface TlogProof {
  /** Opaque, unauthenticated extra data. */
  extra?: Uint8Array
  index: number
  /** Inclusion proof, leaf's sibling first. */
  proof: Uint8Array[]
  /** The signed checkpoint note, verbatim. */
  checkpoint: string
}

/**
 * Formats a C2SP tlog-proof (`c2sp.org/tlog-proof@v1`, optional `extra`, `index`, proof lines, blank
 * line, checkpoint).
 * @example
 * formatTlogProof({ index: 3, proof, checkpoint: note })
 */
export function formatTlogProof(p: TlogProof): string {
  if (!Number.isSafeInteger(p.index) || p.index < 0) throw new TypeError('index must be a non-negative integer')
  let out = `${TLOG_PROOF_HEADER}\n`
  if (p.extra !== undefined) out += `extra ${encodeBase64(p.extra)}\n`
  out += `index ${p.index}\n`
  for (const h of p.proof) {
    if (h.length !== HASH_SIZE) throw new TypeError('proof hashes are 32 bytes')
    out += `${encodeBase64(h)}\n`
  }
  return `${out}\n${p.checkpoint}`
}

/**
 * Parses a tlog-proof without verifying it. Throws ERR_MALFORMED ('malformed tlog-proof').
 * @example
 * parseTlogProof(text).index
 */
export function parseTlogProof(text: string): TlogProof {
  const bad: (why: string) => never = (why) => malformed(`malformed tlog-proof: ${why}`, 'malformed tlog-proof')
  if (typeof text !== 'string' || text.length > 1 << 20) bad('not a string of reasonable size')
  let pos = 0
  const nextLine = (): string => {
    const nl = text.indexOf('\n', pos)
    if (nl < 0) bad('unterminated line')
    const line = text.slice(pos, nl)
    pos = nl + 1
    return line
  }
  if (nextLine() !== TLOG_PROOF_HEADER) bad('first line')
  let line = nextLine()
  let extra: Uint8Array | undefined
  if (line.startsWith('extra ')) {
    const e = decodeBase64Strict(line.slice(6))
    if (!e) bad('extra is not base64')
    extra = e
    line = nextLine()
  }
  if (!line.startsWith('index ')) bad('no index line')
  const index = parseDecimal(line.slice(6))
  if (index === undefined) bad('index is not a canonical decimal')
  const proof: Uint8Array[] = []
  for (;;) {
    line = nextLine()
    if (line === '') break
    const h = decodeBase64Strict(line)
    if (!h || h.length !== HASH_SIZE) bad('proof line is not a base64 SHA-256 hash')
    proof.push(h)
    if (proof.length > MAX_PROOF_HASHES) bad('too many proof lines')
  }
  const checkpoint = text.slice(pos)
  if (checkpoint.length === 0) bad('no checkpoint')
  return extra === undefined ? { index, proof, checkpoint } : { extra, index, proof, checkpoint }
}

/** Options of verifyTlogProof: the trusted log and witnesses, and what the proof must cover. */
export interface VerifyTlogProofOptions extends OpenCheckpointOptions {
  /** The logged entry (hashed with hashLeaf) or its leaf hash. */
  entry?: Uint8Array
  leafHash?: Uint8Array
}

/**
 * Verifies a tlog-proof offline: the checkpoint (log signature, origin, witness quorum) and the
 * inclusion of the entry at `index` in it. Throws VerificationError.
 * @example
 * const { index, checkpoint } = verifyTlogProof(text, { entry, log: vkey, witnesses, quorum: 2 })
 */
export function verifyTlogProof(text: string, options: VerifyTlogProofOptions): { index: number; checkpoint: VerifiedCheckpoint; extra?: Uint8Array } {
  if ((options.entry === undefined) === (options.leafHash === undefined)) throw new TypeError('give exactly one of entry or leafHash')
  const p = parseTlogProof(text)
  const checkpoint = openCheckpoint(p.checkpoint, options)
  const leaf = options.entry !== undefined ? hashLeaf(options.entry) : (options.leafHash as Uint8Array)
  if (p.index >= checkpoint.size) {
    throw new VerificationError('ERR_SIGNATURE_INVALID', 'entry index is outside the checkpoint', { details: { reason: 'proof does not verify' } })
  }
  verifyInclusion(p.index, checkpoint.size, leaf, p.proof, checkpoint.rootHash)
  return p.extra === undefined ? { index: p.index, checkpoint } : { index: p.index, checkpoint, extra: p.extra }
}
