// One pass over the JSON payload of an entry as appendHop and createReceipt write it (JSON.stringify
// of the claims: no whitespace, ASCII strings without escapes), checking each claim as it is read and
// building the claims object that the strict path (parseStrictJsonObject, then parseHopClaims or
// parseReceiptClaims) builds from the same text. Whatever it does not read is left to the strict path,
// which accepts or refuses it as always: escapes, whitespace, text outside printable ASCII, numbers
// other than short non-negative integers, a member twice, an unknown member, a claim out of shape. So
// it accepts a subset of what the strict path accepts, with the same result, and changes no outcome or
// error; it saves the generic parse, the duplicate walk, the surrogate scans and a regular expression
// per claim on every new entry a verifier sees.
import { isWellFormedDid } from './dids.js'
import type { HopClaims, ReceiptClaims } from './format.js'

// Claims by bit.
const TXN = 0, IDX = 1, PRV = 2, ISS = 3, CRD = 4, STS = 5, IAT = 6, EXP = 7, JTI = 8
const AUD = 9, SUB = 10, CMD = 11, ARG = 12, DLG = 13, USR = 14, ORI = 15, APR = 16
const HOP = 17, OUT = 18, RES = 19
const NAMES = ['txn', 'idx', 'prv', 'iss', 'crd', 'sts', 'iat', 'exp', 'jti', 'aud', 'sub', 'cmd', 'arg', 'dlg', 'usr', 'ori', 'apr', 'hop', 'out', 'res']
const COMMON = (1 << TXN) | (1 << IDX) | (1 << PRV) | (1 << ISS) | (1 << CRD) | (1 << STS) | (1 << IAT) | (1 << EXP) | (1 << JTI)
const HOP_REQUIRED = COMMON | (1 << AUD) | (1 << CMD) | (1 << ARG)
const HOP_ALLOWED = HOP_REQUIRED | (1 << SUB) | (1 << DLG) | (1 << USR) | (1 << ORI) | (1 << APR)
const RECEIPT_REQUIRED = COMMON | (1 << HOP) | (1 << OUT) | (1 << RES)

// A three-letter lower-case member name -> its claim + 1 (0: not a claim).
const CLAIM_OF = new Uint8Array(26 * 26 * 26)
NAMES.forEach((name, id) => {
  CLAIM_OF[(name.charCodeAt(0) - 97) * 676 + (name.charCodeAt(1) - 97) * 26 + (name.charCodeAt(2) - 97)] = id + 1
})

// Characters each kind of string claim may hold, by bit (printable ASCII only: anything else, `"`
// and `\` included, ends the scan or sends the entry to the strict path).
const B64 = 1 // [A-Za-z0-9_-]: SHA-256 digests, jti
const TXN_CHARS = 2 // [A-Za-z0-9._:-]: txn, ori
const RES_CHARS = 4 // [a-z0-9_-]: res
const TEXT = 8 // printable ASCII but `"` and `\`: aud, cmd, usr, DIDs (checked apart), sts[0]
const NO_SPACE = 16 // TEXT but the space: sts[0], a URL (\S)
const DIGIT = 32
const CHARS = new Uint8Array(128)
for (let c = 0x20; c < 0x7f; c++) {
  if (c === 0x22 || c === 0x5c) continue
  const ch = String.fromCharCode(c)
  let bits = TEXT
  if (c !== 0x20) bits |= NO_SPACE
  if (/[A-Za-z0-9_-]/.test(ch)) bits |= B64
  if (/[A-Za-z0-9._:-]/.test(ch)) bits |= TXN_CHARS
  if (/[a-z0-9_-]/.test(ch)) bits |= RES_CHARS
  if (/[0-9]/.test(ch)) bits |= DIGIT
  CHARS[c] = bits
}
// What each string claim's characters must be.
const CLASS_OF = new Uint8Array(NAMES.length)
for (const id of [PRV, CRD, ARG, DLG, APR, HOP, OUT, JTI]) CLASS_OF[id] = B64
for (const id of [TXN, ORI]) CLASS_OF[id] = TXN_CHARS
CLASS_OF[RES] = RES_CHARS
for (const id of [ISS, SUB, AUD, CMD, USR]) CLASS_OF[id] = TEXT

/** End (index of the closing quote) of the string starting after b[i - 1] = `"` whose characters all have `cls`, or -1. */
function stringEnd(b: Uint8Array, n: number, i: number, cls: number): number {
  for (; i < n; i++) {
    const c = b[i]!
    if (c === 0x22) return i
    if (c >= 0x80 || (CHARS[c]! & cls) === 0) return -1
  }
  return -1
}

function lengthOk(id: number, length: number): boolean {
  switch (id) {
    case PRV: case CRD: case ARG: case DLG: case APR: case HOP: case OUT: return length === 43
    case JTI: return length >= 16 && length <= 64
    case TXN: return length >= 8 && length <= 128
    case ORI: return length >= 1 && length <= 64
    case RES: return length >= 1 && length <= 32
    case USR: return length >= 1 && length <= 256
    default: return length >= 1 && length <= 2048 // aud, cmd; DIDs are checked apart
  }
}

/**
 * The claims of an entry's payload, or undefined when this reader leaves it to the strict path (see
 * above). The payload is read as its bytes `b[0..n)` (typed-array reads: cheaper than a string's) and
 * its values are cut from `s`, the same bytes as latin1 text (one character per byte). `hop`: the
 * entry's typ is a hop's (else a receipt's).
 */
export function scanEntryClaims(b: Uint8Array, n: number, s: string, hop: boolean): HopClaims | ReceiptClaims | undefined {
  if (n < 2 || s.length !== n || b[0] !== 0x7b || b[n - 1] !== 0x7d) return undefined
  const values: (string | undefined)[] = [] // string claims by id
  let url = ''
  let index = ''
  let idx = 0
  let iat = 0
  let exp = 0
  let seen = 0
  let i = 1
  // Reads past n (b may be a larger buffer) can only lead to `return undefined`: every read is of an
  // index at most n + 1, and nothing past n - 1 is accepted (the closing brace must be at n - 1).
  for (;;) {
    // A member name: "xyz":
    if (i + 6 > n || b[i] !== 0x22 || b[i + 4] !== 0x22 || b[i + 5] !== 0x3a) return undefined
    const x = b[i + 1]! - 97
    const y = b[i + 2]! - 97
    const z = b[i + 3]! - 97
    if (x < 0 || x > 25 || y < 0 || y > 25 || z < 0 || z > 25) return undefined
    const id = CLAIM_OF[x * 676 + y * 26 + z]! - 1
    if (id < 0 || (seen & (1 << id)) !== 0) return undefined
    seen |= 1 << id
    i += 6
    if (id === IDX || id === IAT || id === EXP) {
      // A non-negative integer of at most 15 digits (exact as a double), no leading zero.
      const start = i
      let value = 0
      for (; i < n; i++) {
        const d = b[i]! - 48
        if (d < 0 || d > 9) break
        value = value * 10 + d
      }
      const digits = i - start
      if (digits === 0 || digits > 15 || (digits > 1 && b[start] === 0x30)) return undefined
      if (id === IDX) idx = value
      else if (id === IAT) iat = value
      else exp = value
    } else if (id === STS) {
      // ["http(s)://...","index"]
      if (b[i] !== 0x5b || b[i + 1] !== 0x22) return undefined
      const urlEnd = stringEnd(b, n, i + 2, NO_SPACE)
      const length = urlEnd - (i + 2)
      if (urlEnd === -1 || length > 2048) return undefined
      url = s.slice(i + 2, urlEnd)
      if (!(url.startsWith('http://') ? length > 7 : url.startsWith('https://') && length > 8)) return undefined
      if (b[urlEnd + 1] !== 0x2c || b[urlEnd + 2] !== 0x22) return undefined
      const indexEnd = stringEnd(b, n, urlEnd + 3, DIGIT)
      const digits = indexEnd - (urlEnd + 3)
      if (indexEnd === -1 || digits < 1 || digits > 10 || (digits > 1 && b[urlEnd + 3] === 0x30)) return undefined
      if (b[indexEnd + 1] !== 0x5d) return undefined
      index = s.slice(urlEnd + 3, indexEnd)
      i = indexEnd + 2
    } else {
      if (b[i] !== 0x22) return undefined
      const end = stringEnd(b, n, i + 1, CLASS_OF[id]!)
      if (end === -1) return undefined
      const value = s.slice(i + 1, end)
      if (id === ISS || id === SUB) {
        if (!isWellFormedDid(value)) return undefined
      } else if (!lengthOk(id, end - i - 1) || (id === RES && !(b[i + 1]! >= 0x61 && b[i + 1]! <= 0x7a))) {
        return undefined
      }
      values[id] = value
      i = end + 1
    }
    const next = b[i]
    if (next === 0x2c) {
      i++
      continue
    }
    if (next === 0x7d && i === n - 1) break
    return undefined
  }
  if (hop ? (seen & HOP_REQUIRED) !== HOP_REQUIRED || (seen & ~HOP_ALLOWED) !== 0 : seen !== RECEIPT_REQUIRED) return undefined
  if (exp <= iat || exp - iat > 300) return undefined // MAX_ENTRY_LIFETIME_SEC
  // Member by member in the strict path's order (commonClaims, then parseHopClaims or parseReceiptClaims),
  // so both give objects of one shape.
  const claims: Record<string, unknown> = {
    txn: values[TXN],
    idx,
    prv: values[PRV],
    iss: values[ISS],
    crd: values[CRD],
    sts: [url, index],
    iat,
    exp,
    jti: values[JTI],
  }
  if (hop) {
    claims.aud = values[AUD]
    if (values[SUB] !== undefined) claims.sub = values[SUB]
    claims.cmd = values[CMD]
    claims.arg = values[ARG]
    if (values[DLG] !== undefined) claims.dlg = values[DLG]
    if (values[USR] !== undefined) claims.usr = values[USR]
    if (values[ORI] !== undefined) claims.ori = values[ORI]
    if (values[APR] !== undefined) claims.apr = values[APR]
    return claims as unknown as HopClaims
  }
  claims.hop = values[HOP]
  claims.out = values[OUT]
  claims.res = values[RES]
  return claims as unknown as ReceiptClaims
}
