// Red-team tests of verifyLineage's fast paths (memoized prefixes, their actors' standing, the replay
// cache): each compares with what a cold verifier (the strict path) answers for the same input.
import { encodeDidKey, generateEd25519KeyPair, signCompactJws, signerFromJwk, StatusList, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { appendHop, argsDigest, createReceipt, credentialHash, custodyStep, decodeEntry, decodeLineage, HOP_TYP, initialCustody, RECEIPT_TYP, type AppendHopOptions, type CustodyState } from '@agentid/lineage'
import { delegate, type Capability } from '@agentid/delegation'
import { createVerifier, type Verifier, type VerifierOptions, type VerifyLineageOptions } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const carol = generateEd25519KeyPair()
const signers = { alice: signerFromJwk(alice.privateJwk), bob: signerFromJwk(bob.privateJwk), carol: signerFromJwk(carol.privateJwk) }
const INDEX = { alice: '1', bob: '2', carol: '3' } as const
type Name = keyof typeof signers

const B = 'https://b.example'
const C = 'https://c.example'
const TOOL = 'https://tool.example'
const LAST = { audience: TOOL, command: 'POST /charges', args: { amount: 100, currency: 'EUR' } }

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let creds: Record<Name, string>

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 3_600_000, ...extra })
}

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
  clock = testClock()
  // Credentials valid from long before NOW: only the entries' own times matter below.
  creds = {
    alice: await credential({ sub: alice.did, index: INDEX.alice, nbf: NOW - 3600 }),
    bob: await credential({ sub: bob.did, index: INDEX.bob, nbf: NOW - 3600 }),
    carol: await credential({ sub: carol.did, index: INDEX.carol, nbf: NOW - 3600 }),
  }
})

function hop(name: Name, o: Omit<AppendHopOptions, 'signer' | 'credential'>): AppendHopOptions {
  return { signer: signers[name], credential: creds[name], clock, ...o }
}

/** alice → B (bob) → C (carol): the prefix carol receives. */
async function prefix(): Promise<string> {
  const l0 = await appendHop(undefined, hop('alice', { target: B, callee: bob.did, command: 'POST /plan', args: { goal: 'pay' }, user: 'user-1', origin: 'req', originKind: 'request' }))
  return appendHop(l0, hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: { invoice: 42 } }))
}

async function outcome(p: Promise<unknown>): Promise<{ code: VerificationErrorCode; hop: unknown; reason: unknown } | 'accepted'> {
  const error = await p.then(() => undefined, (e: unknown) => e)
  if (error === undefined) return 'accepted'
  expect(error).toBeInstanceOf(VerificationError)
  const v = error as VerificationError
  return { code: v.code, hop: v.details.hop, reason: v.details.reason }
}

function verify(v: Verifier, lineage: string, o: Partial<VerifyLineageOptions> = {}) {
  return v.verifyLineage(lineage, { ...LAST, credentials: [creds.alice, creds.bob, creds.carol], ...o })
}

describe('verifyLineage red team: memoized prefixes', () => {
  it('a memoized prefix is not served once the clock stands before its entries (clock stepped back): refused as a cold verifier refuses it', async () => {
    const l1 = await prefix() // entries issued at NOW
    const warm = make()
    // carol's service verifies the call to it: l1 is memoized whole (its last hop names carol).
    await verify(warm, l1, { audience: C, command: 'POST /pay', args: { invoice: 42 }, self: carol.did })
    // The clock steps back 90 s (NTP): the entries of l1 are now issued 90 s in the future, past the 60 s skew.
    clock.set((NOW - 90) * 1000)
    // carol's hop, by her (also stepped back) clock: 30 s before l1's entries, within the skew of the time order.
    const next = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, clock: () => (NOW - 30) * 1000 }))
    const cold = await outcome(verify(make(), next))
    expect(cold).toEqual({ code: 'ERR_NOT_YET_VALID', hop: 0, reason: 'issued-in-the-future' })
    expect(await outcome(verify(warm, next))).toEqual(cold)
    // Once the clock is back, the same workflow resumes from the memo.
    clock.set(NOW * 1000)
    const later = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    expect(await outcome(verify(warm, later))).toBe('accepted')
  })

  it('two verifications of the same lineage at once: exactly one is accepted (with and without offloaded signatures)', async () => {
    for (const offloadSignatures of [false, true]) {
      const v = make({ offloadSignatures })
      const l1 = await prefix()
      const call = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
      const results = await Promise.all([verify(v, call), verify(v, call), verify(v, call)].map(outcome))
      expect(results.filter((r) => r === 'accepted')).toHaveLength(1)
      expect(results.filter((r) => r !== 'accepted')).toEqual([
        { code: 'ERR_REPLAY', hop: 2, reason: 'replay' },
        { code: 'ERR_REPLAY', hop: 2, reason: 'replay' },
      ])
      // And warm: the prefix memoized, two siblings' copies raced again.
      const again = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
      const warm = await Promise.all([verify(v, again), verify(v, again)].map(outcome))
      expect(warm.filter((r) => r === 'accepted')).toHaveLength(1)
    }
  })
})

// Ed25519 group order L.
const L = (1n << 252n) + 27742317777372353535851937790883648493n
function le(n: bigint): Buffer {
  const out = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
  return out
}

describe('verifyLineage red team: signatures and keys', () => {
  it('refuses an entry whose signature is written another way (S + L; spare base64url bits), warm as cold', async () => {
    const l1 = await prefix()
    const call = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    const tokens = call.split('~')
    const [h, p, s] = tokens[2]!.split('.')
    const sig = Buffer.from(s!, 'base64url')
    let S = 0n
    for (let i = 31; i >= 0; i--) S = (S << 8n) | BigInt(sig[32 + i]!)
    const malleated = Buffer.concat([sig.subarray(0, 32), le(S + L)])
    tokens[2] = `${h}.${p}.${malleated.toString('base64url')}`
    expect(await outcome(verify(make(), tokens.join('~')))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', hop: 2 })
    // The same signature bytes in another base64url text (the last character's two spare bits set): the
    // memo key of a prefix is its last 22 characters, so a warm verifier must refuse it as a cold one does.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const spare = (segment: string) => `${segment.slice(0, -1)}${alphabet[alphabet.indexOf(segment.at(-1)!) + 1]}`
    const warm = make()
    await verify(warm, l1, { audience: C, command: 'POST /pay', args: { invoice: 42 }, self: carol.did })
    const e = call.split('~')
    const [h1, p1, s1] = e[1]!.split('.')
    const [h2, p2, s2] = e[2]!.split('.')
    for (const lineage of [`${e[0]}~${h1}.${p1}.${spare(s1!)}~${e[2]}`, `${e[0]}~${e[1]}~${h2}.${p2}.${spare(s2!)}`]) {
      const cold = await outcome(verify(make(), lineage))
      expect(cold).toMatchObject({ code: 'ERR_MALFORMED', reason: 'jws' })
      expect(await outcome(verify(warm, lineage))).toEqual(cold)
    }
  })

  it('refuses an entry "signed" by a did:key of small order (any signature with R = [S]B verifies under it) or whose key is no curve point, naming the entry', async () => {
    const l1 = await prefix()
    const entries = decodeLineage(l1)
    const last = entries[1]!
    // The identity point as a did:key: [S]B = R + [k]A holds for every message when A is the identity.
    const weak = encodeDidKey(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]))
    // A lineage whose hop 1 hands custody to that DID, then an entry "by" it.
    const claims = {
      txn: last.claims.txn, idx: 0, prv: entries[0]!.claims.prv, iss: weak, crd: credentialHash(creds.carol), sts: [LIST_URL, INDEX.carol],
      aud: TOOL, cmd: LAST.command, arg: argsDigest(LAST.args), iat: NOW, exp: NOW + 60, jti: 'weak-key-entry-0001',
    }
    const forger: Signer = { ...signers.carol, did: weak, keyId: `${weak}#${weak.slice(8)}`, sign: async () => Buffer.concat([BASE_POINT, le(1n)]) }
    const forged = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify(claims), forger)
    expect(await outcome(verify(make(), forged))).toMatchObject({ hop: 0, reason: 'signature' })
    // A did:key whose key is no curve point (y = 2 has no x): refused naming the entry, not an exception of node:crypto.
    const offCurve = encodeDidKey(Buffer.concat([Buffer.from([2]), Buffer.alloc(31)]))
    const byNoPoint = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify({ ...claims, iss: offCurve, jti: 'off-curve-entry-0001' }), { ...forger, did: offCurve })
    for (const offloadSignatures of [false, true]) expect(await outcome(verify(make({ offloadSignatures }), byNoPoint))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', hop: 0, reason: 'signature' })
  })
})

// The Ed25519 base point B (= [1]B), encoded.
const BASE_POINT = Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex')

describe('verifyLineage red team: header kid', () => {
  it('accepts only a kid naming the signer\'s own key (full or as a fragment); any other kid is refused naming the entry', async () => {
    const l1 = await prefix()
    const entries = decodeLineage(l1)
    const claims = {
      txn: entries[1]!.claims.txn, idx: 2, prv: entries[1]!.hash, iss: carol.did, crd: credentialHash(creds.carol), sts: [LIST_URL, INDEX.carol],
      aud: TOOL, cmd: LAST.command, arg: argsDigest(LAST.args), usr: 'user-1', iat: NOW, exp: NOW + 60, jti: '',
    }
    const multibase = carol.did.slice('did:key:'.length)
    let n = 0
    const withKid = (kid: string) => signCompactJws({ alg: 'EdDSA', typ: HOP_TYP, kid }, JSON.stringify({ ...claims, jti: `kid-test-entry-${String(++n).padStart(4, '0')}` }), signers.carol)
    const v = make()
    for (const kid of [`${carol.did}#${multibase}`, `#${multibase}`]) expect(await outcome(verify(v, `${l1}~${await withKid(kid)}`)), kid).toBe('accepted')
    for (const kid of ['', '#', `${alice.did}#${alice.did.slice(8)}`, `${carol.did}#other`, `${carol.did}`, `${carol.did}#${multibase}#`, multibase]) {
      expect(await outcome(verify(v, `${l1}~${await withKid(kid)}`)), kid).toMatchObject({ code: 'ERR_KEY_MISMATCH', hop: 2, reason: 'signer-key' })
    }
  })
})

describe('verifyLineage red team: separators', () => {
  it('an empty entry (leading ~, ~~, trailing ~) is refused naming its index, warm as cold', async () => {
    const l1 = await prefix()
    const call = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    const [e0, e1, e2] = call.split('~')
    const warm = make()
    await verify(warm, l1, { audience: C, command: 'POST /pay', args: { invoice: 42 }, self: carol.did })
    for (const [lineage, index] of [[`~${call}`, 0], [`${e0}~~${e1}~${e2}`, 1], [`${e0}~${e1}~~${e2}`, 2], [`${call}~`, 3], ['~', 0]] as const) {
      const cold = await outcome(verify(make(), lineage))
      expect(cold, lineage.slice(0, 20)).toEqual({ code: 'ERR_MALFORMED', hop: index, reason: 'empty-entry' })
      expect(await outcome(verify(warm, lineage))).toEqual(cold)
    }
  })
})

describe('verifyLineage red team: the credentials sent with a lineage', () => {
  it('an empty item in the credentials (`a~~b`, a leading or trailing ~) is no credential: the call verifies, or is refused naming the actor, never a TypeError', async () => {
    const l1 = await prefix()
    const call = () => appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    for (const credentials of [`${creds.alice}~~${creds.bob}~${creds.carol}`, `~${creds.alice}~${creds.bob}~${creds.carol}`, `${creds.alice}~${creds.bob}~${creds.carol}~`, [creds.alice, '', creds.bob, creds.carol]]) {
      expect(await outcome(verify(make(), await call(), { credentials }))).toBe('accepted')
    }
    // bob's credential missing, an empty item in its place: refused for hop 1, as without the empty item.
    expect(await outcome(verify(make(), await call(), { credentials: `${creds.alice}~~${creds.carol}` }))).toEqual({ code: 'ERR_LINEAGE_CREDENTIAL_MISSING', hop: 1, reason: 'credential-missing' })
  })
})

describe('verifyLineage red team: receipts answering calls of a memoized prefix (warm) answer as a cold verifier', () => {
  /** Signs the entry after `lineage` by hand: what a hostile actor holding its own key can make. */
  async function next(lineage: string, name: Name, o: Record<string, unknown>, typ = HOP_TYP): Promise<string> {
    // Decoded without the custody rules (decodeLineage's): a hostile lineage is built on as it is.
    const tokens = lineage.split('~')
    const last = decodeEntry(tokens[tokens.length - 1]!, tokens.length - 1)
    const entries = tokens
    const base = { txn: last.claims.txn, idx: entries.length, prv: last.hash, iss: signers[name].did, crd: credentialHash(creds[name]), sts: [LIST_URL, INDEX[name]], iat: NOW, exp: NOW + 60, jti: `rt-${name}-${Math.random().toString(36).slice(2)}-jti`.replace(/[^A-Za-z0-9_-]/g, '') }
    const claims = typ === HOP_TYP ? { ...base, aud: TOOL, cmd: LAST.command, arg: argsDigest(LAST.args), usr: 'user-1', ...o } : { ...base, out: argsDigest({ ok: true }), res: 'ok', ...o }
    return `${lineage}~${await signCompactJws({ alg: 'EdDSA', typ }, JSON.stringify(claims), signers[name])}`
  }

  it('the same outcome, entry and reason, warm and cold, for good and hostile receipts', async () => {
    const l1 = await prefix() // alice → B (bob) → C (carol), both calls open
    const [h0, h1] = decodeLineage(l1).map((e) => e.hash)
    const r2 = await createReceipt(l1, { signer: signers.carol, credential: creds.carol, output: { paid: true }, clock }) // carol answers bob
    const r3 = await createReceipt(r2, { signer: signers.bob, credential: creds.bob, output: { planned: true }, clock }) // bob answers alice
    const jtiOf = (l: string, i: number) => decodeLineage(l)[i]!.claims.jti
    const cases: Record<string, string> = {
      'bob calls the tool after carol answered': await next(r2, 'bob', {}),
      'alice calls the tool after both answered': await next(r3, 'alice', {}),
      'carol calls on after answering': await next(r2, 'carol', {}),
      'carol answers bob twice': await next(await next(r2, 'carol', { hop: h1 }, RECEIPT_TYP), 'bob', {}),
      'carol answers alice\'s call to bob': await next(await next(l1, 'carol', { hop: h0 }, RECEIPT_TYP), 'bob', {}),
      'bob answers his own call to carol': await next(await next(l1, 'bob', { hop: h1 }, RECEIPT_TYP), 'bob', {}),
      'a receipt when nothing is open': await next(await next(r3, 'alice', { hop: h0 }, RECEIPT_TYP), 'alice', {}),
      'a jti of the memoized prefix again': await next(r2, 'bob', { jti: jtiOf(l1, 0) }),
      'the receipt\'s jti again': await next(r2, 'bob', { jti: jtiOf(r2, 2) }),
      'another user after the receipts': await next(r3, 'alice', { usr: 'user-2' }),
    }
    for (const [name, lineage] of Object.entries(cases)) {
      const cold = await outcome(verify(make(), lineage))
      const warm = make()
      // carol's service verified the call to her: l1 is memoized whole, its two calls open.
      expect(await outcome(verify(warm, l1, { audience: C, command: 'POST /pay', args: { invoice: 42 }, self: carol.did })), name).toBe('accepted')
      expect(await outcome(verify(warm, lineage)), name).toEqual(cold)
    }
    expect(await outcome(verify(make(), cases['bob calls the tool after carol answered']!))).toBe('accepted')
  })
})

describe('verifyLineage red team: warm and cold, random continuations', () => {
  // A seeded walk (xorshift): lineages grown from a valid one by entries any of the three agents could sign,
  // right or wrong (custody, receipts, jti, idx, prv, user, time), each verified by a verifier that memoized a
  // prefix of it first (warm) and by a new one (cold): the same outcome, entry and reason.
  let seed = 0x9e3779b9
  const rand = (n: number) => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
    return (seed >>> 0) % n
  }
  const names: Name[] = ['alice', 'bob', 'carol']
  const pick = <T>(list: readonly T[]) => list[rand(list.length)]!

  async function grow(lineage: string): Promise<string> {
    const tokens = lineage.split('~')
    const decoded = tokens.map((t, i) => decodeEntry(t, i))
    const last = decoded[decoded.length - 1]!
    // Mostly the agent holding custody and the innermost open call (where custody holds), else anyone, any hop.
    let state: CustodyState | undefined = initialCustody()
    try {
      for (const e of decoded) state = custodyStep(state!, e)
    } catch {
      state = undefined
    }
    const nameOf = (did: string | null | undefined) => names.find((n) => signers[n].did === did)
    const open = state?.open[state.open.length - 1]
    const receipt = rand(3) === 0
    const name = (rand(4) !== 0 ? nameOf(receipt ? open?.callee : state?.holder) : undefined) ?? pick(names)
    const hops = decoded.filter((e) => e.kind === 'hop')
    const jti = rand(8) === 0 ? pick(decoded).claims.jti : `rw-${rand(1e9)}-${rand(1e9)}-jti`
    const base = {
      txn: rand(16) === 0 ? 'another-transaction' : last.claims.txn,
      idx: rand(12) === 0 ? decoded.length + pick([-1, 1]) : decoded.length,
      prv: rand(12) === 0 ? pick(decoded).hash : last.hash,
      iss: signers[name].did, crd: credentialHash(creds[name]), sts: [LIST_URL, INDEX[name]],
      iat: NOW + pick([0, 0, 0, -30, -90, 30]), exp: NOW + 60, jti,
    }
    let token: string
    if (receipt && hops.length > 0) {
      const answered = rand(4) === 0 || open === undefined ? pick(hops) : { hash: open.hash }
      token = await signCompactJws({ alg: 'EdDSA', typ: RECEIPT_TYP }, JSON.stringify({ ...base, hop: answered.hash, out: argsDigest(rand(2)), res: 'ok' }), signers[name])
    } else {
      const callee = pick([undefined, ...names])
      const claims = { ...base, aud: TOOL, ...(callee === undefined ? {} : { sub: signers[callee].did }), cmd: LAST.command, arg: argsDigest(LAST.args), ...(rand(10) === 0 ? {} : { usr: rand(12) === 0 ? 'user-2' : 'user-1' }) }
      token = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify(claims), signers[name])
    }
    return `${lineage}~${token}`
  }

  it('250 random continuations of a memoized prefix', async () => {
    const l1 = await prefix()
    const r2 = await createReceipt(l1, { signer: signers.carol, credential: creds.carol, output: { paid: true }, clock })
    let differences = 0
    let accepted = 0
    for (let i = 0; i < 250; i++) {
      let lineage = pick([l1, l1, r2])
      const memoized = lineage
      for (let steps = 1 + rand(3); steps > 0; steps--) lineage = await grow(lineage)
      const cold = await outcome(verify(make(), lineage))
      const warm = make()
      await verify(warm, memoized).catch(() => undefined) // memoizes the prefix whatever its last entry's fate
      if (rand(2) === 0) await verify(warm, lineage.split('~').slice(0, -1).join('~')).catch(() => undefined) // and a longer one
      const got = await outcome(verify(warm, lineage))
      if (JSON.stringify(got) !== JSON.stringify(cold)) differences++
      expect(got, `case ${i}`).toEqual(cold)
      if (cold === 'accepted') accepted++
    }
    expect(differences).toBe(0)
    expect(accepted).toBeGreaterThan(15) // the walk reaches valid lineages too (29 with this seed)
  })
})

describe('verifyLineage red team: delegation chains left out', () => {
  const status = (i: number) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(20 + i), statusListCredential: LIST_URL }) as const
  const cap = (...resources: string[]): Capability[] => resources.map((resource) => ({ resource, actions: ['invoke'] }))

  it('a hop\'s chain wider than an earlier hop\'s is refused even when the earlier chain is left out of delegationChains', async () => {
    const at = () => clock()
    // alice holds a grant for B and C only; carol relies on a grant straight from the issuer that also covers the tool.
    const narrow = await delegate({ signer: issuer, to: alice.did, capabilities: cap(B, C), expiresIn: 3600, statusEntry: status(1), clock: at })
    const wide = await delegate({ signer: issuer, to: carol.did, capabilities: cap(B, C, TOOL), expiresIn: 600, statusEntry: status(2), clock: at })
    const l0 = await appendHop(undefined, hop('alice', { target: B, callee: bob.did, command: 'POST /plan', args: {}, delegationChain: narrow }))
    const l1 = await appendHop(l0, hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: {} }))
    const call = () => appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, delegationChain: wide }))
    // Both chains given: carol's does not extend alice's.
    expect(await outcome(verify(make(), await call(), { delegationChains: [narrow, wide] }))).toMatchObject({ code: 'ERR_DELEGATION_ESCALATION', hop: 2, reason: 'delegation-not-narrowing' })
    // Only carol's given (the caller chose which to send): alice's hop names a chain that cannot be checked against.
    expect(await outcome(verify(make(), await call(), { delegationChains: [wide] }))).toMatchObject({ code: 'ERR_DELEGATION_ESCALATION', hop: 0, reason: 'delegation-missing' })
    // No chain given at all: nothing is claimed verified (each hop's delegation is its hash, chain null).
    const none = await verify(make(), await call())
    expect(none.hops.map((h) => h.delegation?.chain ?? null)).toEqual([null, null, null])
  })
})
