// The one-pass claims reader (claims-scan.ts) against the strict path it stands in for: whatever it
// accepts, the strict path accepts with the same claims (same members, same order); it accepts the
// payloads appendHop and createReceipt write; everything else is left to the strict path.
import { generateEd25519KeyPair, parseStrictJsonObject } from '@agentid/core'
import { describe, expect, it } from 'vitest'
import { scanEntryClaims } from '../src/claims-scan.js'
import { parseHopClaims, parseReceiptClaims } from '../src/format.js'

const dids = Array.from({ length: 3 }, () => generateEd25519KeyPair().did)

// A small deterministic generator (xorshift), so a failure can be replayed.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
function b64(r: () => number, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += B64[Math.floor(r() * 64)]
  return s
}

function hopClaims(r: () => number): Record<string, unknown> {
  const iat = 1_800_000_000 + Math.floor(r() * 1000)
  const c: Record<string, unknown> = {
    txn: `txn-${b64(r, 12)}`, idx: Math.floor(r() * 16), prv: b64(r, 43), iss: dids[0], crd: b64(r, 43),
    sts: [`https://issuer.example/v1/status-lists/${b64(r, 8)}`, String(Math.floor(r() * 100000))],
    iat, exp: iat + 1 + Math.floor(r() * 300), jti: b64(r, 22), aud: 'https://svc.example', cmd: 'POST /v1/pay', arg: b64(r, 43),
  }
  if (r() < 0.7) c.sub = dids[1]
  if (r() < 0.3) c.dlg = b64(r, 43)
  if (r() < 0.6) c.usr = `user-${Math.floor(r() * 100)}`
  if (r() < 0.3) c.ori = 'request'
  if (r() < 0.2) c.apr = b64(r, 43)
  return c
}

function receiptClaims(r: () => number): Record<string, unknown> {
  const iat = 1_800_000_000 + Math.floor(r() * 1000)
  return {
    txn: `txn-${b64(r, 12)}`, idx: 1 + Math.floor(r() * 15), prv: b64(r, 43), iss: dids[2], crd: b64(r, 43),
    sts: ['http://status.example/1', '7'], iat, exp: iat + 60, jti: b64(r, 16), hop: b64(r, 43), out: b64(r, 43), res: 'ok',
  }
}

function strict(text: string, hop: boolean): { claims?: unknown; error?: unknown } {
  try {
    const payload = parseStrictJsonObject(text, { what: 'lineage entry', maxDepth: 3 })
    return { claims: hop ? parseHopClaims(payload, 0) : parseReceiptClaims(payload, 0) }
  } catch (error) {
    return { error }
  }
}

// Same members with the same values in the same order.
const same = (a: unknown, b: unknown) => expect(JSON.stringify(a)).toBe(JSON.stringify(b))

// As decodeEntry calls it: the payload's UTF-8 bytes in a larger buffer (stale bytes after them), and
// those bytes as latin1 text.
const buffer = Buffer.alloc(8192, '}')
function scan(text: string, hop: boolean) {
  const length = buffer.write(text, 0, 'utf8')
  buffer.fill(',"', length)
  return scanEntryClaims(buffer, length, buffer.toString('latin1', 0, length), hop)
}

function check(text: string, hop: boolean): 'scanned' | 'left' {
  const scanned = scan(text, hop)
  if (scanned === undefined) return 'left'
  const reference = strict(text, hop)
  expect(reference.error, text).toBeUndefined()
  same(scanned, reference.claims)
  expect(Object.keys(scanned)).toEqual(Object.keys(reference.claims as object))
  return 'scanned'
}

// Mutations that keep or break validity in the ways JSON and the claim rules care about.
const INSERTS = [' ', '\n', '\\', '"', ',', ':', '{', '}', '[', ']', '0', '1', '-', '.', 'e', 'a', 'é', '\u0000', '\u007f', '\ud800', '\u202e', '/', '~']
function mutate(r: () => number, text: string): string {
  const at = Math.floor(r() * text.length)
  switch (Math.floor(r() * 5)) {
    case 0: return text.slice(0, at) + INSERTS[Math.floor(r() * INSERTS.length)] + text.slice(at)
    case 1: return text.slice(0, at) + text.slice(at + 1)
    case 2: return text.slice(0, at) + INSERTS[Math.floor(r() * INSERTS.length)] + text.slice(at + 1)
    case 3: {
      // A member repeated (a duplicate), or an unknown one.
      const m = /"[a-z]{3}":("[^"]*"|[0-9]+|\[[^\]]*\])/.exec(text.slice(at))
      return m ? `${text.slice(0, -1)},${r() < 0.5 ? m[0] : m[0].replace(/^"[a-z]{3}"/, '"zzz"')}}` : text
    }
    default: return text.slice(0, at) + text.slice(at, at + 8).toUpperCase() + text.slice(at + 8)
  }
}

describe('scanEntryClaims (one-pass claims reader)', () => {
  it('reads what appendHop and createReceipt write, as the strict path does', () => {
    const r = rng(1)
    for (let i = 0; i < 500; i++) {
      expect(check(JSON.stringify(hopClaims(r)), true)).toBe('scanned')
      expect(check(JSON.stringify(receiptClaims(r)), false)).toBe('scanned')
    }
  })

  it('leaves to the strict path what it does not read, and never accepts more than it', () => {
    const r = rng(2)
    let left = 0
    for (let i = 0; i < 20_000; i++) {
      const hop = r() < 0.7
      let text = JSON.stringify(hop ? hopClaims(r) : receiptClaims(r))
      const rounds = 1 + Math.floor(r() * 3)
      for (let k = 0; k < rounds; k++) text = mutate(r, text)
      if (check(text, hop) === 'left') left++
    }
    expect(left).toBeGreaterThan(10_000) // most mutations break something
  })

  it('leaves escapes, whitespace, non-ASCII text and other numbers to the strict path', () => {
    const base = hopClaims(rng(3))
    const text = JSON.stringify(base)
    const cases = [
      text.replace('"aud":"https://svc.example"', '"aud":"https:\\/\\/svc.example"'), // an escape: same value
      text.replace(',"cmd"', ', "cmd"'), // whitespace
      text.replace('"POST /v1/pay"', '"POST /v1/pày"'), // non-ASCII text
      text.replace(/"idx":\d+/, '"idx":1.0'), // another number form
      text.replace(/"idx":\d+/, '"idx":01'),
      text.replace('{', '{"txn":"duplicate-1",'), // a member twice
      text.replace('"aud"', '"\\u0061ud"'), // an escaped member name
      text.replace('"POST /v1/pay"', '"POST /v1/pay\\u202e"'), // refused by the strict path
    ]
    for (const t of cases) expect(check(t, true), t).toBe('left')
    // The strict path still reads the escaped forms as it always did.
    same(strict(cases[0]!, true).claims, strict(text, true).claims)
    expect(strict(cases[5]!, true).error).toBeDefined()
  })

  it('does not read a hop as a receipt or a receipt as a hop', () => {
    const r = rng(4)
    expect(check(JSON.stringify(hopClaims(r)), false)).toBe('left')
    expect(check(JSON.stringify(receiptClaims(r)), true)).toBe('left')
  })
})
