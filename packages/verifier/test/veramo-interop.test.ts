// Interoperability with a plain Veramo 7 agent, in both directions:
// credentials and status lists that Veramo signs verify with @agentid/verifier, and credentials
// that agentid signs verify with Veramo's verifyCredential.
import { AGENTID_CONTEXT_V1, signJwt, STATUS_LIST_CREDENTIAL, StatusList, VC_CONTEXT_V1, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { createAgent, type IAgentPlugin, type ICredentialPlugin, type IDIDManager, type IKeyManager, type IResolver, type TAgent } from '@veramo/core'
import { CredentialProviderJWT } from '@veramo/credential-jwt'
import { CredentialPlugin } from '@veramo/credential-w3c'
import { DIDManager, MemoryDIDStore } from '@veramo/did-manager'
import { KeyDIDProvider } from '@veramo/did-provider-key'
import { DIDResolverPlugin } from '@veramo/did-resolver'
import { KeyManager, MemoryKeyStore, MemoryPrivateKeyStore } from '@veramo/key-manager'
import { KeyManagementSystem } from '@veramo/kms-local'
import { getResolver as keyDidResolver } from 'key-did-resolver'
import { beforeAll, describe, expect, it } from 'vitest'
import { alice, claims, credential, issuer, LIST_URL as OUR_LIST_URL, statusServer, testClock } from './fixtures.js'

type VeramoAgent = TAgent<IDIDManager & IKeyManager & IResolver & ICredentialPlugin>

/** A Veramo 7 agent as its documentation sets one up: in-memory stores, did:key, JWT credentials. */
function veramoAgent(extra: IAgentPlugin[] = []): VeramoAgent {
  return createAgent<IDIDManager & IKeyManager & IResolver & ICredentialPlugin>({
    plugins: [
      new KeyManager({ store: new MemoryKeyStore(), kms: { local: new KeyManagementSystem(new MemoryPrivateKeyStore()) } }),
      new DIDManager({
        store: new MemoryDIDStore(),
        defaultProvider: 'did:key',
        providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) },
      }),
      new DIDResolverPlugin({ ...keyDidResolver() }),
      new CredentialPlugin([new CredentialProviderJWT()]),
      ...extra,
    ],
  })
}

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

function payloadOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8'))
}

// Veramo signs with the wall clock (did-jwt sets iat itself), so the verifier's clock is pinned near it.
const T = Math.floor(Date.now() / 1000)
const LIST_URL = 'https://veramo-issuer.example/status/1'
const REVOKED_INDEX = 94_567
const clock = testClock(T * 1000)

let agent: VeramoAgent
let veramoIssuer: string
let agentDid: string

/** Veramo issues a BitstringStatusListCredential (JWT) whose id is the list URL. */
async function veramoStatusList(list: StatusList, by = veramoIssuer, url = LIST_URL): Promise<string> {
  const vc = await agent.createVerifiableCredential({
    proofFormat: 'jwt',
    credential: {
      '@context': [VC_CONTEXT_V1],
      id: url,
      type: ['VerifiableCredential', STATUS_LIST_CREDENTIAL],
      issuer: { id: by },
      issuanceDate: new Date((T - 60) * 1000).toISOString(),
      credentialSubject: { id: `${url}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: list.encode() },
    },
  })
  return vc.proof.jwt as string
}

/** Veramo issues an AgentIdentityCredential (JWT) carrying every agentid claim and a status entry. */
async function veramoCredential(o: { index?: number; by?: string; id?: string } = {}): Promise<string> {
  const vc = await agent.createVerifiableCredential({
    proofFormat: 'jwt',
    credential: {
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      id: o.id ?? 'urn:uuid:6f1f2a52-4c0e-4a57-9d3b-1f3f3c1d0e01',
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      issuer: { id: o.by ?? veramoIssuer },
      issuanceDate: new Date((T - 10) * 1000).toISOString(),
      expirationDate: new Date((T + 3600) * 1000).toISOString(),
      credentialSubject: { id: agentDid, ...claims, attestation: { kind: 'tpm-quote', nonce: 'n-0001' } },
      credentialStatus: {
        id: `${LIST_URL}#${o.index ?? 7}`, // Veramo's types (VC 1.1) require it
        type: 'BitstringStatusListEntry',
        statusPurpose: 'revocation',
        statusListIndex: String(o.index ?? 7),
        statusListCredential: LIST_URL,
      },
    },
  })
  return vc.proof.jwt as string
}

beforeAll(async () => {
  agent = veramoAgent()
  veramoIssuer = (await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })).did
  agentDid = (await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })).did
})

describe('Veramo issues, agentid verifies', () => {
  it('verifies a Veramo credential against a Veramo-signed status list and returns every claim', async () => {
    const jwt = await veramoCredential()
    // What Veramo put on the wire: subject id in sub, credential id in jti, no kid.
    const p = payloadOf(jwt)
    expect(p.iss).toBe(veramoIssuer)
    expect(p.sub).toBe(agentDid)
    expect(p.jti).toBe('urn:uuid:6f1f2a52-4c0e-4a57-9d3b-1f3f3c1d0e01')
    expect(p.vc.credentialSubject.id).toBeUndefined()

    const server = statusServer({ [LIST_URL]: await veramoStatusList(StatusList.create()) })
    const verifier = createVerifier({ trustedIssuers: [veramoIssuer], fetch: server, clock })
    const verified = await verifier.verifyAgentCredential(jwt)
    expect(verified.did).toBe(agentDid)
    expect(verified.issuer).toBe(veramoIssuer)
    expect(verified.credentialId).toBe('urn:uuid:6f1f2a52-4c0e-4a57-9d3b-1f3f3c1d0e01')
    expect(verified.validFrom).toBe(T - 10)
    expect(verified.expiresAt).toBe(T + 3600)
    expect(verified.claims).toEqual({ ...claims, attestation: { kind: 'tpm-quote', nonce: 'n-0001' } })
    expect(verified.status).toEqual({ statusListCredential: LIST_URL, statusListIndex: 7 })
    expect(verified.type).toEqual(['VerifiableCredential', 'AgentIdentityCredential'])
    expect(server.calls).toBe(1)
  })

  it('refuses a Veramo credential whose bit is set in the Veramo-signed list: ERR_REVOKED', async () => {
    const list = StatusList.create()
    list.set(REVOKED_INDEX, 1)
    const server = statusServer({ [LIST_URL]: await veramoStatusList(list) })
    const verifier = createVerifier({ trustedIssuers: [veramoIssuer], fetch: server, clock })
    await expectCode(verifier.verifyAgentCredential(await veramoCredential({ index: REVOKED_INDEX })), 'ERR_REVOKED')
    // The neighbours in the same list are still good.
    await expect(verifier.verifyAgentCredential(await veramoCredential({ index: REVOKED_INDEX + 1 }))).resolves.toBeTruthy()
  })

  it('refuses a Veramo credential from an issuer that is not trusted: ERR_UNTRUSTED_ISSUER', async () => {
    const stranger = (await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })).did
    const server = statusServer({ [LIST_URL]: await veramoStatusList(StatusList.create(), stranger) })
    const verifier = createVerifier({ trustedIssuers: [veramoIssuer], fetch: server, clock })
    await expectCode(verifier.verifyAgentCredential(await veramoCredential({ by: stranger })), 'ERR_UNTRUSTED_ISSUER')
    expect(server.calls).toBe(0)
  })

  it('refuses a Veramo credential whose status list another issuer signed', async () => {
    const stranger = (await agent.didManagerCreate({ provider: 'did:key', options: { keyType: 'Ed25519' } })).did
    const server = statusServer({ [LIST_URL]: await veramoStatusList(StatusList.create(), stranger) })
    const verifier = createVerifier({ trustedIssuers: [veramoIssuer], fetch: server, clock })
    await expectCode(verifier.verifyAgentCredential(await veramoCredential()), 'ERR_STATUS_UNAVAILABLE')
  })
})

/**
 * Veramo refuses a credential object carrying credentialStatus unless an ICredentialStatusVerifier plugin
 * is installed. This one does what a Veramo deployment would: fetch the list, verify it with the
 * agent's own verifyCredential, read the bit.
 */
function bitstringStatusPlugin(lists: Record<string, string>): IAgentPlugin {
  return {
    methods: {
      async checkCredentialStatus(args: { credential: any }, context: { agent: VeramoAgent }) {
        const status = args.credential.credentialStatus
        const listJwt = lists[status.statusListCredential]
        if (listJwt === undefined) return { verified: false }
        const checked = await context.agent.verifyCredential({ credential: listJwt })
        if (!checked.verified) return { verified: false }
        const p = payloadOf(listJwt)
        if (p.iss !== args.credential.issuer.id && p.iss !== args.credential.issuer) return { verified: false }
        const bit = StatusList.decode(p.vc.credentialSubject.encodedList).get(Number(status.statusListIndex))
        return { revoked: bit === 1, verified: true }
      },
    },
  }
}

/** Our status list, signed as fixtures.ts `statusListJwt` signs it, but at wall-clock time (Veramo checks nbf against it). */
async function ourStatusList(list: StatusList): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did,
    jti: OUR_LIST_URL,
    iat: T - 60,
    nbf: T - 60,
    vc: {
      '@context': [VC_CONTEXT_V1],
      type: ['VerifiableCredential', STATUS_LIST_CREDENTIAL],
      credentialSubject: { id: `${OUR_LIST_URL}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: list.encode() },
    },
  }, issuer)
}

describe('agentid issues, Veramo verifies', () => {
  const now = { nbf: T - 10, exp: T + 3600 }

  it('verifies a credential signed with signJwt (verified: true)', async () => {
    const jwt = await credential(now)
    const result = await veramoAgent().verifyCredential({ credential: jwt })
    expect(result.error).toBeUndefined()
    expect(result.verified).toBe(true)
    expect(result.verifiableCredential?.credentialSubject.id).toBe(alice.did)
    expect(result.verifiableCredential?.credentialSubject.purpose).toBe(claims.purpose)
    expect((result.verifiableCredential?.issuer as { id: string }).id).toBe(issuer.did)
  })

  it('Veramo behaviour: a compact JWT string skips credentialStatus, so a revoked credential verifies', async () => {
    // CredentialPlugin.verifyCredential reads `credential.credentialStatus` on what it was given;
    // on a JWT string that is undefined, and no status plugin is consulted. Not ours to fix: noted.
    const jwt = await credential({ ...now, index: String(REVOKED_INDEX) })
    expect((await veramoAgent().verifyCredential({ credential: jwt })).verified).toBe(true)
  })

  it('Veramo behaviour: the object form without a status plugin throws invalid_setup', async () => {
    const normalized = (await veramoAgent().verifyCredential({ credential: await credential(now) })).verifiableCredential!
    await expect(veramoAgent().verifyCredential({ credential: normalized })).rejects.toThrow(/invalid_setup/)
  })

  it('with a status plugin (object form), verifies the status list we signed and sees a revocation', async () => {
    const list = StatusList.create()
    list.set(REVOKED_INDEX, 1)
    const withStatus = veramoAgent([bitstringStatusPlugin({ [OUR_LIST_URL]: await ourStatusList(list) })])
    const normalize = async (jwt: string) => (await withStatus.verifyCredential({ credential: jwt })).verifiableCredential!
    const good = await withStatus.verifyCredential({ credential: await normalize(await credential(now)) })
    expect(good.error).toBeUndefined()
    expect(good.verified).toBe(true)
    const revoked = await withStatus.verifyCredential({ credential: await normalize(await credential({ ...now, index: String(REVOKED_INDEX) })) })
    expect(revoked.verified).toBe(false)
    expect(revoked.error?.errorCode).toBe('revoked')
  })

  it('refuses a tampered credential (verified: false)', async () => {
    const jwt = await credential(now)
    const [h, , s] = jwt.split('.')
    const p = payloadOf(jwt)
    p.vc.credentialSubject.dataAccessClass = 'restricted'
    const tampered = `${h}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.${s}`
    const result = await veramoAgent().verifyCredential({ credential: tampered, policies: { credentialStatus: false } })
    expect(result.verified).toBe(false)
    expect(result.error?.errorCode).toBe('invalid_signature')

    // And a flipped signature bit.
    const sig = Buffer.from(s!, 'base64url')
    sig[0]! ^= 1
    const flipped = `${h}.${jwt.split('.')[1]}.${sig.toString('base64url')}`
    expect((await veramoAgent().verifyCredential({ credential: flipped, policies: { credentialStatus: false } })).verified).toBe(false)
  })
})
