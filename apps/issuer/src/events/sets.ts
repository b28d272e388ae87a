import { randomUUID } from 'node:crypto'

/** JOSE `typ` of a Security Event Token (RFC 8417 §2.3, SSF 1.0 §4.1.1). */
export const SET_TYP = 'secevent+jwt'
/** OpenID CAEP 1.0 event types the issuer publishes. */
export const CAEP_CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const CAEP_SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

/** What one revocation (with its cascade) revoked, for the events it publishes. */
export interface RevocationRecord {
  /** Unix seconds of the revocation. */
  at: number
  /** The agent, when the agent itself was revoked (its sessions: access tokens, presentations). */
  agent?: string
  /** Identity credentials revoked (their `jti`; the issuer signed them). */
  credentials: readonly string[]
  /** Delegation links revoked: their `jti` and their signer (`iss` of the link). */
  delegations: readonly { id: string; iss: string }[]
}

/** A SET's claim set as stored and signed (RFC 8417 §2.2; SSF 1.0 §4.1: no `sub`, no `exp`, one event). */
export interface SetClaims {
  iss: string
  jti: string
  iat: number
  txn: string
  sub_id: Record<string, string>
  events: Record<string, Record<string, unknown>>
}

/**
 * The SETs reporting one revocation, in order, sharing one `txn` (SSF §4.1.8): a CAEP
 * `session-revoked` for a revoked agent (subject: its DID, `did` format of RFC 9493), then a CAEP
 * `credential-change` with `change_type: revoke` for each credential and each delegation link
 * (subject: the credential, `jwt_id` format: its `iss` and `jti`). The revocation reason stays in the
 * audit log: the stream is public, the reason is the operator's.
 * @example
 * revocationSets('did:key:z6Mk…', { at, credentials: ['urn:uuid:…'], delegations: [] })
 */
export function revocationSets(issuer: string, record: RevocationRecord): SetClaims[] {
  const txn = randomUUID()
  const base = (subId: Record<string, string>, type: string, event: Record<string, unknown>): SetClaims => ({
    iss: issuer,
    jti: randomUUID(),
    iat: record.at,
    txn,
    sub_id: subId,
    events: { [type]: { ...event, event_timestamp: record.at, initiating_entity: 'admin' } },
  })
  const revoke = { credential_type: 'verifiable-credential', change_type: 'revoke' }
  return [
    ...(record.agent !== undefined ? [base({ format: 'did', url: record.agent }, CAEP_SESSION_REVOKED, {})] : []),
    ...record.credentials.map((jti) => base({ format: 'jwt_id', iss: issuer, jti }, CAEP_CREDENTIAL_CHANGE, revoke)),
    ...record.delegations.map((d) => base({ format: 'jwt_id', iss: d.iss, jti: d.id }, CAEP_CREDENTIAL_CHANGE, revoke)),
  ]
}
