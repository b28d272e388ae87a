// The transparency option: credentials accepted only with a tlog-proof of their issuance under a
// checkpoint signed by the trusted log key and cosigned by a quorum of witnesses.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { StatusList, VerificationError } from '@agentid/core'
import {
  MerkleTree,
  SIG_TYPE_COSIGNATURE_V1,
  createCosigner,
  formatCheckpoint,
  formatTlogProof,
  formatVerifierKey,
  generateNoteKey,
  noteSigner,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
} from '@agentid/tlog'
import { createVerifier, type FetchLike } from '@agentid/verifier'
import { alice, credential, LIST_URL, NOW, statusListJwt, testClock } from './fixtures.js'

const ORIGIN = 'issuer.example'
const log = generateNoteKey(ORIGIN)
const mallory = generateNoteKey(ORIGIN)
const w1 = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1)
const w2 = generateNoteKey('witness.example/w2', SIG_TYPE_COSIGNATURE_V1)
const w1b = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1) // w1's next key (a rotation)
const utf8 = new TextEncoder()

function entryFor(jwt: string, o: { action?: string; subject?: string; credentialId?: string; sha?: string } = {}): Uint8Array {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string }
  const event = {
    action: o.action ?? 'agent.spawned',
    actor: 'orchestrator:o1',
    at: NOW,
    details: { credentialId: o.credentialId ?? payload.jti, credentialSha256: o.sha ?? createHash('sha256').update(jwt).digest('hex'), keyCustody: 'agent' },
    subject: o.subject ?? alice.did,
  }
  return utf8.encode(JSON.stringify(event)) // keys already in JCS order
}

/** A log of `others` unrelated entries plus `entry`; its proof, signed by `signer`, cosigned by `cosigners`. */
function proofFor(entry: Uint8Array, o: { signer?: string; cosigners?: string[]; others?: number; extra?: Uint8Array | null; tamperIndex?: boolean } = {}): string {
  const tree = new MerkleTree()
  for (let i = 0; i < (o.others ?? 5); i++) tree.appendEntry(utf8.encode(`{"n":${i}}`))
  const index = tree.appendEntry(entry)
  tree.appendEntry(utf8.encode('{"after":1}'))
  const size = tree.size
  const key = parseSignerKey(o.signer ?? log.skey)
  const body = { origin: ORIGIN, size, rootHash: tree.root(size), extensions: [] }
  // A log may sign with a cosignature (0x04) key (tlog-checkpoint): its signature is then timestamped.
  const note = key.type === SIG_TYPE_COSIGNATURE_V1 ? `${formatCheckpoint(body)}\n${createCosigner(key).cosign(formatCheckpoint(body), NOW - 5)}` : signCheckpoint(body, noteSigner(key))
  const text = note.slice(0, note.indexOf('\n\n') + 1)
  const cosigned = note + (o.cosigners ?? []).map((k, i) => createCosigner(parseSignerKey(k)).cosign(text, NOW - 5 + i)).join('')
  void parseCheckpoint(text)
  return formatTlogProof({
    ...(o.extra === null ? {} : { extra: o.extra ?? entry }),
    index: o.tamperIndex ? index - 1 : index,
    proof: tree.inclusionProof(index, size),
    checkpoint: cosigned,
  })
}

async function setup(transparency: Parameters<typeof createVerifier>[0]['transparency'], proofs: Record<string, string> = {}) {
  const lists = { [LIST_URL]: await statusListJwt(StatusList.create()) }
  const calls: string[] = []
  const fetch: FetchLike = async (url: string) => {
    calls.push(url)
    const body = lists[url] ?? proofs[url]
    if (body === undefined) return { ok: false, status: 404, text: async () => 'not found' }
    return new Response(body, { status: 200 }) as unknown as Awaited<ReturnType<FetchLike>>
  }
  const verifier = createVerifier({ trustedIssuers: [(await import('./fixtures.js')).issuer.did], fetch, clock: testClock(), transparency })
  return { verifier, calls }
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    if (e instanceof VerificationError) return `${e.code}:${String(e.details?.reason ?? '')}`
    throw e
  }
  return 'ok'
}

describe('verifier option transparency', () => {
  it('accepts a credential with a stapled proof under the quorum, and memoizes it', async () => {
    const jwt = await credential()
    const { verifier, calls } = await setup({ log: log.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 2 })
    const proof = proofFor(entryFor(jwt), { cosigners: [w1.skey, w2.skey] })
    const agent = await verifier.verifyAgentCredential(jwt, { tlogProof: proof })
    expect(agent.did).toBe(alice.did)
    expect(calls.filter((u) => u.includes('/log/'))).toEqual([])
    expect((await verifier.verifyAgentCredential(jwt)).did).toBe(alice.did) // memoized with its proof
  })

  it('fetches the proof from the issuer the status list names when none is stapled', async () => {
    const jwt = await credential()
    const jti = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti as string
    const url = `https://issuer.example/v1/log/proof?credential=${encodeURIComponent(jti)}`
    const { verifier, calls } = await setup({ log: log.vkey }, { [url]: proofFor(entryFor(jwt)) })
    expect((await verifier.verifyAgentCredential(jwt)).did).toBe(alice.did)
    expect(calls).toContain(url)
  })

  it('refuses every proof that does not prove this credential was logged', async () => {
    const jwt = await credential()
    const other = await credential()
    const cases: [string, string | undefined, string][] = [
      ['no proof, fetch off', undefined, 'ERR_NOT_LOGGED:no-proof'],
      ['signed by another log key', proofFor(entryFor(jwt), { signer: mallory.skey, cosigners: [w1.skey] }), 'ERR_NOT_LOGGED:no log signature'],
      ['quorum not met', proofFor(entryFor(jwt), { cosigners: [w1.skey] }), 'ERR_NOT_LOGGED:witness quorum not met'],
      ['entry of another credential', proofFor(entryFor(other), { cosigners: [w1.skey, w2.skey] }), 'ERR_NOT_LOGGED:entry-mismatch'],
      ['entry naming this id with another hash', proofFor(entryFor(jwt, { sha: createHash('sha256').update(other).digest('hex') }), { cosigners: [w1.skey, w2.skey] }), 'ERR_NOT_LOGGED:entry-mismatch'],
      ['entry of another agent', proofFor(entryFor(jwt, { subject: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp' }), { cosigners: [w1.skey, w2.skey] }), 'ERR_NOT_LOGGED:entry-mismatch'],
      ['a revocation entry', proofFor(entryFor(jwt, { action: 'agent.revoked' }), { cosigners: [w1.skey, w2.skey] }), 'ERR_NOT_LOGGED:entry-mismatch'],
      ['no entry in extra', proofFor(entryFor(jwt), { cosigners: [w1.skey, w2.skey], extra: null }), 'ERR_NOT_LOGGED:no-entry'],
      ['extra swapped for another entry', proofFor(entryFor(other), { cosigners: [w1.skey, w2.skey], extra: entryFor(jwt) }), 'ERR_NOT_LOGGED:proof does not verify'],
      ['wrong index', proofFor(entryFor(jwt), { cosigners: [w1.skey, w2.skey], tamperIndex: true }), 'ERR_NOT_LOGGED:proof does not verify'],
      ['garbage', 'c2sp.org/tlog-proof@v1\nindex x\n', 'ERR_NOT_LOGGED:malformed tlog-proof'],
    ]
    for (const [name, proof, expected] of cases) {
      const { verifier } = await setup({ log: log.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 2, fetchProofs: false })
      expect(await code(verifier.verifyAgentCredential(jwt, proof === undefined ? {} : { tlogProof: proof })), name).toBe(expected)
      // A refused credential is not memoized: the same credential without a proof is refused again.
      expect(await code(verifier.verifyAgentCredential(jwt)), name).toBe('ERR_NOT_LOGGED:no-proof')
    }
  })

  it('a proof the issuer does not have yet, or an issuer that is down, is ERR_NOT_LOGGED', async () => {
    const jwt = await credential()
    const { verifier } = await setup({ log: log.vkey })
    expect(await code(verifier.verifyAgentCredential(jwt))).toBe('ERR_NOT_LOGGED:fetch')
  })

  it('counts a witness once however many of its keys cosigned', async () => {
    const jwt = await credential()
    const options = { log: log.vkey, witnesses: [w1.vkey, w1b.vkey, w2.vkey], quorum: 2, fetchProofs: false }
    const { verifier } = await setup(options)
    expect(await code(verifier.verifyAgentCredential(jwt, { tlogProof: proofFor(entryFor(jwt), { cosigners: [w1.skey, w1b.skey] }) }))).toBe('ERR_NOT_LOGGED:witness quorum not met')
    expect((await verifier.verifyAgentCredential(jwt, { tlogProof: proofFor(entryFor(jwt), { cosigners: [w1b.skey, w2.skey] }) })).did).toBe(alice.did)
  })

  it('refuses Data Integrity credentials and bad options', async () => {
    const { verifier } = await setup({ log: log.vkey })
    expect(await code(verifier.verifyAgentCredential({ '@context': [] }))).toBe('ERR_NOT_LOGGED:unsupported-format')
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: 'not a key' } })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [w1.vkey], quorum: 2 } })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [log.vkey] } })).toThrow(TypeError)
    // A witness is its key name: two keys of w1 cannot make a quorum of 2, nor a witness named like the log one.
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [w1.vkey, w1b.vkey], quorum: 2 } })).toThrow(/exceeds the 1 distinct/)
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [generateNoteKey(ORIGIN, SIG_TYPE_COSIGNATURE_V1).vkey] } })).toThrow(/cannot witness itself/)
  })
})

describe('transparency, red team: who counts as a witness', () => {
  it('a log signing with a cosignature (0x04) key is not its own witness', async () => {
    // A hostile issuer publishes such a key at /log/key; relying parties pin it as `log`.
    const log04 = generateNoteKey(ORIGIN, SIG_TYPE_COSIGNATURE_V1)
    const jwt = await credential()
    const { verifier } = await setup({ log: log04.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 1, fetchProofs: false })
    expect(await code(verifier.verifyAgentCredential(jwt, { tlogProof: proofFor(entryFor(jwt), { signer: log04.skey }) }))).toBe('ERR_NOT_LOGGED:witness quorum not met')
    expect((await verifier.verifyAgentCredential(jwt, { tlogProof: proofFor(entryFor(jwt), { signer: log04.skey, cosigners: [w2.skey] }) })).did).toBe(alice.did)
  })

  it('refuses one witness key trusted under two names (one cosignature would count twice)', () => {
    const alias = formatVerifierKey('witness.example/w1-mirror', SIG_TYPE_COSIGNATURE_V1, parseVerifierKey(w1.vkey).publicKey)
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [w1.vkey, alias], quorum: 2 } })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: ['did:key:z6Mk'], transparency: { log: log.vkey, witnesses: [w1.vkey, alias, w2.vkey], quorum: 1 } })).toThrow(TypeError)
  })
})
