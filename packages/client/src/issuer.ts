import {
  AgentIdError,
  createProofOfPossession,
  generateEd25519KeyPair,
  signerFromJwk,
  type AgentClaims,
  type AgentIdErrorCode,
  type BitstringStatusListEntry,
  type Ed25519PrivateJwk,
  type Signer,
} from '@agentid/core'

/** A fetch as the WHATWG standard defines it (globalThis.fetch by default). */
export type Fetch = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<{
  ok: boolean
  status: number
  json(): Promise<unknown>
}>

/** An identity credential as the issuer returns it. */
export interface IssuedIdentity {
  did: string
  credential: string
  credentialId: string
  expiresAt: string
  status: { statusListCredential: string; statusListIndex: number }
}

/** What `spawn` returns: the agent's identity and, in agent-held mode, its private key (never sent anywhere). */
export interface SpawnedAgent extends IssuedIdentity {
  keyCustody: 'agent' | 'issuer'
  /** The agent's private key: generated here (agent-held mode) or returned once by the issuer. */
  privateJwk: Ed25519PrivateJwk
}

export interface IssuerConnection {
  /** Base URL of the issuer, e.g. `http://127.0.0.1:8080`. */
  issuerUrl: string
  fetch?: Fetch
  /** Request timeout, ms (default 10,000). */
  timeoutMs?: number
}

export interface SpawnOptions extends IssuerConnection {
  /** The orchestrator's API key (`aid_orch_…`). */
  apiKey: string
  claims: AgentClaims
  /**
   * `agent` (default): the key pair is generated here and only a proof of possession goes to the
   * issuer. `issuer`: the issuer generates the key and returns it once.
   */
  keyCustody?: 'agent' | 'issuer'
  /** Use this agent key instead of generating one (agent-held mode). */
  privateJwk?: Ed25519PrivateJwk
  lifetimeSec?: number
  /** The issuer's DID, the audience of the proof; fetched from `GET /v1/issuer` when absent. */
  issuerDid?: string
}

/** One JSON call to the issuer; its error body becomes an AgentIdError with its code. Internal (not in index.ts). */
export async function call(conn: IssuerConnection, method: string, path: string, body: unknown, apiKey?: string): Promise<unknown> {
  const f = conn.fetch ?? (globalThis.fetch as unknown as Fetch)
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`
  let response
  try {
    response = await f(`${conn.issuerUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(conn.timeoutMs ?? 10_000),
    })
  } catch (cause) {
    throw new AgentIdError('ERR_INTERNAL', `issuer unreachable at ${conn.issuerUrl}`, { cause })
  }
  const json = (await response.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined
  if (!response.ok) {
    const code = (json?.error?.code ?? 'ERR_INTERNAL') as AgentIdErrorCode
    throw new AgentIdError(code, json?.error?.message ?? `issuer answered HTTP ${response.status}`, { details: { status: response.status } })
  }
  return json
}

/** The issuer's DID (`GET /v1/issuer`). */
export async function fetchIssuerDid(conn: IssuerConnection): Promise<string> {
  const info = (await call(conn, 'GET', '/v1/issuer', undefined)) as { did?: unknown }
  if (typeof info?.did !== 'string') throw new AgentIdError('ERR_INTERNAL', 'issuer did not say its DID')
  return info.did
}

/**
 * Spawns an agent for an orchestrator. By default the agent's key is generated here and never
 * leaves this process: the issuer gets the public key inside a proof of possession.
 * @example
 * const agent = await spawn({ issuerUrl, apiKey, claims })
 * agent.did; agent.credential; agent.privateJwk // hand the last two to the agent
 */
export async function spawn(options: SpawnOptions): Promise<SpawnedAgent> {
  const custody = options.keyCustody ?? 'agent'
  if (custody === 'issuer') {
    const result = (await call(options, 'POST', '/v1/agents', {
      keyCustody: 'issuer',
      ...options.claims,
      ...(options.lifetimeSec === undefined ? {} : { lifetimeSec: options.lifetimeSec }),
    }, options.apiKey)) as SpawnedAgent
    return result
  }
  const privateJwk = options.privateJwk ?? generateEd25519KeyPair().privateJwk
  const signer = signerFromJwk(privateJwk)
  const audience = options.issuerDid ?? (await fetchIssuerDid(options))
  const proof = await createProofOfPossession({ signer, audience, purpose: 'spawn' })
  const result = (await call(options, 'POST', '/v1/agents', {
    keyCustody: 'agent',
    did: signer.did,
    proof,
    ...options.claims,
    ...(options.lifetimeSec === undefined ? {} : { lifetimeSec: options.lifetimeSec }),
  }, options.apiKey)) as IssuedIdentity & { keyCustody: 'agent' }
  return { ...result, keyCustody: 'agent', privateJwk }
}

export interface RenewOptions extends IssuerConnection {
  /** The agent's own key: renewal needs no API key, only proof of possession. */
  signer?: Signer
  privateJwk?: Ed25519PrivateJwk
  lifetimeSec?: number
  issuerDid?: string
}

/**
 * Renews the calling agent's identity credential: a fresh credential for the same DID and claims.
 * @example
 * const { credential } = await renew({ issuerUrl, privateJwk })
 */
export async function renew(options: RenewOptions): Promise<IssuedIdentity> {
  const signer = options.signer ?? (options.privateJwk ? signerFromJwk(options.privateJwk) : undefined)
  if (!signer) throw new TypeError('renew: signer or privateJwk is required')
  const audience = options.issuerDid ?? (await fetchIssuerDid(options))
  const proof = await createProofOfPossession({ signer, audience, purpose: 'renew' })
  return (await call(options, 'POST', `/v1/agents/${encodeURIComponent(signer.did)}/renew`, {
    proof,
    ...(options.lifetimeSec === undefined ? {} : { lifetimeSec: options.lifetimeSec }),
  })) as IssuedIdentity
}

export interface RegisterDelegationOptions extends IssuerConnection {
  /** The delegator: the subject of the parent link, proving possession of its key. */
  signer: Signer
  /** The id (jti) of the parent link, registered with this issuer. */
  parentId: string
  /** The did:key the new link will delegate to. */
  delegatee: string
  issuerDid?: string
}

/** A link registered with the issuer, before it is signed: pass both to `delegate({ id, statusEntry })`. */
export interface RegisteredDelegation {
  id: string
  statusEntry: BitstringStatusListEntry
  expiresAt: string
}

/**
 * Registers, with the issuer, a delegation link the caller is about to sign below `parentId`: the
 * issuer records it (so revoking the parent or the caller revokes it) and allocates its status entry.
 * @example
 * const { id, statusEntry } = await registerDelegation({ issuerUrl, signer: alice, parentId, delegatee: bob.did })
 * const chain = await delegate({ signer: alice, to: bob.did, parent, id, statusEntry, capabilities, expiresIn: 600 })
 */
export async function registerDelegation(options: RegisterDelegationOptions): Promise<RegisteredDelegation> {
  const audience = options.issuerDid ?? (await fetchIssuerDid(options))
  const proof = await createProofOfPossession({ signer: options.signer, audience, purpose: 'delegate' })
  const result = (await call(options, 'POST', '/v1/delegations/status', { proof, parentId: options.parentId, delegatee: options.delegatee })) as Partial<RegisteredDelegation>
  if (typeof result?.id !== 'string' || typeof result.statusEntry !== 'object' || result.statusEntry === null) throw new AgentIdError('ERR_INTERNAL', 'issuer returned no delegation id and status entry')
  return result as RegisteredDelegation
}
