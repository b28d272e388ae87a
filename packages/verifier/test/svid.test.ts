// SVID primitives: SPIFFE bundles, the X.509-SVID shape (go-spiffe's TestParse table) and JWT-SVIDs
// (the JWT-SVID.md cases of vectors/spiffe/jwt-wit-svid.derived.json), each with hostile inputs.
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { base64urlEncode, VerificationError } from '@agentid/core'
import { parseSpiffeBundle, parseX509Svid, verifyJwtSvid, verifyX509SvidChain } from '@agentid/verifier'

const dir = new URL('../../../vectors/spiffe/', import.meta.url)
const read = (name: string) => readFileSync(new URL(name, dir))

function code(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError)
    return (error as VerificationError).code
  }
  return undefined
}

const es256 = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const jwk = (k: KeyObject) => k.export({ format: 'jwk' })
const bundleDoc = (keys: unknown[]) => ({ keys, spiffe_sequence: 1, spiffe_refresh_hint: 300 })
const jwtBundle = parseSpiffeBundle(bundleDoc([{ use: 'jwt-svid', kid: 'k1', ...jwk(es256.publicKey) }]), 'example.org')

describe('parseSpiffeBundle', () => {
  it('reads x509-svid and jwt-svid keys and ignores other uses', () => {
    const intermediate = read('go-spiffe-x509svid/good-leaf-and-intermediate.pem').toString().split('-----END CERTIFICATE-----')[1]!
    const der = Buffer.from(intermediate.replace(/-----BEGIN CERTIFICATE-----|\s/g, ''), 'base64')
    const b = parseSpiffeBundle(JSON.stringify(bundleDoc([
      { use: 'x509-svid', kty: 'EC', x5c: [der.toString('base64')] },
      { use: 'jwt-svid', kid: 'k1', ...jwk(es256.publicKey) },
      { use: 'something-else', kid: 'x' },
    ])), 'example.org')
    expect(b.x509Authorities).toHaveLength(1)
    expect([...b.jwtAuthorities.keys()]).toEqual(['k1'])
    expect(b.sequence).toBe(1)
  })

  it('refuses malformed bundles', () => {
    const pk = jwk(es256.publicKey)
    for (const bad of [
      '[]', '{"keys":{}}', '{"keys":[1]}', '{"keys":[],"keys":[]}', 'x'.repeat(1024 * 1024 + 1),
      bundleDoc([{ use: 'x509-svid', x5c: [] }]),
      bundleDoc([{ use: 'x509-svid', x5c: ['AAAA'] }]),
      bundleDoc([{ use: 'x509-svid', x5c: [read('go-spiffe-x509svid/good-leaf-only.pem').toString().replace(/-----[A-Z ]+-----|\s/g, '')] }]), // a leaf, not a CA
      bundleDoc([{ use: 'jwt-svid', ...pk }]),
      bundleDoc([{ use: 'jwt-svid', kid: 'a', ...pk }, { use: 'jwt-svid', kid: 'a', ...pk }]),
      bundleDoc([{ use: 'jwt-svid', kid: 'a', ...jwk(es256.privateKey) }]),
      bundleDoc([{ use: 'jwt-svid', kid: 'a', kty: 'oct', k: 'AAAA' }]),
      bundleDoc([{ use: 'jwt-svid', kid: 'a', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }]),
    ]) expect(code(() => parseSpiffeBundle(bad as never, 'example.org')), JSON.stringify(bad).slice(0, 80)).toBe('ERR_MALFORMED')
    expect(code(() => parseSpiffeBundle(bundleDoc([]), 'Example.org'))).toBe('ERR_MALFORMED')
  })
})

describe('parseX509Svid: go-spiffe TestParse (vectors/spiffe/x509svid-parse.expected.json)', () => {
  const table = JSON.parse(read('x509svid-parse.expected.json').toString()) as {
    cases: { name: string; certs_file: string; valid: boolean; spiffe_id?: string; num_certs?: number; error_contains?: string }[]
  }
  // agentid takes no private key (TLS proves possession): the key-only cases do not apply.
  const cases = table.cases.filter((c) => !c.error_contains?.includes('private key'))

  it('covers the certificate cases', () => expect(cases).toHaveLength(14))
  for (const c of cases) {
    it(c.name, () => {
      const input = read(`go-spiffe-x509svid/${c.certs_file}`).toString('latin1')
      if (c.valid) {
        const svid = parseX509Svid(input)
        expect(svid.spiffeId.id).toBe(c.spiffe_id)
        expect(svid.chain).toHaveLength(c.num_certs!)
        expect(svid.credential).toBeNull()
      } else {
        expect(code(() => parseX509Svid(input))).toBe('ERR_MALFORMED')
      }
    })
  }

  it('refuses garbage, too many certificates and non-certificate inputs', () => {
    const leaf = read('go-spiffe-x509svid/good-leaf-only.pem').toString()
    expect(code(() => parseX509Svid([]))).toBe('ERR_MALFORMED')
    expect(code(() => parseX509Svid(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])))).toBe('ERR_MALFORMED')
    expect(code(() => parseX509Svid(leaf.repeat(6)))).toBe('ERR_MALFORMED')
    expect(code(() => parseX509Svid(42 as never))).toBe('ERR_MALFORMED')
    expect(code(() => parseX509Svid(new Uint8Array(40 * 1024)))).toBe('ERR_MALFORMED')
  })

  it('verifyX509SvidChain: a go-spiffe leaf is not trusted by a bundle of another CA or another trust domain', () => {
    const leafAndIntermediate = read('go-spiffe-x509svid/good-leaf-and-intermediate.pem').toString()
    const intermediate = leafAndIntermediate.split('-----END CERTIFICATE-----')[1]!
    const der = Buffer.from(intermediate.replace(/-----BEGIN CERTIFICATE-----|\s/g, ''), 'base64')
    const own = parseSpiffeBundle(bundleDoc([{ use: 'x509-svid', x5c: [der.toString('base64')] }]), 'example.org')
    const leafOnly = leafAndIntermediate.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n'
    const t = Date.parse(parseX509Svid(leafOnly).leaf.validFrom) / 1000 + 1
    expect(code(() => verifyX509SvidChain(leafOnly, parseSpiffeBundle(bundleDoc([]), 'example.org'), { now: t }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(code(() => verifyX509SvidChain(leafOnly, parseSpiffeBundle(bundleDoc([{ use: 'x509-svid', x5c: [der.toString('base64')] }]), 'example.com'), { now: t }))).toBe('ERR_UNTRUSTED_ISSUER')
    // The chain verifies to the intermediate (its signer) when it is the bundle's authority, within its validity.
    const checked = (() => { try { return verifyX509SvidChain(leafOnly, own, { now: t }) } catch (e) { return e as VerificationError } })()
    if (checked instanceof VerificationError) expect(['ERR_EXPIRED', 'ERR_NOT_YET_VALID', 'ERR_SIGNATURE_INVALID', 'ERR_UNTRUSTED_ISSUER']).toContain(checked.code)
    else expect(checked.spiffeId.id).toBe('spiffe://example.org/workload-1')
  })
})

// ---- JWT-SVIDs ----------------------------------------------------------------------------------

interface JwtCase { id: string; header: Record<string, unknown>; claims: Record<string, unknown>; validator_audience: string; now: number; expected: 'accept' | 'reject' }
const jwtCases = (JSON.parse(read('jwt-wit-svid.derived.json').toString()) as { jwt_svid_cases: JwtCase[] }).jwt_svid_cases
const ed = generateKeyPairSync('ed25519')

function signed(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject = es256.privateKey): string {
  const input = `${base64urlEncode(JSON.stringify(header))}.${base64urlEncode(JSON.stringify(claims))}`
  const alg = header.alg
  let sig: Buffer
  if (alg === 'none') sig = Buffer.alloc(0)
  else if (alg === 'HS256') sig = createHmac('sha256', 'secret').update(input).digest()
  else if (alg === 'EdDSA') sig = sign(null, Buffer.from(input), ed.privateKey)
  else sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${base64urlEncode(sig)}`
}

describe('verifyJwtSvid: JWT-SVID.md cases (vectors/spiffe/jwt-wit-svid.derived.json)', () => {
  it('has the 14 cases', () => expect(jwtCases).toHaveLength(14))
  for (const c of jwtCases) {
    it(`${c.id}: ${c.expected}`, () => {
      const run = () => verifyJwtSvid(signed(c.header, c.claims), jwtBundle, { audience: c.validator_audience, now: c.now, clockSkewSec: 0 })
      if (c.expected === 'accept') expect(run().spiffeId.id).toBe(c.claims.sub)
      else expect(code(run)).toMatch(/^ERR_/)
    })
  }

  const ok = { sub: 'spiffe://example.org/agent/o/z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', aud: 'svc', exp: 2_000_000_000, iat: 1_999_999_900 }
  const now = 1_999_999_950
  const head = { alg: 'ES256', kid: 'k1', typ: 'JWT' }

  it('gives the agent DID of an agentid SPIFFE ID', () => {
    expect(verifyJwtSvid(signed(head, ok), jwtBundle, { audience: 'svc', now }).did).toBe('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK')
  })

  it('names each failure with its code', () => {
    const v = (token: unknown, audience = 'svc', t = now) => code(() => verifyJwtSvid(token, jwtBundle, { audience, now: t }))
    expect(v(signed(head, ok), 'other')).toBe('ERR_AUDIENCE_MISMATCH')
    expect(v(signed(head, ok), 'svc', ok.exp)).toBe('ERR_EXPIRED')
    expect(v(signed(head, { ...ok, sub: 'spiffe://other.org/agent/o/z6Mk' }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(v(signed(head, { ...ok, sub: 'spiffe://example.org/agent/../x' }))).toBe('ERR_MALFORMED')
    expect(v(signed(head, ok, other.privateKey))).toBe('ERR_SIGNATURE_INVALID')
    expect(v(signed({ ...head, kid: 'k2' }, ok))).toBe('ERR_KEY_MISMATCH')
    expect(v(signed({ ...head, alg: 'ES384' }, ok))).toBe('ERR_SIGNATURE_INVALID') // an ES256 key cannot make ES384
    expect(v(signed({ ...head, alg: 'RS256' }, ok))).toBe('ERR_SIGNATURE_INVALID')
    expect(v(signed(head, { ...ok, nbf: now + 100 }))).toBe('ERR_NOT_YET_VALID')
    expect(v(signed(head, { ...ok, aud: [] }))).toBe('ERR_MALFORMED')
    expect(v(signed(head, { ...ok, aud: [1] }))).toBe('ERR_MALFORMED')
    expect(v(signed(head, { ...ok, exp: '2000000000' }))).toBe('ERR_MALFORMED')
    expect(v(signed({ ...head, crit: ['exp'] }, ok))).toBe('ERR_MALFORMED')
    expect(v(signed(head, ok).replace(/\.[^.]+$/, '.'))).toBe('ERR_SIGNATURE_INVALID')
    expect(v('a.b')).toBe('ERR_MALFORMED')
    expect(v(42)).toBe('ERR_MALFORMED')
    expect(v('x'.repeat(20_000))).toBe('ERR_MALFORMED')
    expect(() => verifyJwtSvid(signed(head, ok), jwtBundle, { audience: '', now })).toThrow(TypeError)
  })
})
