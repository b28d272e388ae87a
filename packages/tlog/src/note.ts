import { createHash, createPublicKey, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { VerificationError, privateKeyFromSeed, publicKeyFromRaw, rawPublicKey } from '@agentid/core'
import { decodeBase64Strict, encodeBase64, isWellFormedString, malformed, toBytes, utf8, utf8Fatal } from './util.js'

/** C2SP signed-note signature type of plain Ed25519 note signatures. */
export const SIG_TYPE_ED25519 = 0x01
/** C2SP signed-note signature type of tlog-cosignature/v1 (timestamped Ed25519) cosignatures. */
export const SIG_TYPE_COSIGNATURE_V1 = 0x04

/** Most signature lines a note may carry (golang.org/x/mod/sumdb/note's limit; C2SP asks for >= 16). */
export const MAX_NOTE_SIGNATURES = 100
/** Largest note accepted, in bytes. */
export const MAX_NOTE_BYTES = 1 << 20

/**
 * Checks a C2SP key name: non-empty, no Unicode white space, no '+'.
 * @example
 * isValidKeyName('example.com/log') // true
 */
export function isValidKeyName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && !/[\s+\u0085]/u.test(name) && isWellFormedString(name)
}

/**
 * Key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian uint32.
 * @example
 * keyId('example.com/foo', SIG_TYPE_ED25519, pub).toString(16)
 */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(utf8.encode(name)).update(Buffer.from([0x0a, type])).update(publicKey).digest()
  return digest.readUInt32BE(0)
}

const hex8 = (id: number) => id.toString(16).padStart(8, '0')

/** Verifies signatures of one (name, key ID) pair. */
export interface NoteVerifier {
  readonly name: string
  readonly keyId: number
  /** Signature type byte (0x01 note signature, 0x04 cosignature). */
  readonly type: number
  /**
   * The raw public key, when known (verifiers made here carry it): lets a witness policy refuse one key
   * trusted under two names (see checkWitnessPolicy).
   */
  readonly publicKey?: Uint8Array
  /** Checks `signature` (the bytes after the key ID) over the note `text`. */
  verify(text: Uint8Array, signature: Uint8Array): boolean
  /** For cosignatures: the timestamp a signature carries, or undefined when it cannot be parsed. */
  timestamp?(signature: Uint8Array): number | undefined
}

/** Signs note texts with one key. */
export interface NoteSigner {
  readonly name: string
  readonly keyId: number
  readonly type: number
  sign(text: Uint8Array): Uint8Array
}

/** A parsed verifier key (`name+hash+base64(type||key)`). */
export interface VerifierKey {
  name: string
  keyId: number
  type: number
  publicKey: Uint8Array
}

/**
 * Parses a C2SP vkey, `<name>+<hex key ID>+<base64(type || public key)>` (split on the first two '+';
 * the base64 may contain '+'). Types 0x01 and 0x04 (32-byte Ed25519) only; the key ID must match.
 * Throws VerificationError ERR_MALFORMED.
 * @example
 * parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k')
 */
export function parseVerifierKey(vkey: string): VerifierKey {
  if (typeof vkey !== 'string') malformed('verifier key must be a string', 'malformed verifier key')
  const p1 = vkey.indexOf('+')
  const p2 = p1 < 0 ? -1 : vkey.indexOf('+', p1 + 1)
  if (p1 < 0 || p2 < 0) malformed('verifier key is not name+id+key', 'malformed verifier key')
  const name = vkey.slice(0, p1)
  const idHex = vkey.slice(p1 + 1, p2)
  const key = decodeBase64Strict(vkey.slice(p2 + 1))
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(idHex) || !key || key.length < 1) malformed('malformed verifier key', 'malformed verifier key')
  const type = key[0] as number
  const publicKey = key.slice(1)
  if (type !== SIG_TYPE_ED25519 && type !== SIG_TYPE_COSIGNATURE_V1) malformed(`unknown verifier key type ${type}`, 'unknown verifier algorithm')
  if (publicKey.length !== 32) malformed('malformed verifier key', 'malformed verifier key')
  const id = Number.parseInt(idHex, 16)
  if (id !== keyId(name, type, publicKey)) malformed('verifier key ID does not match its key', 'invalid verifier ID')
  return { name, keyId: id, type, publicKey }
}

/**
 * Formats a vkey.
 * @example
 * formatVerifierKey('example.com/log', SIG_TYPE_ED25519, pub) // 'example.com/log+1a2b3c4d+Ab...'
 */
export function formatVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new TypeError('invalid key name')
  return `${name}+${hex8(keyId(name, type, publicKey))}+${encodeBase64(Buffer.concat([Buffer.from([type]), publicKey]))}`
}

/**
 * A note verifier from a vkey: type 0x01 verifies Ed25519 over the text, type 0x04 verifies a
 * tlog-cosignature/v1 (see cosignature.ts).
 * @example
 * openNote(note, [noteVerifier(vkey)])
 */
export function noteVerifier(vkey: string | VerifierKey): NoteVerifier {
  const k = typeof vkey === 'string' ? parseVerifierKey(vkey) : vkey
  const key = publicKeyFromRaw(k.publicKey)
  if (k.type === SIG_TYPE_COSIGNATURE_V1) return cosignatureVerifierFromKey(k.name, key, k.keyId, k.publicKey)
  return {
    name: k.name,
    keyId: k.keyId,
    type: SIG_TYPE_ED25519,
    publicKey: k.publicKey,
    verify: (text, signature) => signature.length === 64 && cryptoVerify(null, text, key, signature),
  }
}

/** @internal used by noteVerifier and cosignature.ts */
export function cosignatureVerifierFromKey(name: string, key: KeyObject, id: number, publicKey: Uint8Array): NoteVerifier {
  return {
    name,
    keyId: id,
    type: SIG_TYPE_COSIGNATURE_V1,
    publicKey,
    verify: (text, signature) => {
      if (signature.length !== 72) return false
      const ts = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0)
      if (ts > 2n ** 63n - 1n) return false
      const message = Buffer.concat([utf8.encode(`cosignature/v1\ntime ${ts}\n`), text])
      return cryptoVerify(null, message, key, signature.subarray(8))
    },
    timestamp: (signature) => {
      if (signature.length !== 72) return undefined
      const ts = Buffer.from(signature.buffer, signature.byteOffset, 8).readBigUInt64BE(0)
      return ts <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ts) : undefined
    },
  }
}

/** A parsed signer key (`PRIVATE+KEY+name+hash+base64(type||seed)`). Treat as a secret. */
export interface SignerKey {
  name: string
  keyId: number
  type: number
  seed: Uint8Array
}

/**
 * Parses a golang.org/x/mod/sumdb/note signer key `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
 * @example
 * const signer = noteSigner(parseSignerKey(process.env.LOG_SKEY))
 */
export function parseSignerKey(skey: string): SignerKey {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) malformed('malformed signer key', 'malformed signer key')
  const rest = skey.slice('PRIVATE+KEY+'.length)
  const p1 = rest.indexOf('+')
  const p2 = p1 < 0 ? -1 : rest.indexOf('+', p1 + 1)
  if (p1 < 0 || p2 < 0) malformed('malformed signer key', 'malformed signer key')
  const name = rest.slice(0, p1)
  const idHex = rest.slice(p1 + 1, p2)
  const key = decodeBase64Strict(rest.slice(p2 + 1))
  if (!isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(idHex) || !key || key.length !== 33) malformed('malformed signer key', 'malformed signer key')
  const type = key[0] as number
  if (type !== SIG_TYPE_ED25519 && type !== SIG_TYPE_COSIGNATURE_V1) malformed('unknown signer key type', 'malformed signer key')
  const seed = key.slice(1)
  const pub = rawPublicKey(createPublicKey(privateKeyFromSeed(seed)))
  const id = Number.parseInt(idHex, 16)
  if (id !== keyId(name, type, pub)) malformed('signer key ID does not match its key', 'malformed signer key')
  return { name, keyId: id, type, seed }
}

/**
 * Formats a signer key from a 32-byte Ed25519 seed.
 * @example
 * formatSignerKey('example.com/log', SIG_TYPE_ED25519, randomBytes(32))
 */
export function formatSignerKey(name: string, type: number, seed: Uint8Array): string {
  if (!isValidKeyName(name)) throw new TypeError('invalid key name')
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed is 32 bytes')
  const pub = rawPublicKey(createPublicKey(privateKeyFromSeed(seed)))
  return `PRIVATE+KEY+${name}+${hex8(keyId(name, type, pub))}+${encodeBase64(Buffer.concat([Buffer.from([type]), seed]))}`
}

/**
 * Generates a fresh key pair: returns the signer key (secret) and the matching vkey.
 * @example
 * const { skey, vkey } = generateNoteKey('issuer.example/log')
 */
export function generateNoteKey(name: string, type: number = SIG_TYPE_ED25519): { skey: string; vkey: string } {
  const seed = randomBytes(32)
  const pub = rawPublicKey(createPublicKey(privateKeyFromSeed(seed)))
  return { skey: formatSignerKey(name, type, seed), vkey: formatVerifierKey(name, type, pub) }
}

/** The vkey of a signer key. */
export function verifierKeyOf(skey: SignerKey): string {
  return formatVerifierKey(skey.name, skey.type, rawPublicKey(createPublicKey(privateKeyFromSeed(skey.seed))))
}

/**
 * A note signer (type 0x01) from a signer key or from (name, Ed25519 private KeyObject).
 * @example
 * const note = signNote('hello\n', [noteSigner(parseSignerKey(skey))])
 */
export function noteSigner(skey: SignerKey | { name: string; privateKey: KeyObject }): NoteSigner {
  const privateKey = 'seed' in skey ? privateKeyFromSeed(skey.seed) : skey.privateKey
  const pub = rawPublicKey(createPublicKey(privateKey))
  if ('type' in skey && skey.type !== SIG_TYPE_ED25519) throw new TypeError('not a note signing key (type 0x01)')
  if (!isValidKeyName(skey.name)) throw new TypeError('invalid key name')
  return {
    name: skey.name,
    keyId: keyId(skey.name, SIG_TYPE_ED25519, pub),
    type: SIG_TYPE_ED25519,
    sign: (text) => cryptoSign(null, text, privateKey),
  }
}

/** A signature line of a note. */
export interface NoteSignature {
  name: string
  keyId: number
  /** The signature bytes after the 4-byte key ID. */
  signature: Uint8Array
  /** The whole line without its newline, as it appeared. */
  line: string
}

/** A verified signature and, for a cosignature, its timestamp. */
export interface VerifiedSignature {
  name: string
  keyId: number
  type: number
  timestamp?: number
}

/** A note whose text is authenticated by at least one trusted key. */
export interface OpenedNote {
  text: string
  /** Signatures by known keys, all verified. */
  verified: VerifiedSignature[]
  /** Signature lines of unknown keys (ignored, kept so a checkpoint can be passed on whole). */
  unverified: NoteSignature[]
}

/**
 * Splits a signed note into text and signature lines without checking any signature. Throws
 * ERR_MALFORMED (details.reason 'malformed note') on any syntax fault.
 * @example
 * const { text, signatures } = parseNote(note)
 */
export function parseNote(input: string | Uint8Array): { text: string; signatures: NoteSignature[] } {
  const bytes = toBytes(input)
  if (typeof input === 'string' && !isWellFormedString(input)) malformed('note is not valid Unicode', 'malformed note')
  if (bytes.length > MAX_NOTE_BYTES) malformed('note is too large', 'malformed note')
  let msg: string
  try {
    msg = utf8Fatal.decode(bytes)
  } catch {
    malformed('note is not valid UTF-8', 'malformed note')
  }
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i)
    if (c < 0x20 && c !== 0x0a) malformed('note contains a control character', 'malformed note')
  }
  const split = msg.lastIndexOf('\n\n')
  if (split < 0) malformed('note has no blank line before its signatures', 'malformed note')
  const text = msg.slice(0, split + 1)
  let sigs = msg.slice(split + 2)
  if (sigs.length === 0 || !sigs.endsWith('\n')) malformed('note has no signature lines', 'malformed note')
  const signatures: NoteSignature[] = []
  while (sigs.length > 0) {
    const nl = sigs.indexOf('\n')
    const line = sigs.slice(0, nl)
    sigs = sigs.slice(nl + 1)
    if (!line.startsWith('\u2014 ')) malformed('note signature line does not start with an em dash', 'malformed note')
    const body = line.slice(2)
    const sp = body.indexOf(' ')
    const name = sp < 0 ? body : body.slice(0, sp)
    const b64 = sp < 0 ? '' : body.slice(sp + 1)
    const sig = decodeBase64Strict(b64)
    if (!sig || !isValidKeyName(name) || b64 === '' || sig.length < 5) malformed('malformed note signature line', 'malformed note')
    if (signatures.length >= MAX_NOTE_SIGNATURES) malformed('note has too many signatures', 'malformed note')
    signatures.push({ name, keyId: Buffer.from(sig.buffer, sig.byteOffset, 4).readUInt32BE(0), signature: sig.subarray(4), line })
  }
  return { text, signatures }
}

/**
 * Opens a C2SP signed note: parses it, verifies every signature whose (name, key ID) matches a
 * known verifier (each line, repeated ones too; one per key is reported), ignores the rest. Throws VerificationError: ERR_MALFORMED ('malformed note'),
 * ERR_SIGNATURE_INVALID ('invalid signature for key NAME+ID': a known key's signature fails; the
 * whole note is refused), ERR_UNTRUSTED_ISSUER ('note has no verifiable signatures').
 * @example
 * const { text, verified } = openNote(note, [noteVerifier(vkey)])
 */
export function openNote(input: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const { text, signatures } = parseNote(input)
  const textBytes = utf8.encode(text)
  const verified: VerifiedSignature[] = []
  const unverified: NoteSignature[] = []
  const seen = new Set<string>()
  const verifiedLines = new Set<string>()
  const seenUnverified = new Set<string>()
  for (const s of signatures) {
    const v = verifiers.find((k) => k.name === s.name && k.keyId === s.keyId)
    if (!v) {
      if (!seenUnverified.has(s.line)) {
        seenUnverified.add(s.line)
        unverified.push(s)
      }
      continue
    }
    // Every line of a known key is verified, repeated ones too (C2SP signed-note, Signatures: "If the
    // key name and ID match a known key, verifiers MUST verify the signature. If a signature from a
    // known key fails to verify, clients SHOULD reject the whole note."): a bad second line of a key
    // refuses the note like a bad first one. A line identical to one verified already verifies alike.
    const id = `${s.name}+${hex8(s.keyId)}`
    if (verifiedLines.has(s.line)) continue
    if (!v.verify(textBytes, s.signature)) {
      throw new VerificationError('ERR_SIGNATURE_INVALID', `invalid signature for key ${id}`, {
        details: { reason: `invalid signature for key ${id}`, key: id },
      })
    }
    verifiedLines.add(s.line)
    // One verified signature per key is reported (the first), as a key counts once.
    if (seen.has(id)) continue
    seen.add(id)
    const ts = v.timestamp?.(s.signature)
    verified.push(ts === undefined ? { name: s.name, keyId: s.keyId, type: v.type } : { name: s.name, keyId: s.keyId, type: v.type, timestamp: ts })
  }
  if (verified.length === 0) {
    throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'note has no verifiable signatures', { details: { reason: 'note has no verifiable signatures' } })
  }
  return { text, verified, unverified }
}

/**
 * Signs a note text (which must end in a newline) with each signer. Returns the whole note.
 * @example
 * signNote('hello\n', [signer]) // 'hello\n\n- name base64...\n'
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  if (!text.endsWith('\n')) throw new TypeError('note text must end with a newline')
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 && c !== 0x0a) throw new TypeError('note text must not contain control characters')
  }
  if (signers.length === 0) throw new TypeError('at least one signer is required')
  const bytes = utf8.encode(text)
  let out = `${text}\n`
  for (const s of signers) out += signatureLine(s.name, s.keyId, s.sign(bytes))
  return out
}

/** One signature line `- <name> base64(keyID || sig)\n`. */
export function signatureLine(name: string, id: number, signature: Uint8Array): string {
  const head = Buffer.alloc(4)
  head.writeUInt32BE(id >>> 0, 0)
  return `\u2014 ${name} ${encodeBase64(Buffer.concat([head, signature]))}\n`
}
