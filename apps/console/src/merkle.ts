// Checks the console makes itself, in the browser, on what the issuer's log serves (no trust in the
// issuer's say-so): the checkpoint's signature by the log key the console pinned the first time it
// looked (C2SP signed note, Ed25519 through WebCrypto), and an RFC 9162 §2.1.4.2 consistency proof
// from the checkpoint it saw last to the latest one. Pure functions over WebCrypto (browser or Node).

export interface Checkpoint { origin: string; size: number; rootHash: Uint8Array; text: string }

const subtle = () => globalThis.crypto.subtle
const enc = new TextEncoder()

export function b64decode(text: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error('not base64')
  const bin = atob(text)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export function b64encode(bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin)
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { all.set(p, o); o += p.length }
  return new Uint8Array(await subtle().digest('SHA-256', all))
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])
const NODE = new Uint8Array([1])
const children = (l: Uint8Array, r: Uint8Array) => sha256(NODE, l, r)

/**
 * RFC 9162 §2.1.4.2: true when `proof` shows that the tree of `size1` leaves with root `root1` is a
 * prefix of the tree of `size2` leaves with root `root2`.
 */
export async function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): Promise<boolean> {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size1 > size2) return false
  if (size1 === size2) return proof.length === 0 && equal(root1, root2)
  if (size1 === 0) return proof.length === 0
  if (proof.some((p) => p.length !== 32) || proof.length === 0 || proof.length > 128) return false
  // A power of two tested by arithmetic: bitwise operators truncate to 32 bits (2^32 + 1 passed for one).
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof]
  // Sizes up to 2^53: shifts through BigInt-free division.
  let fn = size1 - 1
  let sn = size2 - 1
  const odd = (n: number) => n % 2 === 1
  const half = (n: number) => Math.floor(n / 2)
  while (odd(fn)) { fn = half(fn); sn = half(sn) }
  let fr = path[0]!
  let sr = path[0]!
  for (const c of path.slice(1)) {
    if (sn === 0) return false
    if (odd(fn) || fn === sn) {
      fr = await children(c, fr)
      sr = await children(c, sr)
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn) }
    } else {
      sr = await children(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2)
}

function isPowerOfTwo(n: number): boolean {
  let m = n
  while (m > 1 && m % 2 === 0) m /= 2
  return m === 1
}

/**
 * A signed note's text (with its final newline) and signature block, or undefined. The text ends at
 * the note's last blank line, not its first (C2SP signed-note: "the text is separated from the
 * signatures by the last empty line in the note"), as @agentid/tlog and every other verifier read it.
 */
export function splitNote(note: string): { text: string; signatures: string } | undefined {
  const split = note.lastIndexOf('\n\n')
  if (split < 0) return undefined
  return { text: note.slice(0, split + 1), signatures: note.slice(split + 2) }
}

/** The checkpoint body of a signed note (origin, size, root hash); throws on anything else. */
export function parseCheckpointNote(note: string): Checkpoint {
  const text = splitNote(note)?.text
  if (text === undefined) throw new Error('not a signed note')
  const [origin, size, root, ...rest] = text.slice(0, -1).split('\n')
  if (!origin || !size || !/^(0|[1-9][0-9]{0,15})$/.test(size) || !root) throw new Error('not a checkpoint')
  // Extension lines are never empty (C2SP tlog-checkpoint): a blank line is not a checkpoint's.
  if (rest.some((line) => line === '')) throw new Error('not a checkpoint')
  const rootHash = b64decode(root)
  if (rootHash.length !== 32) throw new Error('not a checkpoint')
  return { origin, size: Number(size), rootHash, text }
}

/**
 * True when `note` carries a valid Ed25519 signature line by the C2SP verifier key `vkey`
 * (`<name>+<hex key id>+<base64(0x01 || public key)>`) over its text.
 */
export async function verifyNoteSignature(note: string, vkey: string): Promise<boolean> {
  // <name>+<id>+<key>: the key is base64, which may itself hold '+'.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44})$/.exec(vkey)
  if (!m) return false
  const [, name, idHex, keyB64] = m as unknown as [string, string, string, string]
  const key = b64decode(keyB64)
  if (key.length !== 33 || key[0] !== 0x01) return false
  const id = (await sha256(enc.encode(`${name}\n`), key)).slice(0, 4)
  if (Array.from(id, (b) => b.toString(16).padStart(2, '0')).join('') !== idHex) return false
  const parts = splitNote(note)
  if (!parts) return false
  const { text } = parts
  const publicKey = await subtle().importKey('raw', key.slice(1), { name: 'Ed25519' }, false, ['verify'])
  for (const line of parts.signatures.split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line)
    if (!m || m[1] !== name) continue
    let sig: Uint8Array
    try { sig = b64decode(m[2]!) } catch { continue }
    if (sig.length !== 68 || !equal(sig.slice(0, 4), id)) continue
    if (await subtle().verify({ name: 'Ed25519' }, publicKey, sig.slice(4), enc.encode(text))) return true
  }
  return false
}
