import { createHash, createPrivateKey, sign } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { AGENTID_CONTEXT_V1, AgentIdError, generateEd25519KeyPair, signerFromJwk, signJwt, VC_CONTEXT_V1, VerificationError, type Ed25519KeyPair } from '@agentid/core'
import {
  appendHop,
  argsDigest,
  createReceipt,
  credentialHash,
  CustodyCursor,
  custodyStep,
  decodeEntry,
  decodeLineage,
  entryHash,
  httpArgs,
  httpCommand,
  initialCustody,
  mcpCommand,
  mcpTarget,
  splitLineage,
} from '@agentid/lineage'
import { describe, expect, it } from 'vitest'

const issuerKey = generateEd25519KeyPair()
const issuer = signerFromJwk(issuerKey.privateJwk)
const agents = Array.from({ length: 9 }, () => generateEd25519KeyPair())

// A credential of realistic size: long status URL, the claims the issuer writes.
function credential(agent: Ed25519KeyPair, index: number): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did, sub: agent.did, nbf: 1_800_000_000, iat: 1_800_000_000, exp: 1_800_003_600, jti: `urn:uuid:6f1c2d3e-4b5a-4c6d-8e7f-${String(index).padStart(12, '0')}`,
    vc: {
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      credentialSubject: { id: agent.did, purpose: 'payments', controller: 'did:web:acme.example', model: { name: 'reasoner', version: '2026-10' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' },
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(100_000 + index), statusListCredential: 'https://issuer.acme.example/v1/status-lists/0b7c9a52-3f7e-4d1e-9a57-2f0e3c1d9b44' },
    },
  }, issuer)
}

const clock = () => 1_800_000_100_000

describe('lineage format', () => {
  // Typical text per hop: target 39, command 35, user 24, status URL 80 characters (178 in all), a
  // callee, a delegation hash: 8 hops take ~8,150 bytes. Each hop is ~780 bytes + 4/3 of its text
  // (the README states it).
  async function eightHops(host: (i: number) => string, user: string): Promise<string> {
    let lineage: string | undefined
    for (let i = 0; i < 8; i++) {
      lineage = await appendHop(lineage, {
        signer: signerFromJwk(agents[i]!.privateJwk), credential: await credential(agents[i]!, i), clock,
        target: `https://${host(i)}/api`, callee: agents[i + 1]!.did,
        command: httpCommand('POST', `https://${host(i)}/api/v1/transactions/${i}/approve`),
        args: { amount: 1234.5, currency: 'EUR', invoice: `INV-2026-${i}` }, user,
        delegationChain: ['a.b.c'], ...(i === 0 ? { origin: 'request', originKind: 'request' } : {}),
      })
    }
    return lineage!
  }

  it('8 hops fit in 8 KiB in header form (typical targets, commands, user, status URL, delegation hash)', async () => {
    const lineage = await eightHops((i) => `svc-${i}.payments.acme.example`, 'user-7f3a9c@acme.example')
    expect(lineage.split('~')).toHaveLength(8)
    expect(Buffer.byteLength(lineage)).toBeLessThanOrEqual(8192)
    expect(decodeLineage(lineage).map((e) => e.claims.idx)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    // The bound is a matter of text: each character of target, command, user or status URL costs 4/3
    // byte per hop. 25 more characters per hop (in the host, which target and command both name) do not fit.
    const longer = await eightHops((i) => `svc-${i}.${'p'.repeat(12)}.payments.acme.example`, 'user-7f3a9c@acme.example')
    expect(Buffer.byteLength(longer)).toBeGreaterThan(8192)
  })

  it('refuses to build a lineage the verifier limits would refuse: entries, bytes, entry size', async () => {
    const [a, b] = agents
    const hop = (signer: Ed25519KeyPair, i: number, callee: Ed25519KeyPair, extra: Record<string, unknown> = {}) => async (lineage?: string) =>
      appendHop(lineage, { signer: signerFromJwk(signer.privateJwk), credential: await credential(signer, i), target: 'https://t.example', callee: callee.did, command: 'GET /x', clock, ...extra })
    // Two agents handing custody back and forth: a 16th entry is accepted, a 17th is refused before it is signed into a call.
    let lineage: string | undefined
    for (let i = 0; i < 16; i++) lineage = await hop(i % 2 === 0 ? a! : b!, i % 2, i % 2 === 0 ? b! : a!)(lineage)
    expect(splitLineage(lineage)).toHaveLength(16)
    const tooMany = await hop(a!, 0, b!)(lineage).catch((e: unknown) => e)
    expect(tooMany).toBeInstanceOf(AgentIdError)
    expect(tooMany).toMatchObject({ code: 'ERR_INVALID_INPUT', details: { reason: 'too-many-entries' } })
    // The same with the callee's own, smaller limits.
    await expect(hop(a!, 0, b!, { limits: { maxEntries: 2 } })(await hop(b!, 1, a!)(await hop(a!, 0, b!)()))).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { reason: 'too-many-entries' } })
    // One hop over the per-entry limit (target and command each within their 2,048 characters): refused, where it used to be handed out.
    await expect(hop(a!, 0, b!, { target: `https://${'t'.repeat(1900)}.example`, command: `GET /${'x'.repeat(1900)}` })()).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { reason: 'entry-too-large' } })
    // Over the whole-lineage byte limit.
    await expect(hop(b!, 1, a!, { limits: { maxBytes: 1_500 } })(await hop(a!, 0, b!)())).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { reason: 'too-large' } })
    // A receipt that would make the lineage too long is refused the same way.
    const call = await hop(a!, 0, b!)()
    await expect(createReceipt(call, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), output: {}, clock, limits: { maxEntries: 1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })

  it('chains each entry to the previous one by hash, in one transaction', async () => {
    const [a, b] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', callee: b!.did, command: 'GET /x', clock })
    const l1 = await appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: mcpTarget('erp', 'invoices.read'), command: mcpCommand('tools/call', 'invoices.read'), args: { id: 1 }, clock })
    const [e0, e1] = decodeLineage(l1)
    expect(e1!.claims.prv).toBe(entryHash(l0))
    expect(e1!.claims.txn).toBe(e0!.claims.txn)
    expect(e1!.claims.crd).toBe(credentialHash(await credential(b!, 1)))
    expect(e0!.claims.prv).toBe(createHash('sha256').update(e0!.claims.txn).digest('base64url'))
    expect(e1).toMatchObject({ kind: 'hop', claims: { aud: 'mcp://erp/invoices.read', cmd: 'tools/call invoices.read', iss: b!.did } })
    // b's hop named no callee: a receipt cannot be signed, nothing can follow.
    await expect(createReceipt(l1, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), output: {}, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(appendHop(l1, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: 'x', command: 'y', clock })).rejects.toBeInstanceOf(AgentIdError)
  })

  it('refuses to build on a lineage the signer does not hold, or with another agent\'s credential', async () => {
    const [a, b, c] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', callee: b!.did, command: 'GET /x', clock })
    await expect(appendHop(l0, { signer: signerFromJwk(c!.privateJwk), credential: await credential(c!, 2), target: 'https://t', command: 'GET /', clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(c!, 2), target: 'https://t', command: 'GET /', clock })).rejects.toBeInstanceOf(TypeError)
    await expect(appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: 'https://t', command: 'GET /', user: 'someone', clock })).resolves.toContain('~')
    await expect(appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://t', command: 'GET /\u0000', clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://t', command: 'GET /', ttlSec: 301, clock })).rejects.toBeInstanceOf(TypeError)
  })

  it('splitLineage checks the limits before decoding', () => {
    const code = (f: () => unknown) => { try { f() } catch (e) { return [(e as VerificationError).code, (e as VerificationError).details.reason] } return null }
    expect(code(() => splitLineage('a'.repeat(16_385)))).toEqual(['ERR_MALFORMED', 'too-large'])
    expect(code(() => splitLineage('a.b.c\n'))).toEqual(['ERR_MALFORMED', 'charset'])
    expect(code(() => splitLineage(Array(17).fill('a').join('~')))).toEqual(['ERR_MALFORMED', 'too-many-entries'])
    expect(code(() => splitLineage('a~~b'))).toEqual(['ERR_MALFORMED', 'empty-entry'])
    expect(code(() => splitLineage('a'.repeat(4097)))).toEqual(['ERR_MALFORMED', 'entry-too-large'])
    expect(code(() => decodeLineage('a.b.c'))).toEqual(['ERR_MALFORMED', 'jws'])
  })

  it('decodes an entry\'s payload as strict UTF-8: invalid bytes are refused, not replaced by U+FFFD', async () => {
    const [a] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', command: 'GET /x', user: 'user-1', clock })
    const claims = decodeLineage(l0)[0]!.claims as unknown as Record<string, unknown>
    // The same claims with usr holding the byte 0xff, signed by the actor: only the decoding can refuse it.
    const json = Buffer.from(JSON.stringify({ ...claims, usr: 'user-X' }))
    json[json.indexOf('user-X') + 5] = 0xff
    const input = `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'agentid-hop+jwt' })).toString('base64url')}.${json.toString('base64url')}`
    const token = `${input}.${sign(null, Buffer.from(input), createPrivateKey({ key: a!.privateJwk as never, format: 'jwk' })).toString('base64url')}`
    // Decoded leniently, it would read as user-\ufffd.
    expect(JSON.parse(json.toString('utf8')).usr).toBe('user-\ufffd')
    let error: unknown
    try { decodeEntry(token, 0) } catch (e) { error = e }
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).details).toMatchObject({ hop: 0, reason: 'json' })
  })

  it('CustodyCursor applies custodyStep\'s rules without copying, and a refused step changes nothing', async () => {
    const [a, b, c] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', callee: b!.did, command: 'GET /x', clock })
    const l1 = await appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: 'https://c.example', callee: c!.did, command: 'GET /y', clock })
    const [e0, e1] = decodeLineage(l1)
    const cursor = new CustodyCursor()
    cursor.step(e0!)
    const before = cursor.snapshot()
    // e0 again: index 0 where 1 is expected; the cursor is where it was.
    expect(() => cursor.step(e0!)).toThrow(expect.objectContaining({ code: 'ERR_LINEAGE_BROKEN', details: expect.objectContaining({ reason: 'index' }) }))
    expect(cursor.snapshot()).toEqual(before)
    cursor.step(e1!)
    const after = cursor.snapshot()
    expect(after).toEqual(custodyStep(before, e1!))
    expect(after).toMatchObject({ next: 2, last: e1!.hash, holder: c!.did })
    expect([...after.jtis]).toEqual([e0!.claims.jti, e1!.claims.jti])
    // Snapshots are the cursor's copies: stepping on does not change one taken before.
    expect(before.next).toBe(1)
    expect(before.jtis.size).toBe(1)
    expect(Object.isFrozen(after)).toBe(true)
  })
})

describe('lineage decoding and custody, fast paths', () => {
  const reasonOf = (f: () => unknown): [string, unknown, unknown] => {
    try {
      f()
    } catch (e) {
      const v = e as VerificationError
      return [v.code, v.details.reason, v.details.hop]
    }
    return ['accepted', null, null]
  }

  it('a header seen before skips only its own decoding: payload, signature and structure are checked on every entry', async () => {
    const [a] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', command: 'GET /x', user: 'user-1', clock })
    const first = decodeEntry(l0, 0)
    const again = decodeEntry(l0, 3)
    expect(again.claims).toEqual(first.claims)
    expect(again.header).toEqual({ alg: 'EdDSA', typ: 'agentid-hop+jwt' })
    const [h, p, sig] = l0.split('.') as [string, string, string]
    // Same (known) header, broken rest: refused as before, naming the entry.
    expect(reasonOf(() => decodeEntry(`${h}.${p}.${sig.slice(0, -2)}`, 2))).toEqual(['ERR_SIGNATURE_INVALID', 'jws', 2])
    expect(reasonOf(() => decodeEntry(`${h}.${p}.${sig}.x`, 2))).toEqual(['ERR_MALFORMED', 'jws', 2])
    expect(reasonOf(() => decodeEntry(`${h}.${p}`, 2))).toEqual(['ERR_MALFORMED', 'jws', 2])
    expect(reasonOf(() => decodeEntry(`${h}.${p}=.${sig}`, 2))).toEqual(['ERR_MALFORMED', 'jws', 2])
    expect(reasonOf(() => decodeEntry(`${h}.${p.slice(0, -1)}${p.endsWith('A') ? 'B' : 'A'}.${sig}`, 2))[2]).toBe(2)
    expect(reasonOf(() => decodeEntry(l0, 1, l0.length - 1))).toEqual(['ERR_MALFORMED', 'jws', 1])
    // Headers that fail a check are never taken as known: refused every time.
    const extra = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'agentid-hop+jwt', x: 1 })).toString('base64url')
    const other = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' })).toString('base64url')
    for (let i = 0; i < 2; i++) {
      expect(reasonOf(() => decodeEntry(`${extra}.${p}.${sig}`, 0))).toEqual(['ERR_MALFORMED', 'jws', 0])
      expect(reasonOf(() => decodeEntry(`${other}.${p}.${sig}`, 0))).toEqual(['ERR_MALFORMED', 'typ', 0])
    }
  })

  it('CustodyCursor resumed from a state refuses that state\'s jtis and leaves the state as it was', async () => {
    const [a, b, c] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', callee: b!.did, command: 'GET /x', clock })
    const l1 = await appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: 'https://c.example', callee: c!.did, command: 'GET /y', clock })
    const [e0, e1] = decodeLineage(l1)
    const start = new CustodyCursor()
    start.step(e0!)
    start.step(e1!)
    const state = start.snapshot()
    // The next entry as custody reads it (no signature here): signed by c, with e0's jti.
    const next = (jti: string) => ({ kind: 'hop' as const, index: 2, hash: 'h'.repeat(43), claims: { ...(e1!.claims as object), idx: 2, prv: e1!.hash, iss: c!.did, jti, sub: undefined } as never })
    const resumed = new CustodyCursor(state)
    expect(() => resumed.step(next(e0!.claims.jti))).toThrow(expect.objectContaining({ details: expect.objectContaining({ reason: 'duplicate-jti', hop: 2 }) }))
    resumed.step(next('a-fresh-jti-0123456789'))
    expect(resumed.currentHolder).toBe('')
    expect([...resumed.snapshot().jtis]).toEqual([e0!.claims.jti, e1!.claims.jti, 'a-fresh-jti-0123456789'])
    expect([...state.jtis]).toEqual([e0!.claims.jti, e1!.claims.jti])
    expect(state.next).toBe(2)
  })

  it('CustodyCursor resumed from a state answers that state\'s open calls without changing it', async () => {
    const [a, b, c] = agents
    const l0 = await appendHop(undefined, { signer: signerFromJwk(a!.privateJwk), credential: await credential(a!, 0), target: 'https://b.example', callee: b!.did, command: 'GET /x', clock })
    const l1 = await appendHop(l0, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), target: 'https://c.example', callee: c!.did, command: 'GET /y', clock })
    const r1 = await createReceipt(l1, { signer: signerFromJwk(c!.privateJwk), credential: await credential(c!, 2), output: { y: 1 }, clock })
    const r2 = await createReceipt(r1, { signer: signerFromJwk(b!.privateJwk), credential: await credential(b!, 1), output: { x: 1 }, clock })
    const [e0, e1, e2, e3] = decodeLineage(r2)
    let folded = initialCustody()
    for (const e of [e0!, e1!]) folded = custodyStep(folded, e)
    const resumed = new CustodyCursor(folded)
    resumed.step(e2!) // c answers b: the innermost open call, from the state resumed
    expect(resumed.currentHolder).toBe(b!.did)
    resumed.step(e3!) // b answers a
    expect(resumed.currentHolder).toBe(a!.did)
    const after = resumed.snapshot()
    expect(after).toEqual(custodyStep(custodyStep(folded, e2!), e3!))
    expect(after.open).toEqual([])
    // The state resumed from still has both calls open, and a cursor on it answers them again.
    expect(folded.open.map((o) => o.index)).toEqual([0, 1])
    const again = new CustodyCursor(folded)
    expect(() => again.step(e3!)).toThrow(expect.objectContaining({ details: expect.objectContaining({ reason: 'index' }) }))
    again.step(e2!)
    expect(again.snapshot().open.map((o) => o.index)).toEqual([0])
  })
})

describe('argsDigest (RFC 8785)', () => {
  const dir = new URL('../../../vectors/jcs/cyberphone/', import.meta.url)
  for (const file of readdirSync(new URL('input/', dir))) {
    it(`canonicalizes ${file} as the cyberphone vectors say`, () => {
      const input = JSON.parse(readFileSync(new URL(`input/${file}`, dir), 'utf8'))
      const output = readFileSync(new URL(`output/${file}`, dir))
      expect(argsDigest(input)).toBe(createHash('sha256').update(output).digest('base64url'))
    })
  }

  it('is independent of member order; undefined is null; refuses what is not JSON or too deep', () => {
    expect(argsDigest({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe(argsDigest({ a: [1, { c: 3, d: 2 }], b: 1 }))
    expect(argsDigest(undefined)).toBe(argsDigest(null))
    expect(argsDigest({ a: 1, b: undefined })).toBe(argsDigest({ a: 1 }))
    for (const bad of [NaN, Infinity, 1n, () => 1, new Date(0), Symbol('x'), { a: new Map() }]) {
      expect(() => argsDigest(bad)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
    }
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = { a: deep }
    expect(() => argsDigest(deep)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
  })

  it('httpCommand and httpArgs: the same value from the caller\'s text and the service\'s parsed body', () => {
    expect(httpCommand('post', 'https://pay.example/v1/a/../charges?x=1')).toBe('POST /v1/charges')
    const url = 'https://pay.example/v1/charges?dry=1'
    expect(httpArgs(url, '{"amount":100}')).toEqual({ query: 'dry=1', body: { amount: 100 } })
    expect(argsDigest(httpArgs(url, '{ "amount" : 100 }'))).toBe(argsDigest(httpArgs(url, { amount: 100 })))
    expect(argsDigest(httpArgs(url, Buffer.from('{"amount":100}')))).toBe(argsDigest(httpArgs(url, { amount: 100 })))
    expect(httpArgs('https://pay.example/', 'not json')).toEqual({ body: { sha256: createHash('sha256').update('not json').digest('base64url') } })
    expect(httpArgs('https://pay.example/', '')).toEqual({})
    expect(httpArgs('https://pay.example/', new URLSearchParams({ a: '1' }))).toEqual({ body: { sha256: createHash('sha256').update('a=1').digest('base64url') } })
  })

  it('httpArgs: two different bodies never share a digest (text a JSON parser reads lossily or ambiguously is hashed as bytes)', () => {
    const url = 'https://pay.example/v1/transfers'
    const bytes = (text: string | Uint8Array) => ({ body: { sha256: createHash('sha256').update(text).digest('base64url') } })
    const digest = (body: string | Uint8Array) => argsDigest(httpArgs(url, body))
    // Each pair: two bodies a decimal or big-integer parser (Python, Go json.Number, BigDecimal, a body
    // forwarded as is) reads as different values, that JSON.parse reads as one.
    const pairs: [string | Uint8Array, string | Uint8Array][] = [
      ['{"to":12345678901234567891}', '{"to":12345678901234567892}'],
      ['{"amount":9007199254740993}', '{"amount":9007199254740992}'],
      ['{"amount":0.10000000000000000001}', '{"amount":0.1}'],
      ['{"amount":1e400}', '{"amount":2e400}'],
      ['{"amount":1,"amount":1000}', '{"amount":1000}'],
      ['{"amount":1000,"amount":1}', '{"amount":1}'],
      [Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), Buffer.from([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xfe, 0x22, 0x7d])],
    ]
    for (const [a, b] of pairs) {
      expect(digest(a), String(a)).not.toBe(digest(b))
      expect(httpArgs(url, a), String(a)).toEqual(bytes(a))
    }
    // Exact numbers in any spelling stay JSON values (caller's text and the service's parsed body agree).
    for (const text of ['{"amount":1000}', '{"amount":1e3}', '{"amount":1000.0}', '{"amount":0.1}', '{"amount":-0}', '{"amount":-0.0e5}', '{"amount":1e21}', '{"amount":25000000000000000000000e-23}', '{"amount":9007199254740991}', '{"a":[1.5e-7,"1e400",{"b":-12.50}]}', '"\\u00e9"']) {
      expect(httpArgs(url, text), text).toEqual({ body: JSON.parse(text) })
    }
  })
})
