import {
  AGENTID_CONTEXT_V1,
  generateEd25519KeyPair,
  signerFromJwk,
  signJwt,
  StatusList,
  VC_CONTEXT_V1,
  type AgentClaims,
  type Ed25519KeyPair,
  type Signer,
} from '@agentid/core'
import type { FetchLike } from '@agentid/verifier'

/** Named keys, as in jose's and ucanto's tests: the issuer, two agents and an attacker. */
export const issuerKeys: Ed25519KeyPair = generateEd25519KeyPair()
export const alice: Ed25519KeyPair = generateEd25519KeyPair()
export const bob: Ed25519KeyPair = generateEd25519KeyPair()
export const mallory: Ed25519KeyPair = generateEd25519KeyPair()
export const issuer: Signer = signerFromJwk(issuerKeys.privateJwk)
export const malloryIssuer: Signer = signerFromJwk(mallory.privateJwk)

export const NOW = 1_800_000_000 // unix seconds; tests drive the verifier's clock
export const LIST_URL = 'https://issuer.example/v1/status-lists/1'

export const claims: AgentClaims = {
  purpose: 'invoice triage',
  controller: 'did:web:acme.example',
  model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
  toolProfile: ['mcp://erp/tools/invoices.read'],
  policyTier: 'standard',
  dataAccessClass: 'internal',
}

export interface CredentialOptions {
  signer?: Signer
  iss?: string
  sub?: string
  subjectId?: string | null
  nbf?: number
  exp?: number
  index?: string
  listUrl?: string
  claims?: Record<string, unknown>
  header?: Record<string, unknown>
  jti?: string
  extraPayload?: Record<string, unknown>
}

let counter = 0

/** Signs an agent identity credential JWT as the agentid issuer would. */
export async function credential(o: CredentialOptions = {}): Promise<string> {
  const signer = o.signer ?? issuer
  const sub = o.sub ?? alice.did
  const subject: Record<string, unknown> = { ...(o.subjectId === null ? {} : { id: o.subjectId ?? sub }), ...(o.claims ?? claims) }
  const payload = {
    iss: o.iss ?? signer.did,
    sub,
    nbf: o.nbf ?? NOW - 10,
    iat: o.nbf ?? NOW - 10,
    exp: o.exp ?? NOW + 3600,
    jti: o.jti ?? `urn:uuid:00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`,
    vc: {
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      credentialSubject: subject,
      credentialStatus: {
        type: 'BitstringStatusListEntry',
        statusPurpose: 'revocation',
        statusListIndex: o.index ?? '7',
        statusListCredential: o.listUrl ?? LIST_URL,
      },
    },
    ...o.extraPayload,
  }
  return signJwt({ typ: 'JWT', ...o.header }, payload, signer)
}

/** Signs a status-list credential JWT holding `list`. */
export async function statusListJwt(list: StatusList, o: { signer?: Signer; url?: string; exp?: number; purpose?: string } = {}): Promise<string> {
  const signer = o.signer ?? issuer
  const url = o.url ?? LIST_URL
  return signJwt({ typ: 'JWT' }, {
    iss: signer.did,
    jti: url,
    iat: NOW - 60,
    nbf: NOW - 60,
    ...(o.exp === undefined ? {} : { exp: o.exp }),
    vc: {
      '@context': [VC_CONTEXT_V1],
      type: ['VerifiableCredential', 'BitstringStatusListCredential'],
      credentialSubject: { id: `${url}#list`, type: 'BitstringStatusList', statusPurpose: o.purpose ?? 'revocation', encodedList: list.encode() },
    },
  }, signer)
}

/** An injected fetch serving status lists from a map, counting calls; `down` makes it fail. */
export function statusServer(lists: Record<string, string>): FetchLike & { calls: number; down: boolean } {
  const f = Object.assign(
    async (url: string) => {
      f.calls++
      if (f.down) throw new Error('connection refused')
      const body = lists[url]
      if (body === undefined) return { ok: false, status: 404, text: async () => 'not found' }
      return { ok: true, status: 200, text: async () => body }
    },
    { calls: 0, down: false },
  )
  return f
}

/** A clock the test moves by hand (milliseconds). */
export function testClock(start = NOW * 1000): (() => number) & { advance(ms: number): void; set(ms: number): void } {
  let t = start
  return Object.assign(() => t, { advance: (ms: number) => { t += ms }, set: (ms: number) => { t = ms } })
}
