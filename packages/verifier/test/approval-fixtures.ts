// A software passkey and approval receipts for the verifier's approval tests.
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { signJwt, StatusList, VC_CONTEXT_V1, type Signer } from '@agentid/core'
import {
  APPROVAL_CALL_TYPE,
  APPROVAL_RECEIPT_TYPE,
  APPROVER_CREDENTIAL,
  approvalChallenge,
  argumentsDigest,
  createVerifier,
  type ApprovalCall,
  type ApprovalReceipt,
  type ReceivedCall,
} from '@agentid/verifier'
import { alice, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

export const ORIGIN = 'https://id.example'
export const RP_ID = 'id.example'

/** A software passkey: what a platform authenticator does, with node:crypto (P-256 or Ed25519). */
export function passkey(kind: 'ec' | 'ed25519' = 'ec') {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519')
  return { ...pair, id: randomBytes(16).toString('base64url'), alg: kind === 'ec' ? -7 : -8 }
}
export type Passkey = ReturnType<typeof passkey>

export interface AssertOptions { origin?: string; rpId?: string; flags?: number; type?: string; key?: KeyObject; challenge?: Uint8Array; crossOrigin?: boolean }

export function assertion(pk: Passkey, call: ApprovalCall, decision: 'approve' | 'deny', o: AssertOptions = {}) {
  const clientData = Buffer.from(JSON.stringify({
    type: o.type ?? 'webauthn.get',
    challenge: Buffer.from(o.challenge ?? approvalChallenge(call, decision)).toString('base64url'),
    origin: o.origin ?? ORIGIN,
    crossOrigin: o.crossOrigin ?? false,
  }))
  const authData = Buffer.concat([createHash('sha256').update(o.rpId ?? RP_ID).digest(), Buffer.from([o.flags ?? 0x05]), Buffer.from([0, 0, 0, 1])])
  const signed = Buffer.concat([authData, createHash('sha256').update(clientData).digest()])
  const signature = cryptoSign(pk.alg === -7 ? 'sha256' : null, signed, o.key ?? pk.privateKey)
  return { authenticatorData: authData.toString('base64url'), clientDataJSON: clientData.toString('base64url'), signature: signature.toString('base64url') }
}

export async function approverCredential(pk: Passkey, o: { signer?: Signer; controllers?: string[]; groups?: string[]; index?: string; exp?: number; user?: { id: string; issuer?: string } } = {}): Promise<string> {
  const signer = o.signer ?? issuer
  return signJwt({ typ: 'JWT' }, {
    iss: signer.did,
    sub: 'urn:agentid:approver:apv_dana',
    nbf: NOW - 100,
    exp: o.exp ?? NOW + 86_400,
    jti: 'urn:uuid:11111111-1111-4111-8111-111111111111',
    vc: {
      '@context': [VC_CONTEXT_V1],
      type: ['VerifiableCredential', APPROVER_CREDENTIAL],
      credentialSubject: {
        id: 'urn:agentid:approver:apv_dana',
        approverId: 'apv_dana',
        name: 'Dana',
        approves: { controllers: o.controllers ?? ['did:web:acme.example'], groups: o.groups ?? [] },
        ...(o.user ? { user: o.user } : {}),
        webauthn: { credentialId: pk.id, alg: pk.alg, publicKeyJwk: pk.publicKey.export({ format: 'jwk' }), rpId: RP_ID, origin: ORIGIN },
      },
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: o.index ?? '3', statusListCredential: LIST_URL },
    },
  }, signer)
}

export const ARGS = { invoice: 'INV-42', amount: { value: '1200.00', currency: 'EUR' }, to: 'ACME GmbH' }

export function call(overrides: Partial<ApprovalCall> = {}): ApprovalCall {
  const args = overrides.arguments ?? ARGS
  return {
    type: APPROVAL_CALL_TYPE,
    id: 'apr_AAAAAAAAAAAAAAAAAAAAAA',
    issuer: issuer.did,
    transactionId: 'tx-1',
    agent: alice.did,
    controller: 'did:web:acme.example',
    user: { id: 'bob', issuer: 'https://idp.example' },
    target: 'https://bank.example/mcp',
    command: 'tools/call pay_invoice',
    arguments: args,
    argumentsDigest: argumentsDigest(args),
    group: null,
    createdAt: NOW - 60,
    expiresAt: NOW + 600,
    ...overrides,
  }
}

export const received = (o: Partial<ReceivedCall> = {}): ReceivedCall => ({ agent: alice.did, target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: structuredClone(ARGS), ...o })

export async function receipt(o: { pk?: Passkey; call?: ApprovalCall; decision?: 'approve' | 'deny'; assert?: AssertOptions; cred?: Parameters<typeof approverCredential>[1] } = {}): Promise<ApprovalReceipt> {
  const pk = o.pk ?? dana
  const c = o.call ?? call()
  const decision = o.decision ?? 'approve'
  return { type: APPROVAL_RECEIPT_TYPE, decision, call: c, credentialId: pk.id, ...assertion(pk, c, decision, o.assert), approverCredential: await approverCredential(pk, o.cred) }
}

export const dana = passkey()

export async function setup(revoked: number[] = []) {
  const list = StatusList.create()
  for (const i of revoked) list.set(i, 1)
  const clock = testClock()
  const verifier = createVerifier({ trustedIssuers: [issuer.did], clock, fetch: statusServer({ [LIST_URL]: await statusListJwt(list) }) })
  return { verifier, clock }
}

