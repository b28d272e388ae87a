import { generateEd25519KeyPair, signCompactJws, signerFromJwk, StatusList, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, type Capability } from '@agentid/delegation'
import {
  appendHop,
  argsDigest,
  createReceipt,
  credentialHash,
  decodeLineage,
  entryHash,
  HOP_TYP,
  RECEIPT_TYP,
  type AppendHopOptions,
} from '@agentid/lineage'
import { createVerifier, type Verifier, type VerifierOptions, type VerifyLineageOptions } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, mallory, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

// alice (an orchestrating agent) → bob (service B) → carol (service C) → the tool; mallory attacks.
const carol = generateEd25519KeyPair()
const signers = { alice: signerFromJwk(alice.privateJwk), bob: signerFromJwk(bob.privateJwk), carol: signerFromJwk(carol.privateJwk), mallory: signerFromJwk(mallory.privateJwk) }
const INDEX = { alice: '1', bob: '2', carol: '3', mallory: '4' } as const
type Name = keyof typeof signers

const B = 'https://b.example'
const C = 'https://c.example'
const TOOL = 'https://tool.example'
const LAST = { audience: TOOL, command: 'POST /charges', args: { amount: 100, currency: 'EUR' } }

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let verifier: Verifier
let creds: Record<Name, string>

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0, ...extra })
}

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
  clock = testClock()
  verifier = make()
  creds = {
    alice: await credential({ sub: alice.did, index: INDEX.alice }),
    bob: await credential({ sub: bob.did, index: INDEX.bob }),
    carol: await credential({ sub: carol.did, index: INDEX.carol }),
    mallory: await credential({ sub: mallory.did, index: INDEX.mallory }),
  }
})

function hop(name: Name, o: Omit<AppendHopOptions, 'signer' | 'credential'>): AppendHopOptions {
  return { signer: signers[name], credential: creds[name], clock, ...o }
}

/** alice → B (bob) → C (carol) → the tool: three hops, for user-1. */
async function chain(args: unknown = LAST.args): Promise<string[]> {
  const l0 = await appendHop(undefined, hop('alice', { target: B, callee: bob.did, command: 'POST /plan', args: { goal: 'pay invoice 42' }, user: 'user-1', origin: 'the user request', originKind: 'request' }))
  const l1 = await appendHop(l0, hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: { invoice: 42 } }))
  const l2 = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args }))
  return [l0, l1, l2]
}

const allCreds = () => [creds.alice, creds.bob, creds.carol]

async function codeOf(p: Promise<unknown>): Promise<{ code: VerificationErrorCode; hop: unknown; reason: unknown }> {
  const error = await p.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(VerificationError)
  const v = error as VerificationError
  return { code: v.code, hop: v.details.hop, reason: v.details.reason }
}

function verify(lineage: string, o: Partial<VerifyLineageOptions> = {}, v = verifier) {
  return v.verifyLineage(lineage, { ...LAST, credentials: allCreds(), ...o })
}

/** Signs an entry by hand (claims as given): what an attacker with its own key can make. */
async function raw(signer: Signer, claims: Record<string, unknown>, typ = HOP_TYP, header: Record<string, unknown> = {}): Promise<string> {
  return signCompactJws({ alg: 'EdDSA', typ, ...header }, JSON.stringify(claims), signer)
}

/** The claims of a valid next hop after `lineage`, signed by `name`, as appendHop would make them. */
function nextClaims(lineage: string, name: Name, o: Record<string, unknown> = {}): Record<string, unknown> {
  const entries = decodeLineage(lineage)
  const last = entries[entries.length - 1]!
  return {
    txn: last.claims.txn, idx: entries.length, prv: last.hash, iss: signers[name].did, crd: credentialHash(creds[name]), sts: [LIST_URL, INDEX[name]],
    aud: TOOL, cmd: LAST.command, arg: argsDigest(LAST.args), usr: 'user-1', iat: NOW, exp: NOW + 60, jti: `jti-${name}-${Math.random().toString(36).slice(2)}-xxxxxxxx`.replace(/[^A-Za-z0-9_-]/g, ''), ...o,
  }
}

describe('verifyLineage: a good chain', () => {
  it('verifies alice → bob → carol → tool and returns who did what, for whom', async () => {
    const [, , lineage] = await chain()
    const v = await verify(lineage!)
    expect(v.hops.map((h) => [h.actor.did, h.target, h.callee, h.command])).toEqual([
      [alice.did, B, bob.did, 'POST /plan'],
      [bob.did, C, carol.did, 'POST /pay'],
      [carol.did, TOOL, null, 'POST /charges'],
    ])
    expect(v.user).toBe('user-1')
    expect(v.hops.every((h) => h.user === 'user-1')).toBe(true)
    expect(v.origin.kind).toBe('request')
    expect(v.last.index).toBe(2)
    expect(v.last.argsDigest).toBe(argsDigest(LAST.args))
    expect(v.hops[0]!.actor.claims.purpose).toBe('invoice triage')
    expect(v.lineage).toBe(lineage)
    expect(v.transactionId).toBe(decodeLineage(lineage!)[0]!.claims.txn)
    // Every hop's hash is the SHA-256 of its compact JWS, the last one's too: a member like the others,
    // enumerable, serialized, frozen.
    const tokens = lineage!.split('~')
    expect(v.hops.map((h) => h.hash)).toEqual(tokens.map((t) => entryHash(t)))
    expect(Object.keys(v.last)).toContain('hash')
    expect(JSON.parse(JSON.stringify(v.last)).hash).toBe(entryHash(tokens[2]!))
    expect({ ...v.last }.hash).toBe(entryHash(tokens[2]!))
    expect(Object.isFrozen(v.last)).toBe(true)
    expect(() => { (v.last as { hash: string }).hash = 'x' }).toThrow(TypeError)
    expect(v.last.hash).toBe(entryHash(tokens[2]!))
  })

  it('a last hop naming a callee (this service\'s agent) is hashed and memoized: the next hop of the workflow resumes from it', async () => {
    const [l0, l1] = await chain()
    // bob serves C: the lineage alice → B (bob) → C (carol) as carol receives it.
    const atC = await verifier.verifyLineage(l1!, { audience: C, command: 'POST /pay', args: { invoice: 42 }, self: carol.did, credentials: allCreds() })
    expect(atC.last.hash).toBe(entryHash(l1!.split('~')[1]!))
    expect(atC.last.callee).toBe(carol.did)
    // carol calls the tool: the prefix l1 is known (memoized whole), only her hop is new.
    const next = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    const v = await verify(next)
    expect(v.hops.map((h) => h.hash)).toEqual(next.split('~').map((t) => entryHash(t)))
    // A hop spliced after l1 by another agent is still refused: custody resumed with l1's hash and holder.
    const spliced = await raw(signers.mallory, nextClaims(l1!, 'mallory'))
    expect(await codeOf(verify(`${l1}~${spliced}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'signer-not-target' })
    const badPrv = await raw(signers.carol, nextClaims(l1!, 'carol', { prv: entryHash(l0!) }))
    expect(await codeOf(verify(`${l1}~${badPrv}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'previous-hash' })
  })

  it('accepts the arguments in any member order (RFC 8785) and by digest', async () => {
    const [, , lineage] = await chain()
    await verify(lineage!, { args: { currency: 'EUR', amount: 100 } })
    const [, , again] = await chain()
    await verify(again!, { args: undefined, argsDigest: argsDigest(LAST.args) })
  })

  it('needs each actor\'s credential once: known credentials need not be sent again', async () => {
    const [, , first] = await chain()
    expect(await codeOf(verify(first!, { credentials: [creds.alice, creds.carol] }))).toMatchObject({ code: 'ERR_LINEAGE_CREDENTIAL_MISSING', hop: 1, reason: 'credential-missing' })
    await verify(first!, { credentials: `${creds.alice}~${creds.bob}~${creds.carol}` })
    const [, , second] = await chain()
    await verify(second!, { credentials: undefined })
  })

  it('verifies receipts: bob calls carol, carol answers, then bob calls the tool', async () => {
    const [, l1] = await chain()
    const record = await createReceipt(l1!, { signer: signers.carol, credential: creds.carol, output: { paid: true }, outcome: 'ok', clock })
    const next = await appendHop(record, hop('bob', { target: TOOL, command: LAST.command, args: LAST.args }))
    const v = await verify(next)
    expect(v.entries.map((e) => e.kind)).toEqual(['hop', 'hop', 'receipt', 'hop'])
    const receipt = v.entries[2]!
    expect(receipt).toMatchObject({ kind: 'receipt', answers: 1, outcome: 'ok', outputDigest: argsDigest({ paid: true }) })
    expect(receipt.actor.did).toBe(carol.did)
    expect(v.last.actor.did).toBe(bob.did)
  })
})

describe('verifyLineage: hostile lineages', () => {
  it('refuses a dropped middle hop', async () => {
    const [, , lineage] = await chain()
    const e = lineage!.split('~')
    expect(await codeOf(verify(`${e[0]}~${e[2]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 1, reason: 'index' })
  })

  it('refuses reordered hops', async () => {
    const [, , lineage] = await chain()
    const e = lineage!.split('~')
    expect(await codeOf(verify(`${e[1]}~${e[0]}~${e[2]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 0, reason: 'index' })
    expect(await codeOf(verify(`${e[0]}~${e[2]}~${e[1]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 1, reason: 'index' })
  })

  it('refuses a hop spliced in from another transaction, and from a fork of the same one', async () => {
    const [, , lineage] = await chain()
    const [, , other] = await chain()
    const e = lineage!.split('~')
    const o = other!.split('~')
    expect(await codeOf(verify(`${e[0]}~${o[1]}~${e[2]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 1, reason: 'transaction' })
    // The same transaction, bob signing a second hop 1: carol's hop 2 hangs on the first one.
    const fork = await appendHop(e[0], hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: { invoice: 43 } }))
    expect(await codeOf(verify(`${fork}~${e[2]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'previous-hash' })
  })

  it('refuses a hop signed by an agent the previous hop did not target', async () => {
    const [, l1] = await chain()
    // mallory holds a valid credential and signs a perfectly formed hop 2, but bob's hop 1 named carol.
    const forged = await raw(signers.mallory, nextClaims(l1!, 'mallory'))
    expect(await codeOf(verify(`${l1}~${forged}`, { credentials: [...allCreds(), creds.mallory] }))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'signer-not-target' })
    // Nor can she claim to be carol: the signature is checked against carol's DID.
    const impostor = await raw(signers.mallory, nextClaims(l1!, 'carol'))
    expect(await codeOf(verify(`${l1}~${impostor}`))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', hop: 2, reason: 'signature' })
    // appendHop itself refuses to build it.
    await expect(appendHop(l1, hop('mallory', { target: TOOL, command: LAST.command, args: LAST.args }))).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })

  it('refuses a call whose arguments, command or target differ from what the last hop signed', async () => {
    const [, , lineage] = await chain()
    expect(await codeOf(verify(lineage!, { args: { amount: 10_000, currency: 'EUR' } }))).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', hop: 2, reason: 'arguments' })
    expect(await codeOf(verify(lineage!, { command: 'POST /refunds' }))).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', hop: 2, reason: 'command' })
    expect(await codeOf(verify(lineage!, { audience: 'https://other.example' }))).toMatchObject({ code: 'ERR_AUDIENCE_MISMATCH', hop: 2 })
    expect(await codeOf(verify(lineage!, { self: mallory.did }))).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', reason: 'callee' })
    // A lineage that ends with a receipt is no call to act on.
    const [, l1] = await chain()
    const record = await createReceipt(l1!, { signer: signers.carol, credential: creds.carol, output: null, clock })
    expect(await codeOf(verify(record))).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', reason: 'not-a-call' })
    // None of these used the hop up: the right call still goes through, once.
    await verify(lineage!)
  })

  it('refuses a replayed lineage', async () => {
    const [, , lineage] = await chain()
    await verify(lineage!)
    expect(await codeOf(verify(lineage!))).toMatchObject({ code: 'ERR_REPLAY', hop: 2, reason: 'replay' })
  })

  it('refuses an expired last hop, one issued too long ago and one from the future', async () => {
    const [, , lineage] = await chain()
    clock.advance(121_000) // exp (60 s) + skew (60 s) passed
    expect(await codeOf(verify(lineage!))).toMatchObject({ code: 'ERR_EXPIRED', hop: 2 })
    clock.set(NOW * 1000)
    const longLived = await appendHop((await chain())[1], hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, ttlSec: 300 }))
    clock.advance(125_000) // not expired, but older than the 60 s + 60 s skew a last hop may be
    expect(await codeOf(verify(longLived))).toMatchObject({ code: 'ERR_EXPIRED', reason: 'too-old' })
    clock.set(NOW * 1000)
    const future = await appendHop((await chain())[1], hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, clock: () => NOW * 1000 + 120_000 }))
    expect(await codeOf(verify(future))).toMatchObject({ code: 'ERR_NOT_YET_VALID', hop: 2 })
  })

  it('refuses a revoked agent in the middle once the status TTL has passed, although its prefix is memoized', async () => {
    let body = await statusListJwt(list)
    const fetch = async () => ({ ok: true, status: 200, text: async () => body })
    const v = make({ fetch })
    const [, l1, lineage] = await chain()
    await verify(lineage!, {}, v)
    list.set(Number(INDEX.bob), 1)
    body = await statusListJwt(list)
    const next = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    clock.advance(1001) // statusTtlMs
    expect(await codeOf(verify(next, {}, v))).toMatchObject({ code: 'ERR_REVOKED', hop: 1 })
  })

  it('stands on a memoized prefix\'s actor check only until a status list is fetched anew: then a revoked actor is refused', async () => {
    let body = await statusListJwt(list)
    const fetch = async () => ({ ok: true, status: 200, text: async () => body })
    const v = make({ fetch })
    const [, l1, lineage] = await chain()
    const next = () => appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    await verify(lineage!, {}, v) // memoizes the prefix alice → bob
    await verify(await next(), {}, v) // resumes it: its actors checked in full, and that check recorded
    await verify(await next(), {}, v) // stands on the record
    list.set(Number(INDEX.bob), 1)
    body = await statusListJwt(list)
    clock.advance(500) // within statusTtlMs: the cached list still answers, with or without the record
    await verify(await next(), {}, v)
    clock.advance(501) // past statusTtlMs: the record no longer stands, the list is fetched anew
    expect(await codeOf(verify(await next(), {}, v))).toMatchObject({ code: 'ERR_REVOKED', hop: 1 })
    // Every later call too (the record is not rebuilt from a failed check).
    expect(await codeOf(verify(await next(), {}, v))).toMatchObject({ code: 'ERR_REVOKED', hop: 1 })
  })

  it('stands on a memoized prefix\'s actor check only within its actors\' credential lifetimes', async () => {
    const shortLived = await credential({ sub: bob.did, index: INDEX.bob, exp: NOW + 100 }) // + 60 s skew: refused from NOW + 160
    creds.bob = shortLived
    const v = make({ statusTtlMs: 3_600_000 })
    const [, l1, lineage] = await chain()
    const next = () => appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    await verify(lineage!, {}, v)
    await verify(await next(), {}, v)
    await verify(await next(), {}, v) // stands on the record
    clock.advance(100_000) // bob's credential still valid (exp + skew = NOW + 160)
    await verify(await next(), {}, v)
    clock.advance(60_000) // NOW + 160: expired
    expect(await codeOf(verify(await next(), {}, v))).toMatchObject({ code: 'ERR_EXPIRED', hop: 1 })
  })

  it('refuses forged receipts', async () => {
    const [, l1] = await chain()
    const good = await createReceipt(l1!, { signer: signers.carol, credential: creds.carol, output: { paid: true }, clock })
    const receipt = good.split('~')[2]!
    // A receipt signed by mallory (not the callee of hop 1).
    const claims = { ...decodeLineage(good)[2]!.claims, iss: mallory.did, crd: credentialHash(creds.mallory), sts: [LIST_URL, INDEX.mallory] }
    const byMallory = await raw(signers.mallory, claims, RECEIPT_TYP)
    const after = async (record: string) => {
      const entries = decodeLineage(record.split('~').slice(0, 2).join('~'))
      const next = await raw(signers.bob, { ...nextClaims(record.split('~').slice(0, 2).join('~'), 'bob'), idx: 3, prv: entryHash(record.split('~')[2]!) })
      return `${entries.map((e) => e.token).join('~')}~${record.split('~')[2]}~${next}`
    }
    expect(await codeOf(verify(await after(`${l1}~${byMallory}`), { credentials: [...allCreds(), creds.mallory] }))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'signer-not-target' })
    // carol's receipt for another hop than the open call.
    const wrongHop = await raw(signers.carol, { ...decodeLineage(good)[2]!.claims, hop: decodeLineage(good)[0]!.hash }, RECEIPT_TYP)
    expect(await codeOf(verify(await after(`${l1}~${wrongHop}`)))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'receipt-for-another-hop' })
    // carol's receipt with its output digest changed after signing.
    const [h, p, s] = receipt.split('.')
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString())
    payload.out = argsDigest({ paid: false })
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
    expect(await codeOf(verify(await after(`${l1}~${tampered}`)))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', hop: 2 })
    // The good receipt goes through.
    await verify(await after(good))
  })

  it('refuses oversized lineages and too many entries before decoding anything', async () => {
    const [, , lineage] = await chain()
    expect(await codeOf(verify(`${lineage}~${'A'.repeat(20_000)}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: null, reason: 'too-large' })
    expect(await codeOf(verify(Array(17).fill('a.b.c').join('~')))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'too-many-entries' })
    expect(await codeOf(verify(`${lineage!.split('~')[0]}~${'A'.repeat(5000)}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 1, reason: 'entry-too-large' })
    // Two headers joined by a proxy (", "), a space, an empty entry.
    expect(await codeOf(verify(`${lineage}, ${lineage}`))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'charset' })
    expect(await codeOf(verify(`${lineage}~`))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'empty-entry' })
    // Any character outside base64url, "." and "~", anywhere in the part not memoized: refused before decoding.
    for (const bad of [' ', '+', '/', '=', ',', '\u0000', '\u007f', '\u0080', '\u00e9', '\u0100', '\u0161', '\ud800', '\ufeff', '\u{1f600}']) {
      expect(await codeOf(verify(`${lineage}${bad}`))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'charset' })
      expect(await codeOf(verify(`${bad}${lineage}`))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'charset' })
    }
    expect(await codeOf(verify(''))).toMatchObject({ code: 'ERR_MALFORMED' })
    expect(await codeOf(verify(42 as unknown as string))).toMatchObject({ code: 'ERR_MALFORMED' })
    const small = make({ lineageLimits: { maxEntries: 2 } })
    expect(await codeOf(verify(lineage!, {}, small))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'too-many-entries' })
  })

  it('refuses deeply nested entries and arguments, without overflowing the stack', async () => {
    const [, l1] = await chain()
    const deep = await raw(signers.carol, nextClaims(l1!, 'carol', { usr: [[['user-1']]] }))
    expect(await codeOf(verify(`${l1}~${deep}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'json' })
    let args: unknown = 1
    for (let i = 0; i < 100_000; i++) args = [args]
    const [, , lineage] = await chain()
    expect(await codeOf(verify(lineage!, { args }))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'arguments' })
  })

  it('refuses duplicate JSON members, unknown claims, other algorithms and other types', async () => {
    const [, l1] = await chain()
    const claims = nextClaims(l1!, 'carol')
    const json = JSON.stringify(claims).replace('"cmd":', `"cmd":"POST /refunds","cmd":`)
    const dup = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, json, signers.carol)
    expect(await codeOf(verify(`${l1}~${dup}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'json' })
    const dupHeader = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify(claims), signers.carol)
    const headerJson = `{"alg":"EdDSA","typ":"${HOP_TYP}","typ":"JWT"}`
    const swapped = `${Buffer.from(headerJson).toString('base64url')}.${dupHeader.split('.').slice(1).join('.')}`
    expect(await codeOf(verify(`${l1}~${swapped}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2 })
    const extra = await raw(signers.carol, { ...claims, admin: true })
    expect(await codeOf(verify(`${l1}~${extra}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'claims' })
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: HOP_TYP })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
    expect(await codeOf(verify(`${l1}~${none}`))).toMatchObject({ hop: 2 })
    const jwt = await raw(signers.carol, claims, 'JWT')
    expect(await codeOf(verify(`${l1}~${jwt}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'typ' })
    const jwk = await raw(signers.carol, claims, HOP_TYP, { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } })
    expect(await codeOf(verify(`${l1}~${jwk}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'jws' })
    const control = await raw(signers.carol, { ...claims, cmd: 'POST /charges\u001b[2J' })
    expect(await codeOf(verify(`${l1}~${control}`))).toMatchObject({ code: 'ERR_MALFORMED', hop: 2, reason: 'claims' })
  })

  it('refuses a changed or dropped user, an entry that follows a hop naming no agent, and a reused jti', async () => {
    const [, l1, lineage] = await chain()
    const other = await raw(signers.carol, nextClaims(l1!, 'carol', { usr: 'user-2' }))
    expect(await codeOf(verify(`${l1}~${other}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'user-changed' })
    const dropped = nextClaims(l1!, 'carol')
    delete dropped.usr
    expect(await codeOf(verify(`${l1}~${await raw(signers.carol, dropped)}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'user-changed' })
    // The tool hop named no callee: nobody may sign after it.
    const after = await raw(signers.carol, nextClaims(lineage!, 'carol'))
    expect(await codeOf(verify(`${lineage}~${after}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 3, reason: 'no-callee' })
    // carol reusing bob's jti (a copy of an entry's id).
    const bobJti = decodeLineage(l1!)[1]!.claims.jti
    expect(await codeOf(verify(`${l1}~${await raw(signers.carol, nextClaims(l1!, 'carol', { jti: bobJti }))}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'duplicate-jti' })
  })

  it('refuses an actor whose credential names another agent or another status entry', async () => {
    const [, l1] = await chain()
    // carol signs, naming bob's credential.
    const borrowed = await raw(signers.carol, nextClaims(l1!, 'carol', { crd: credentialHash(creds.bob), sts: [LIST_URL, INDEX.bob] }))
    expect(await codeOf(verify(`${l1}~${borrowed}`))).toMatchObject({ code: 'ERR_KEY_MISMATCH', hop: 2, reason: 'credential-subject' })
    // carol's own credential, but a status entry nobody revokes.
    const unrevokable = await raw(signers.carol, nextClaims(l1!, 'carol', { sts: [LIST_URL, '99'] }))
    expect(await codeOf(verify(`${l1}~${unrevokable}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'status-entry' })
    // An untrusted issuer's credential.
    const rogue = await credential({ sub: carol.did, index: INDEX.carol, signer: signers.mallory })
    const byRogue = await raw(signers.carol, nextClaims(l1!, 'carol', { crd: credentialHash(rogue) }))
    expect(await codeOf(verify(`${l1}~${byRogue}`, { credentials: [...allCreds(), rogue] }))).toMatchObject({ code: 'ERR_UNTRUSTED_ISSUER', hop: 2, reason: 'actor-credential' })
  })

  it('memoizes verified prefixes by their bytes, and a tampered prefix is not served from the memo', async () => {
    const [, l1, lineage] = await chain()
    await verify(lineage!)
    // Same hop 2, but hop 1 of another chain in front of it: the memo of hop 2 names other bytes before it.
    const e = lineage!.split('~')
    const fork = await appendHop(e[0], hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: { invoice: 43 } }))
    expect(await codeOf(verify(`${fork}~${e[2]}`))).toMatchObject({ code: 'ERR_LINEAGE_BROKEN', hop: 2, reason: 'previous-hash' })
    const next = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    await verify(next)
  })

  it('serves a memoized prefix only for its exact bytes; the new hop is verified as ever', async () => {
    const [, l1, lineage] = await chain()
    await verify(lineage!)
    // A sibling call (same prefix, another last hop): the prefix comes from the memo, the new hop is verified.
    const sibling = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    const forged = sibling.split('~')
    const payload = JSON.parse(Buffer.from(forged[2]!.split('.')[1]!, 'base64url').toString())
    payload.arg = argsDigest({ amount: 1 })
    forged[2] = [forged[2]!.split('.')[0], Buffer.from(JSON.stringify(payload)).toString('base64url'), forged[2]!.split('.')[2]].join('.')
    expect(await codeOf(verify(forged.join('~'), { args: { amount: 1 } }))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', hop: 2 })
    // The memo key of a prefix is its last entry's signature: the same signature after other bytes is not a hit.
    const e = l1!.split('~')
    const [h1, p1, s1] = e[1]!.split('.')
    const otherBytes = `${e[0]}~${h1}.${p1!.slice(0, -2)}${p1!.slice(-2) === 'AA' ? 'AB' : 'AA'}.${s1}~${sibling.split('~')[2]}`
    expect(await codeOf(verify(otherBytes))).toMatchObject({ hop: 1 })
    // Two more characters in front of a memoized prefix: not a hit either (refused by the character check).
    expect(await codeOf(verify(`${lineage}, ${lineage}`))).toMatchObject({ code: 'ERR_MALFORMED', reason: 'charset' })
    await verify(sibling)
    // (A revoked actor in a memoized prefix: 'refuses a revoked agent in the middle …' above.)
  })

  it('returns the same frozen view of a memoized prefix hop on the next call, a new one once its actor is verified anew', async () => {
    const [, l1, lineage] = await chain()
    const first = await verify(lineage!)
    const sibling = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args }))
    const second = await verify(sibling)
    const third = await verify(await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args })))
    // Hops 0 and 1 come from the memo: their views are built once, then served as they are.
    expect(third.hops[0]).toBe(second.hops[0])
    expect(third.hops[1]).toBe(second.hops[1])
    expect(Object.isFrozen(third.hops[0])).toBe(true)
    expect(second.hops[0]).toEqual(first.hops[0])
    // The new last hop is always a new view.
    expect(third.hops[2]).not.toBe(second.hops[2])
    // bob's credential verified anew (another verifier state: a tiny credential memo, evicted by others):
    // the view of his hop then names the new verified credential, never a stale one.
    const small = make({ memoSize: 1 })
    const a = await verify(lineage!, { credentials: allCreds() }, small)
    const b = await verify(await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args })), { credentials: allCreds() }, small)
    expect(b.hops[1]!.actor.did).toBe(bob.did)
    expect(b.hops[1]!.actor).not.toBe(a.hops[1]!.actor)
    expect(b.hops[1]).not.toBe(a.hops[1])
  })

  it('finds a known actor by its crd exactly as credentialHash writes it', async () => {
    const [, l1] = await chain()
    // carol names her credential with a non-canonical base64url (same bytes, last character with low bits set).
    const crd = credentialHash(creds.carol)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = `${crd.slice(0, -1)}${alphabet[alphabet.indexOf(crd.at(-1)!) + 1]}`
    expect(last).not.toBe(crd)
    expect(Buffer.from(last, 'base64url').equals(Buffer.from(crd, 'base64url'))).toBe(true)
    await verifier.verifyAgentCredential(creds.carol)
    const entry = await raw(signers.carol, nextClaims(l1!, 'carol', { crd: last }))
    expect(await codeOf(verify(`${l1}~${entry}`, { credentials: [creds.alice, creds.bob] }))).toMatchObject({ code: 'ERR_LINEAGE_CREDENTIAL_MISSING', hop: 2 })
  })
})

describe('verifyLineage: delegation', () => {
  const status = (i: number) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(10 + i), statusListCredential: LIST_URL }) as const
  const cap = (...resources: string[]): Capability[] => resources.map((resource) => ({ resource, actions: ['invoke'] }))

  it('verifies the chain each hop relies on, and refuses one that does not extend the earlier hop\'s', async () => {
    const at = () => clock()
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: cap(B, C, TOOL), caveats: { remainingDepth: 3 }, expiresIn: 3600, statusEntry: status(1), clock: at })
    const ab = await delegate({ signer: signers.alice, to: bob.did, parent: root, capabilities: cap(C, TOOL), expiresIn: 1800, statusEntry: status(2), clock: at })
    const bc = await delegate({ signer: signers.bob, to: carol.did, parent: ab, capabilities: cap(TOOL), expiresIn: 600, statusEntry: status(3), clock: at })
    const l0 = await appendHop(undefined, hop('alice', { target: B, callee: bob.did, command: 'POST /plan', args: {}, delegationChain: root }))
    const l1 = await appendHop(l0, hop('bob', { target: C, callee: carol.did, command: 'POST /pay', args: {}, delegationChain: ab }))
    const l2 = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, delegationChain: bc }))
    const v = await verify(l2, { delegationChains: [root, ab, bc] })
    expect(v.hops.map((h) => h.delegation?.chain?.leaf.did)).toEqual([alice.did, bob.did, carol.did])
    expect(v.hops.map((h) => h.delegation?.chain?.links)).toEqual([1, 2, 3])
    // Without the chains, the hashes are reported, unverified.
    const again = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, delegationChain: bc }))
    expect((await verify(again)).last.delegation).toMatchObject({ chain: null })

    // carol relies on a grant straight from the issuer: wider than what bob's chain handed down.
    const direct = await delegate({ signer: issuer, to: carol.did, capabilities: cap(B, C, TOOL), expiresIn: 600, statusEntry: status(4), clock: at })
    const wider = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, delegationChain: direct }))
    expect(await codeOf(verify(wider, { delegationChains: [root, ab, direct] }))).toMatchObject({ code: 'ERR_DELEGATION_ESCALATION', hop: 2, reason: 'delegation-not-narrowing' })
    // A chain that does not cover the hop's target.
    const narrow = await delegate({ signer: signers.bob, to: carol.did, parent: ab, capabilities: cap(C), expiresIn: 600, statusEntry: status(5), clock: at })
    const outside = await appendHop(l1, hop('carol', { target: TOOL, command: LAST.command, args: LAST.args, delegationChain: narrow }))
    expect(await codeOf(verify(outside, { delegationChains: [root, ab, narrow] }))).toMatchObject({ hop: 2, reason: 'delegation' })
  })
})
