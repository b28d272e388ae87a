// Issuing an identity credential: built, signed, checked by the issuer's own verifier, then stored
// (spawn.ts and renewal.ts say what is committed with it).
import { hash } from 'node:crypto'
import { AGENT_IDENTITY_CREDENTIAL, AGENTID_CONTEXT_V1, AgentIdError, VC_CONTEXT_V1, type AgentClaims } from '@agentid/core'
import type { ServiceDeps } from './deps.js'
import { agentCredentialDocument } from './di.js'
import { timeOrderedUuid } from './ids.js'
import type { CredentialFormat } from './input.js'
import type { CredentialRow, WriteOp } from './store.js'
import { iso, type IssuedCredential } from './views.js'

/** SHA-256 (hex) of what was issued, in its audit event: a holder can ask the issuer log for its proof. */
export const sha256Hex = (text: string) => hash('sha256', text, 'hex')

export type IssueDeps = Pick<ServiceDeps, 'storage' | 'engine' | 'statusLists' | 'di' | 'selfCheck' | 'clock' | 'now' | 'ttl'>

// Builds, signs, self-verifies, then stores (the ops `write` returns, plus the status index, as
// one group-committed job) an identity credential. `write` puts the issuance's audit event last
// among its audit ops: `logIndex` is its index in the issuer log, as the commit returned it.
export async function issueCredential(
  d: IssueDeps,
  did: string,
  claims: AgentClaims,
  lifetimeSec: number | undefined,
  format: CredentialFormat,
  write: (row: CredentialRow, at: number) => WriteOp[],
): Promise<IssuedCredential & { logIndex: number }> {
  if (format === 'di') d.di.assertSupported()
  const at = d.now()
  const exp = at + (lifetimeSec ?? d.ttl)
  const id = `urn:uuid:${timeOrderedUuid(d.clock())}` // time-ordered: appended to its indexes
  const slot = await d.statusLists.reserve()
  const status = {
    id: `${slot.url}#${slot.index}`,
    type: 'BitstringStatusListEntry',
    statusPurpose: 'revocation',
    statusListIndex: String(slot.index),
    statusListCredential: slot.url,
  } as const
  // Data Integrity: a VC 2.0 credential signed by the same key, checked and stored as JSON text.
  const credential = format === 'di'
    ? await d.di.sign(agentCredentialDocument(d.engine.issuer.did, { id, subject: { id: did, ...claims }, validFrom: at, validUntil: exp, status }), at)
    : await d.engine.issueJwtCredential({
    '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
    type: ['VerifiableCredential', AGENT_IDENTITY_CREDENTIAL],
    id,
    issuanceDate: iso(at),
    expirationDate: iso(exp),
    credentialSubject: { id: did, ...claims },
    credentialStatus: status,
  })
  const jwt = typeof credential === 'string' ? credential : JSON.stringify(credential)
  try {
    await d.selfCheck.verifyAgentCredential(credential)
  } catch (cause) {
    throw new AgentIdError('ERR_INTERNAL', 'the issuer refused its own credential', { cause })
  }
  const row: CredentialRow = {
    id, agent_did: did, kind: 'identity', format, jwt, status_list_id: slot.listId, status_index: slot.index,
    issued_at: at, expires_at: exp, revoked_at: null, revocation_reason: null,
  }
  const logIndices = await d.storage.commit([...write(row, at), d.statusLists.commitOp(slot.listId, slot.index)])
  return { did, format, credential, credentialId: id, expiresAt: iso(exp), status: { statusListCredential: slot.url, statusListIndex: slot.index }, logIndex: logIndices[logIndices.length - 1]! }
}
