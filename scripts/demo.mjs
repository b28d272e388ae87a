// A self-contained demo of the foundation: an issuer key signs an agent identity credential and a
// status list; a verifier (offline, with an injected fetch) checks it; the issuer revokes it.
import { AGENTID_CONTEXT_V1, generateEd25519KeyPair, signerFromJwk, signJwt, StatusList, VC_CONTEXT_V1 } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'

const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
const agent = generateEd25519KeyPair()
const listUrl = 'https://issuer.example/v1/status-lists/1'
const list = StatusList.create()
const signList = () => signJwt({ typ: 'JWT' }, {
  iss: issuer.did, jti: listUrl, iat: Math.floor(Date.now() / 1000),
  vc: { '@context': [VC_CONTEXT_V1], type: ['VerifiableCredential', 'BitstringStatusListCredential'],
    credentialSubject: { id: `${listUrl}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: list.encode() } },
}, issuer)
let signedList = await signList()

const now = Math.floor(Date.now() / 1000)
const jwt = await signJwt({ typ: 'JWT' }, {
  iss: issuer.did, sub: agent.did, nbf: now, iat: now, exp: now + 3600, jti: `urn:uuid:${crypto.randomUUID()}`,
  vc: {
    '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    credentialSubject: {
      id: agent.did, purpose: 'invoice triage', controller: 'did:web:acme.example',
      model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
      toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal',
    },
    credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '42', statusListCredential: listUrl },
  },
}, issuer)

const fetch = async () => ({ ok: true, status: 200, text: async () => signedList })
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch, statusTtlMs: 0 })

console.log('issuer  ', issuer.did)
console.log('agent   ', agent.did)
console.log('credential', `${jwt.slice(0, 60)}… (${jwt.length} bytes)`)
const verified = await verifier.verifyAgentCredential(jwt)
console.log('verified:', JSON.stringify({ did: verified.did, purpose: verified.claims.purpose, dataAccessClass: verified.claims.dataAccessClass, expiresAt: new Date(verified.expiresAt * 1000).toISOString() }))

list.set(42, 1)
signedList = await signList()
try {
  await verifier.verifyAgentCredential(jwt)
  console.error('revoked credential was accepted')
  process.exit(1)
} catch (error) {
  console.log('after revocation:', error.code)
}
