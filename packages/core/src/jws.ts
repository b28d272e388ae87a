import { KeyObject, verify as cryptoVerify, type JsonWebKey } from 'node:crypto'
import { promisify } from 'node:util'
import { isArrayBuffer } from 'node:util/types'
import { base64urlDecode, base64urlEncode, checkBase64url, checkBase64urlForm } from './base64url.js'
import { VerificationError } from './errors.js'
import { MAX_JWT_PAYLOAD_DEPTH } from './limits.js'
import { hasSmallOrderR } from './did-key.js'
import { bufferOf, byteLengthOf, ed25519Backend, ed25519VerifyRaw } from './ed25519.js'
import { decodeUtf8Strict, parseStrictJsonObject } from './json.js'
import type { Ed25519PublicJwk, Signer } from './keys.js'

/** The protected header of a compact JWS. Only EdDSA is ever produced or accepted. */
export interface JwsHeader {
  alg: string
  typ?: string
  kid?: string
  [member: string]: unknown
}

/** A compact JWS split and decoded, not yet verified. */
export interface DecodedJws {
  /** Frozen: one object is shared by the tokens that have the same header text. */
  header: JwsHeader
  /** The payload bytes (base64url-decoded). */
  payload: Buffer
  /** ASCII `header.payload`, the bytes the signature covers. */
  signingInput: string
  signature: Buffer
}

/** A decoded JWT: a JWS whose payload is a JSON object (duplicate members refused). */
export interface DecodedJwt extends Omit<DecodedJws, 'payload'> {
  payload: Record<string, unknown>
}

/** Default upper bound of a token's size, checked before any parsing work. */
export const DEFAULT_MAX_TOKEN_BYTES = 64 * 1024

const encoder = new TextEncoder()

/**
 * Signs a compact JWS over `payload` (UTF-8 text or bytes) with an EdDSA signer.
 * @example
 * await signCompactJws({ alg: 'EdDSA' }, 'Example of Ed25519 signing', signer)
 */
export async function signCompactJws(header: JwsHeader, payload: Uint8Array | string, signer: Pick<Signer, 'sign'>): Promise<string> {
  if (header.alg !== 'EdDSA') throw new TypeError('signCompactJws: only alg EdDSA is supported')
  const signingInput = `${base64urlEncode(JSON.stringify(header))}.${base64urlEncode(payload)}`
  const signature = await signer.sign(encoder.encode(signingInput))
  return `${signingInput}.${base64urlEncode(signature)}`
}

/**
 * Signs a JWT: header `{ alg: 'EdDSA', typ, kid }` and the JSON claims.
 * @example
 * await signJwt({ typ: 'JWT' }, { iss: signer.did, sub }, signer)
 */
export async function signJwt(header: Omit<JwsHeader, 'alg'>, claims: Record<string, unknown>, signer: Signer): Promise<string> {
  return signCompactJws({ alg: 'EdDSA', ...header, kid: typeof header.kid === 'string' ? header.kid : signer.keyId }, JSON.stringify(claims), signer)
}

/**
 * Decodes one base64url segment of a JOSE object (a JWS header or a JWT payload) into a JSON object
 * with core's strict rules: canonical unpadded base64url, valid UTF-8 (no U+FFFD substitution), and a
 * JSON object without duplicate members or lone surrogates, nested at most `maxDepth`. Every JWS header and JWT payload the project reads goes through here.
 * @example
 * decodeJsonSegment(token.split('.')[0], 'JWS header', 4) // { alg: 'EdDSA', typ: 'JWT' }
 */
export function decodeJsonSegment(segment: string, what: string, maxDepth: number): Record<string, unknown> {
  return parseStrictJsonObject(decodeUtf8Strict(base64urlDecode(segment, what), what), { what, maxDepth })
}

/**
 * Splits a compact JWS of any algorithm (a foreign JWT: an identity provider's token) and decodes its
 * header and payload with the strict rules of {@link decodeJsonSegment}, so the JSON that is checked
 * is the JSON that was signed (`"sub":"admin","sub":"user-42"` is refused, not read as user-42).
 * Not verified; the signature segment is only checked to be base64url. Throws VerificationError.
 * @example
 * const { header, payload } = decodeJwtParts(idpToken) // then verify with the IdP's keys
 */
export function decodeJwtParts(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES): { header: JwsHeader; payload: Record<string, unknown> } {
  if (typeof token !== 'string') throw new VerificationError('ERR_MALFORMED', 'token is not a string')
  if (token.length > maxBytes) throw new VerificationError('ERR_MALFORMED', `token is larger than ${maxBytes} bytes`)
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] === '') throw new VerificationError('ERR_MALFORMED', 'token is not a compact JWS of three segments')
  const header = decodeJsonSegment(parts[0]!, 'JWS header', 4) as JwsHeader
  const payload = decodeJsonSegment(parts[1]!, 'JWT payload', MAX_JWT_PAYLOAD_DEPTH)
  base64urlDecode(parts[2]!, 'JWS signature')
  return { header, payload }
}

/**
 * Splits and decodes a compact JWS without verifying it. Refuses oversized input before any parsing,
 * anything but three base64url segments, a header that is not a duplicate-free JSON object,
 * any `alg` but EdDSA (ERR_UNSUPPORTED_ALG), `crit` and unencoded payloads.
 */
export function decodeCompactJws(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES): DecodedJws {
  if (typeof token !== 'string') notAString()
  const second = splitCompactJws(token, maxBytes)
  const first = token.indexOf('.')
  const header = decodeHeader(token.slice(0, first))
  const payload = base64urlDecode(token.slice(first + 1, second), 'JWS payload')
  const signature = base64urlDecode(token.slice(second + 1), 'JWS signature')
  if (signature.length !== 64) throw new VerificationError('ERR_SIGNATURE_INVALID', 'an Ed25519 signature is 64 bytes')
  return { header, payload, signingInput: token.slice(0, second), signature }
}

/** A compact JWS split and checked as {@link decodeCompactJws} does, its payload left as base64url text. */
export interface DecodedJwsSegments extends Omit<DecodedJws, 'payload'> {
  /** The payload segment, checked to be canonical unpadded base64url (not decoded). */
  payloadSegment: string
}

/**
 * The checks of {@link decodeCompactJws}, in its order (size, three segments, header, payload and
 * signature base64url, signature length), without decoding the payload: for a caller that decodes it
 * into a buffer of its own and reads it at once (a lineage verifier: no Buffer per entry). With
 * `charsChecked` (the caller checked that the token holds only base64url characters and dots) the
 * segments' character scans are skipped; their length and trailing-bit checks remain.
 * @example
 * const { header, payloadSegment } = decodeCompactJwsSegments(token)
 */
export function decodeCompactJwsSegments(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES, charsChecked = false): DecodedJwsSegments {
  if (typeof token !== 'string') notAString()
  const second = splitCompactJws(token, maxBytes)
  const first = token.indexOf('.')
  const header = decodeHeader(token.slice(0, first))
  const payloadSegment = token.slice(first + 1, second)
  // `charsChecked`: the caller found only base64url characters and dots in the token (a lineage
  // verifier checks a whole lineage's characters at once), so each segment's own scan is skipped.
  const check = charsChecked ? checkBase64urlForm : checkBase64url
  check(payloadSegment, 'JWS payload')
  const signatureSegment = token.slice(second + 1)
  check(signatureSegment, 'JWS signature')
  const signature = Buffer.from(signatureSegment, 'base64url')
  if (signature.length !== 64) throw new VerificationError('ERR_SIGNATURE_INVALID', 'an Ed25519 signature is 64 bytes')
  return { header, payloadSegment, signingInput: token.slice(0, second), signature }
}

function notAString(): never {
  throw new VerificationError('ERR_MALFORMED', 'token is not a string')
}

/** The size and three-segment checks of a compact JWS; returns the index of its second dot. */
function splitCompactJws(token: string, maxBytes: number): number {
  if (token.length > maxBytes) throw new VerificationError('ERR_MALFORMED', `token is larger than ${maxBytes} bytes`)
  const first = token.indexOf('.')
  const second = token.indexOf('.', first + 1)
  if (first <= 0 || second === -1 || token.indexOf('.', second + 1) !== -1) {
    throw new VerificationError('ERR_MALFORMED', 'token is not a compact JWS of three segments')
  }
  return second
}

// One buffer for bytes used only within one synchronous call: a JWT payload decoded then read as text,
// a signing input handed to node:crypto's one-shot verify. A Buffer per call was ~2.5 KB of native
// memory per verification, freed only after V8's next collection. Grows to the largest token seen, up
// to SCRATCH_KEPT_MAX (3 × a default 64 KiB token's signing input): a larger input (a caller's own
// maxBytes, or a JWS given to verifyJwsSignature) gets a buffer of its own, not kept, so that one huge
// input does not hold its memory for the life of the process.
const SCRATCH_KEPT_MAX = 3 * DEFAULT_MAX_TOKEN_BYTES
let scratch = Buffer.allocUnsafeSlow(4096)
function scratchOf(bytes: number): Buffer {
  if (scratch.length >= bytes) return scratch
  if (bytes > SCRATCH_KEPT_MAX) return Buffer.allocUnsafeSlow(bytes)
  scratch = Buffer.allocUnsafeSlow(Math.min(Math.max(bytes, scratch.length * 2), SCRATCH_KEPT_MAX))
  return scratch
}
/** The scratch buffer's size in bytes (tests). Internal: not exported from index.ts. */
export const scratchBytesKept = (): number => scratch.length

/**
 * Decodes a base64url segment into the scratch buffer with base64urlDecode's rules (canonical
 * unpadded base64url, else ERR_MALFORMED with its messages); returns the bytes decoded (a view of it). Node's
 * decoder reads any text (it skips foreign characters, takes `+/` and padding), so the text is
 * checked by encoding the bytes back: only canonical unpadded base64url gives itself again. That costs
 * less than the character expression over a link's payload (~ 0.3 against 0.6 µs for 1,260
 * characters, CPU time); a mismatch runs the expression to throw the same error as before.
 */
function decodeIntoScratch(segment: string, what: string): Buffer {
  const bytes = scratchOf(Math.ceil((segment.length * 3) / 4))
  const length = bytes.write(segment, 0, 'base64url')
  if (bytes.toString('base64url', 0, length) !== segment) {
    checkBase64url(segment, what)
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid unpadded base64url`)
  }
  return bytes.subarray(0, length)
}

// Headers repeat: every credential of an issuer's key has the same one, every proof of a client too.
// The checked, frozen header is kept by its exact text (a bounded map, emptied when full), so that a
// repeated header costs a lookup instead of a base64url decode, a UTF-8 decode and a JSON parse.
const HEADERS = new Map<string, JwsHeader>()
const MAX_HEADERS = 64
const MAX_HEADER_CHARS = 1024

/**
 * The checked header of a compact JWS, `segment` its first part. Frozen (it may be shared). Without
 * `cache`, the header is neither looked up nor kept: for headers that do not repeat (a proof of
 * possession names its agent's new key), where the lookup and the copy kept are wasted.
 */
function decodeHeader(segment: string, cache = true): JwsHeader {
  const known = cache ? HEADERS.get(segment) : undefined
  if (known !== undefined) return known
  // The segment decoded once (decodeJsonSegment's base64url, UTF-8 and JSON rules), read by the
  // template below when it has signJwt's shape, else by the strict JSON parser.
  const bytes = decodeIntoScratch(segment, 'JWS header')
  const simple = templateHeader(bytes.toString('latin1'))
  if (simple !== undefined) {
    if (cache) rememberHeader(segment, simple)
    return simple
  }
  const header = parseStrictJsonObject(decodeUtf8Strict(bytes, 'JWS header'), HEADER_OPTIONS) as JwsHeader
  if (header.alg !== 'EdDSA') {
    throw new VerificationError('ERR_UNSUPPORTED_ALG', 'only alg EdDSA is accepted', { details: { alg: typeof header.alg === 'string' ? header.alg : null } })
  }
  if ('crit' in header) throw new VerificationError('ERR_MALFORMED', 'JWS header crit extensions are not supported')
  if ('b64' in header) throw new VerificationError('ERR_MALFORMED', 'unencoded JWS payloads are not supported')
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new VerificationError('ERR_MALFORMED', 'JWS header kid is not a string')
  if (header.typ !== undefined && typeof header.typ !== 'string') throw new VerificationError('ERR_MALFORMED', 'JWS header typ is not a string')
  deepFreeze(header)
  if (cache) rememberHeader(segment, header)
  return header
}

function rememberHeader(segment: string, header: JwsHeader): void {
  if (segment.length > MAX_HEADER_CHARS) return
  if (HEADERS.size >= MAX_HEADERS) HEADERS.clear()
  // A copy of the key: `segment` is a slice that would keep the whole token alive.
  HEADERS.set(Buffer.from(segment, 'latin1').toString('latin1'), header)
}

const HEADER_OPTIONS = { what: 'JWS header', maxDepth: 4 }

// The header signJwt writes, `{"alg":"EdDSA","typ":"<typ>","kid":"<kid>"}` (or without typ), read
// from its bytes without the UTF-8 decoder, JSON.parse and the duplicate-member walk: a link signed
// by a new agent names that agent's new key, so its header is never in the cache above (7 of the 8
// headers of a cold depth-8 delegation chain). Only text that every strict rule accepts, with one
// reading, takes this path: the exact member names in this order (no duplicate), string values of
// printable ASCII without `"` or `\` (no escape, no control character, no surrogate, valid UTF-8 as
// it is ASCII), no whitespace. JSON.parse of such text gives exactly { alg, typ, kid } with those
// strings, and the checks of decodeHeader all pass for it. Anything else returns undefined and is
// read by the strict path.
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/

function templateHeader(text: string): JwsHeader | undefined {
  if (!text.startsWith('{"alg":"EdDSA","') || !text.endsWith('"}')) return undefined
  let at = 16
  let typ: string | undefined
  if (text.startsWith('typ":"', at)) {
    const end = text.indexOf('"', at + 6)
    // `","kid":"` must follow the typ string.
    if (end === -1 || !text.startsWith(',"', end + 1)) return undefined
    typ = text.slice(at + 6, end)
    if (!PLAIN_STRING.test(typ)) return undefined
    at = end + 3
  }
  if (!text.startsWith('kid":"', at)) return undefined
  // The kid string runs to the closing `"}` (it holds no `"`).
  const kid = text.slice(at + 6, text.length - 2)
  if (at + 6 > text.length - 2 || !PLAIN_STRING.test(kid)) return undefined
  return Object.freeze(typ === undefined ? { alg: 'EdDSA', kid } : { alg: 'EdDSA', typ, kid })
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const key in value) if (Object.hasOwn(value, key)) deepFreeze((value as Record<string, unknown>)[key])
}

const PAYLOAD_OPTIONS = { what: 'JWT payload', maxDepth: MAX_JWT_PAYLOAD_DEPTH }

/**
 * Decodes a compact JWS whose payload must be a JSON object (duplicate members refused). Not verified.
 * Its checked header is kept in a small cache of repeated headers (an issuer's tokens all carry the
 * same one); `cacheHeader` false skips that cache for a token whose header is unlikely to repeat (signed
 * by a new agent, whose kid names its own new key): a miss there costs a look-up, a copy and an insert
 * on top of the decoding, about a third more than decoding alone. Same checks either way.
 * @example
 * decodeJwt(linkSignedByANewAgent, DEFAULT_MAX_TOKEN_BYTES, false)
 */
export function decodeJwt(token: unknown, maxBytes = DEFAULT_MAX_TOKEN_BYTES, cacheHeader = true): DecodedJwt {
  return decodeJwtHeaderCached(token, maxBytes, cacheHeader !== false)
}

/**
 * {@link decodeJwt}, its header kept in the cache of repeated headers or not (`cacheHeader` false:
 * a token whose header does not repeat, a proof of possession). Internal: not exported from index.ts.
 */
export function decodeJwtHeaderCached(token: unknown, maxBytes: number, cacheHeader: boolean): DecodedJwt {
  // decodeCompactJws's checks in its order, the payload decoded into the scratch buffer (only its text is kept).
  if (typeof token !== 'string') notAString()
  const second = splitCompactJws(token, maxBytes)
  const first = token.indexOf('.')
  const header = decodeHeader(token.slice(0, first), cacheHeader)
  const payloadBytes = decodeIntoScratch(token.slice(first + 1, second), 'JWS payload')
  const signature = base64urlDecode(token.slice(second + 1), 'JWS signature')
  if (signature.length !== 64) throw new VerificationError('ERR_SIGNATURE_INVALID', 'an Ed25519 signature is 64 bytes')
  const text = decodeUtf8Strict(payloadBytes, 'JWT payload')
  const payload = parseStrictJsonObject(text, PAYLOAD_OPTIONS)
  return { header, payload, signingInput: token.slice(0, second), signature }
}

/**
 * Checks the Ed25519 signature of a decoded JWS with node:crypto; throws ERR_SIGNATURE_INVALID.
 * The key must be an Ed25519 public key: the algorithm comes from the key, never from the token.
 * Given as an OKP JWK (`crv: 'Ed25519'`), node:crypto imports it for this one check without making a
 * KeyObject: for a key used once (a new agent's did:key), that object is most of the import's cost.
 */
export function verifyJwsSignature(jws: Pick<DecodedJws, 'signingInput' | 'signature'>, publicKey: KeyObject | Ed25519PublicJwk): void {
  checkJwsSignature(jws, ed25519VerifyKey(publicKey, 'verifyJwsSignature'), nodeCryptoVerify)
}

/**
 * {@link verifyJwsSignature} under a raw 32-byte Ed25519 public key (as a did:key holds it), with
 * libsodium where its addon loads (about 0.6 of node:crypto's cost, no key import), else node:crypto:
 * see {@link ed25519Backend}. The same checks and errors; a key that is not 32 bytes is a TypeError.
 * @example
 * verifyJwsSignatureRaw(decodeJwt(token), decodeDidKey(did).publicKey)
 */
export function verifyJwsSignatureRaw(jws: Pick<DecodedJws, 'signingInput' | 'signature'>, publicKey: Uint8Array): void {
  if (!(publicKey instanceof Uint8Array) || byteLengthOf(publicKey) !== 32) throw new TypeError('verifyJwsSignatureRaw: an Ed25519 public key is 32 bytes')
  // The backend loaded before the signing input fills the scratch buffer: the first load runs module
  // code (and any module-load hook of the process), which may verify another JWS and refill it.
  ed25519Backend()
  checkJwsSignature(jws, publicKey, ed25519VerifyRaw)
}

type NodeVerifyKey = KeyObject | { key: JsonWebKey; format: 'jwk' }
const nodeCryptoVerify = (data: Buffer, signature: Uint8Array, key: NodeVerifyKey): boolean => cryptoVerify(null, data, key, signature)

/**
 * The checks both synchronous forms share, in their order: the signature read once (before the signing
 * input fills the scratch buffer: a getter could refill it), the input as ASCII bytes, the signature as
 * 64 bytes without a small-order R, then `verify` (node:crypto or the raw-key backend), its throw or
 * false made ERR_SIGNATURE_INVALID.
 */
function checkJwsSignature<K>(jws: Pick<DecodedJws, 'signingInput' | 'signature'>, key: K, verify: (data: Buffer, signature: Uint8Array, key: K) => boolean): void {
  const read: unknown = jws.signature
  const data = asciiSigningInput(jws.signingInput)
  const signature = checkedSignature(read)
  let ok = false
  try {
    ok = verify(data, signature, key)
  } catch (cause) {
    throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature check failed', { cause })
  }
  if (!ok) throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature does not verify')
}

/**
 * The signing input's bytes in the scratch buffer, for a synchronous one-shot verify (the buffer is
 * not reused before it returns); ERR_MALFORMED unless it is an ASCII string. Written whole as UTF-8,
 * the input takes exactly its length in bytes only when it is ASCII (any other UTF-16 unit takes two
 * bytes or more): one pass instead of Buffer.byteLength's and then a latin1 copy (~ 0.09 against
 * 0.25 µs for a delegation link's 1,450 characters, CPU time). Room for the whole text (3 bytes per
 * unit at most) is needed: a write stops before a character that does not fit, so into exactly
 * `length` bytes, 'é' × n + 'a' × n wrote n 'é's - `length` bytes - and passed as ASCII.
 */
function asciiSigningInput(input: unknown): Buffer {
  if (typeof input !== 'string') notAscii()
  const bytes = scratchOf(3 * input.length)
  const written = bytes.write(input, 0, 'utf8')
  if (written !== input.length) notAscii()
  return bytes.subarray(0, written)
}

function isKeyObject(key: unknown): key is KeyObject {
  return key instanceof KeyObject
}

/** The key as node:crypto's verify takes it: a KeyObject as is, a public OKP JWK imported by verify itself. */
function ed25519VerifyKey(publicKey: KeyObject | Ed25519PublicJwk, caller: string): KeyObject | { key: JsonWebKey; format: 'jwk' } {
  if (isKeyObject(publicKey)) {
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`${caller}: an Ed25519 public key is required`)
    return publicKey
  }
  if (publicKey === null || typeof publicKey !== 'object' || publicKey.kty !== 'OKP' || publicKey.crv !== 'Ed25519' || typeof publicKey.x !== 'string' || 'd' in publicKey) {
    throw new TypeError(`${caller}: an Ed25519 public key is required`)
  }
  return { key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.x }, format: 'jwk' }
}

function notAscii(): never {
  throw new VerificationError('ERR_MALFORMED', 'JWS signing input is not ASCII')
}

// Buffer's 'ascii'/'latin1' encodings keep only the low byte of each code unit ("\u0161" would check
// as "a"): a signing input is base64url and dots, so anything outside ASCII cannot be one. A string
// is ASCII exactly when its whole UTF-8 form has as many bytes as it has code units (the rule of
// verifyJwsSignature's scratch write too): one conversion, checked and used.
function signingInputBytes(signingInput: unknown): Buffer {
  if (typeof signingInput !== 'string') notAscii()
  const bytes = Buffer.from(signingInput, 'utf8')
  if (bytes.length !== signingInput.length) notAscii()
  return bytes
}

/**
 * A JWS's signature as its caller read it, once (a getter read twice could give the R check one value
 * and the equation another; read after the signing input, it could verify another JWS and so refill
 * the scratch buffer under it), checked to be a Uint8Array (node:crypto reads the bytes of any view,
 * sodium-native a typed array's first 64, hasSmallOrderR only a Uint8Array: a Uint16Array took
 * R = identity past it) whose R is not of small order (libsodium's strict verification, before the
 * cofactorless equation). Else ERR_SIGNATURE_INVALID.
 */
function checkedSignature(read: unknown): Uint8Array {
  if (!(read instanceof Uint8Array)) throw new VerificationError('ERR_SIGNATURE_INVALID', 'the signature is not bytes (a Uint8Array)')
  // One in shared memory is copied first (the engine's view): another thread could rewrite R between
  // the hash and the comparison that both read it, and R1 hashed with R2 = [S]B - [k]A compared is a
  // forgery under any key (node:crypto's sync verify reads it in place).
  const signature = isArrayBuffer(bufferOf(read)) ? read : new Uint8Array(read)
  if (hasSmallOrderR(signature)) throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature R is a small-order point', { details: { reason: 'small-order R' } })
  return signature
}

const verifyOnPool = promisify(
  cryptoVerify as (alg: null, data: Buffer, key: KeyObject | { key: JsonWebKey; format: 'jwk' }, sig: Uint8Array, cb: (e: Error | null, ok: boolean) => void) => void,
)

/**
 * Same check as {@link verifyJwsSignature}, run on libuv's thread pool (node:crypto's callback form):
 * a server verifying many signatures at once keeps its event loop free for everything else. As there,
 * a key used once is best given as its JWK (no KeyObject is made for it).
 */
export async function verifyJwsSignatureAsync(jws: Pick<DecodedJws, 'signingInput' | 'signature'>, publicKey: KeyObject | Ed25519PublicJwk): Promise<void> {
  const key = ed25519VerifyKey(publicKey, 'verifyJwsSignatureAsync')
  const read: unknown = jws.signature // once, before the signing input fills the scratch buffer
  const data = signingInputBytes(jws.signingInput)
  const signature = checkedSignature(read)
  let ok = false
  try {
    ok = await verifyOnPool(null, data, key, signature)
  } catch (cause) {
    throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature check failed', { cause })
  }
  if (!ok) throw new VerificationError('ERR_SIGNATURE_INVALID', 'signature does not verify')
}

/**
 * Decodes and verifies a compact EdDSA JWS in one call.
 * @example
 * const { payload } = verifyCompactJws(token, publicKey)
 */
export function verifyCompactJws(token: unknown, publicKey: KeyObject, maxBytes = DEFAULT_MAX_TOKEN_BYTES): DecodedJws {
  const jws = decodeCompactJws(token, maxBytes)
  verifyJwsSignature(jws, publicKey)
  return jws
}
