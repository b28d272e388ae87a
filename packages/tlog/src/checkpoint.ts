import { VerificationError } from '@agentid/core'
import { HASH_SIZE } from './merkle.js'
import { SIG_TYPE_COSIGNATURE_V1, noteVerifier, openNote, signNote, type NoteSigner, type NoteVerifier, type VerifiedSignature } from './note.js'
import { decodeBase64Strict, encodeBase64, isWellFormedString, malformed, parseDecimal } from './util.js'

/** A C2SP tlog-checkpoint body. */
export interface Checkpoint {
  origin: string
  size: number
  rootHash: Uint8Array
  /** Extension lines, in order, without newlines. */
  extensions: string[]
}

/**
 * Parses a checkpoint note text (origin, decimal size, base64 root hash, optional non-empty
 * extension lines; each line ends in a newline). Throws ERR_MALFORMED ('malformed checkpoint').
 * @example
 * parseCheckpoint('example.com/log\n15\nrKbD...=\n').size // 15
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (typeof text !== 'string' || !text.endsWith('\n')) malformed('checkpoint text must end with a newline', 'malformed checkpoint')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) malformed('checkpoint has fewer than three lines', 'malformed checkpoint')
  const [origin, sizeLine, rootLine, ...extensions] = lines as [string, string, string, ...string[]]
  if (origin.length === 0 || !isWellFormedString(origin)) malformed('checkpoint origin is empty', 'malformed checkpoint')
  const size = parseDecimal(sizeLine)
  if (size === undefined) malformed('checkpoint size is not a canonical decimal', 'malformed checkpoint')
  const rootHash = decodeBase64Strict(rootLine)
  if (!rootHash || rootHash.length !== HASH_SIZE) malformed('checkpoint root hash is not a base64 SHA-256 hash', 'malformed checkpoint')
  if (extensions.some((l) => l.length === 0)) malformed('checkpoint extension lines must not be empty', 'malformed checkpoint')
  return { origin, size, rootHash, extensions }
}

/**
 * The note text of a checkpoint.
 * @example
 * formatCheckpoint({ origin: 'example.com/log', size: 0, rootHash: emptyRoot(), extensions: [] })
 */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!cp.origin || /[\n\r]/.test(cp.origin)) throw new TypeError('origin must be one non-empty line')
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new TypeError('size must be a non-negative integer')
  if (cp.rootHash.length !== HASH_SIZE) throw new TypeError('root hash must be 32 bytes')
  for (const e of cp.extensions) if (!e || /[\n\r]/.test(e)) throw new TypeError('extension lines must be non-empty single lines')
  return [cp.origin, String(cp.size), encodeBase64(cp.rootHash), ...cp.extensions].map((l) => `${l}\n`).join('')
}

/**
 * Signs a checkpoint with the log key: the whole signed note.
 * @example
 * const note = signCheckpoint({ origin, size, rootHash, extensions: [] }, logSigner)
 */
export function signCheckpoint(cp: Checkpoint, signer: NoteSigner): string {
  return signNote(formatCheckpoint(cp), [signer])
}

/** Options of openCheckpoint. */
export interface OpenCheckpointOptions {
  /** The log's key (vkey or verifier). The log's signature is required. */
  log: string | NoteVerifier
  /** Expected origin line (default: the log key's name). */
  origin?: string
  /** Trusted witness keys (vkeys of type 0x04 or verifiers). */
  witnesses?: readonly (string | NoteVerifier)[]
  /**
   * How many distinct trusted witnesses must have cosigned (default 0). A witness is its key name: two
   * keys of one name (a witness rotating its key) count once, so one operator cannot make up a quorum.
   */
  quorum?: number
  /** Current time in seconds; cosignatures timestamped later than now + 60 s are not counted. */
  now?: number
}

/** A checkpoint whose log signature (and witness quorum) verified. */
export interface VerifiedCheckpoint extends Checkpoint {
  /** The whole note as given. */
  note: string
  /** The note text (the signed checkpoint body). */
  text: string
  /** Verified witness cosignatures (name, key ID, timestamp). */
  cosignatures: VerifiedSignature[]
}

/**
 * Refuses a witness policy that could be met without `quorum` independent witnesses: a witness key
 * that is not a cosignature (0x04) key, one named like the log (the log would witness itself), a
 * quorum above the number of distinct witness names, or one public key trusted under two names. The
 * last because an Ed25519 cosignature does not sign its cosigner's name (tlog-cosignature: one key
 * cannot serve two cosigners): a cosignature under one name is valid under the other, and whoever
 * holds it (the log, which requested it) can relabel it. The log's key counts among the keys when it
 * is itself a cosignature key (a log may sign its checkpoints with one). Throws TypeError.
 * @example
 * checkWitnessPolicy(noteVerifier(logVkey), [w1, w2], 2)
 */
export function checkWitnessPolicy(log: NoteVerifier, witnesses: readonly NoteVerifier[], quorum: number): void {
  const namesByKey = new Map<string, Set<string>>()
  const keyOf = (v: NoteVerifier) => {
    if (v.type !== SIG_TYPE_COSIGNATURE_V1 || v.publicKey === undefined) return
    const hex = Buffer.from(v.publicKey).toString('hex')
    const names = namesByKey.get(hex) ?? new Set<string>()
    names.add(v.name)
    namesByKey.set(hex, names)
    if (names.size > 1) throw new TypeError(`witness key ${v.name} has the public key of ${[...names][0]}: one cosigner key cannot be two witnesses`)
  }
  keyOf(log)
  for (const w of witnesses) {
    if (w.type !== SIG_TYPE_COSIGNATURE_V1) throw new TypeError(`witness key ${w.name} is not a cosignature (0x04) key`)
    if (w.name === log.name) throw new TypeError(`witness key ${w.name} has the log's own name: a log cannot witness itself`)
    keyOf(w)
  }
  if (!Number.isInteger(quorum) || quorum < 0) throw new TypeError('quorum must be a non-negative integer')
  const names = new Set(witnesses.map((w) => w.name)).size
  if (quorum > names) throw new TypeError(`quorum ${quorum} exceeds the ${names} distinct trusted witnesses (a witness is its key name)`)
}

/**
 * Opens a signed checkpoint: the log's signature must verify, the origin must be the expected one,
 * and at least `quorum` distinct trusted witnesses must have cosigned it. Unknown signatures are
 * ignored. Throws VerificationError (ERR_MALFORMED, ERR_SIGNATURE_INVALID, ERR_UNTRUSTED_ISSUER:
 * no log signature or quorum not met, `details.reason` says which).
 * @example
 * const cp = openCheckpoint(note, { log: vkey, witnesses: [w1, w2], quorum: 1 })
 */
export function openCheckpoint(note: string, options: OpenCheckpointOptions): VerifiedCheckpoint {
  const log = typeof options.log === 'string' ? noteVerifier(options.log) : options.log
  const witnesses = (options.witnesses ?? []).map((w) => (typeof w === 'string' ? noteVerifier(w) : w))
  const quorum = options.quorum ?? 0
  checkWitnessPolicy(log, witnesses, quorum)
  let opened
  try {
    opened = openNote(note, [log, ...witnesses])
  } catch (e) {
    if (e instanceof VerificationError && e.code === 'ERR_UNTRUSTED_ISSUER') {
      throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'checkpoint is not signed by the log key', { details: { reason: 'no log signature' } })
    }
    throw e
  }
  if (!opened.verified.some((s) => s.name === log.name && s.keyId === log.keyId)) {
    throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'checkpoint is not signed by the log key', { details: { reason: 'no log signature' } })
  }
  const cp = parseCheckpoint(opened.text)
  const origin = options.origin ?? log.name
  if (cp.origin !== origin) {
    throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'checkpoint origin is not the expected log', { details: { reason: 'origin mismatch', origin: cp.origin } })
  }
  const limit = options.now === undefined ? Infinity : options.now + 60
  // Witnesses' cosignatures only: a log signing with a cosignature (0x04) key is not its own witness
  // (no witness may bear the log's name: checkWitnessPolicy).
  const cosignatures = opened.verified.filter((s) => s.type === SIG_TYPE_COSIGNATURE_V1 && s.name !== log.name && (s.timestamp ?? Infinity) <= limit)
  const distinct = new Set(cosignatures.map((s) => s.name))
  if (distinct.size < quorum) {
    throw new VerificationError('ERR_UNTRUSTED_ISSUER', `checkpoint has ${distinct.size} of ${quorum} required witness cosignatures`, {
      details: { reason: 'witness quorum not met', have: distinct.size, need: quorum },
    })
  }
  return { ...cp, note, text: opened.text, cosignatures }
}
