// Spawning agents: an agent-held key (proof of possession) or an issuer-minted one, its identity
// credential, and optionally a root link for its tool profile, committed together.
import {
  AgentIdError,
  agentSpiffeId,
  decodeProofOfPossession,
  generateEd25519KeyPair,
  verifyProofOfPossession,
  type DecodedProofOfPossession,
  type Ed25519PrivateJwk,
} from '@agentid/core'
import { authenticate } from './access.js'
import { hashApiKey, isApiKeyShape } from './api-keys.js'
import { takeGrantToolProfile, toolProfileCapabilities } from './delegation-input.js'
import type { ServiceDeps } from './deps.js'
import { parseSpawnRequest } from './input.js'
import { issueCredential, sha256Hex, type IssueDeps } from './issue.js'
import { actorName, type Principal } from './principal.js'
import type { IssuedCredential } from './views.js'

export type SpawnAnswer = IssuedCredential & { logIndex: number; privateJwk?: Ed25519PrivateJwk; keyCustody: 'agent' | 'issuer'; spiffeId?: string; delegationChain?: string[] }
/**
 * A spawn's early refusals read with its key (spawnWithKey), for the DID and jti its proof named,
 * and that proof as decoded then (verified without decoding it again when it is the body's proof).
 */
export interface EarlyReads { did: string; jti: string; agent: boolean; nonce: boolean; proof: DecodedProofOfPossession }

export type SpawnDeps = IssueDeps & Pick<ServiceDeps, 'delegations' | 'attestation' | 'trustDomain' | 'maxTtl'>

/**
 * Authenticates `bearer` and spawns (as `authenticate` then `spawn`), with one database read for
 * the orchestrator's key and the spawn's early refusals: the DID and jti it looks up are read from
 * the proof before it is verified (no signature check for an unauthenticated caller), and serve
 * only when the verified proof names the same. A removed orchestrator is refused as by
 * `authenticate`: the key is read before anything is signed.
 */
export async function spawnWithKey(d: SpawnDeps, bearer: string | undefined, body: unknown): Promise<SpawnAnswer> {
  if (!isApiKeyShape(bearer, 'orch')) return spawn(d, await authenticate(d, bearer), body)
  const named = proofNames(body)
  const read = await d.storage.agents.seen(named?.did ?? null, named ? `pop:${named.jti}` : null, hashApiKey(bearer))
  const row = read.orchestrator
  if (!row) throw new AgentIdError('ERR_UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer …)')
  return spawn(d, { kind: 'orchestrator', id: row.id, name: row.name }, body, named ? { ...named, agent: read.agent, nonce: read.nonce } : undefined)
}

/**
 * Spawns an agent: registers its DID (agent-held key, proven by a proof of possession) or mints
 * one (issuer-generated key, returned once and never stored), and issues its identity credential.
 * Agent, credential, status index, proof nonce and audit event commit in one transaction.
 */
export async function spawn(d: SpawnDeps, actor: Principal, body: unknown, early?: EarlyReads): Promise<SpawnAnswer> {
  if (actor.kind !== 'orchestrator') throw new AgentIdError('ERR_FORBIDDEN', 'only an orchestrator spawns agents')
  const { grant, rest } = takeGrantToolProfile(body)
  const request = parseSpawnRequest(rest, d.maxTtl)
  const grantCapabilities = grant ? toolProfileCapabilities(request.claims.toolProfile) : undefined
  let did: string
  let privateJwk: Ed25519PrivateJwk | undefined
  let proof: { jti: string; nonce: string | null; exp: number } | undefined
  if (request.keyCustody === 'agent') {
    // The proof spawnWithKey decoded is verified as decoded then, when it is this request's proof.
    const verified = await verifyProofOfPossession(early !== undefined && early.proof.token === request.proof ? early.proof : request.proof, { audience: d.engine.issuer.did, purpose: 'spawn', now: d.now() })
    if (request.did !== undefined && request.did !== verified.did) throw new AgentIdError('ERR_KEY_MISMATCH', 'did does not match the proof of possession')
    did = verified.did
    proof = verified
  } else {
    const key = generateEd25519KeyPair()
    did = key.did
    privateJwk = key.privateJwk
  }
  // One read for both early refusals (the commit checks both again); none for a DID minted just now,
  // which no agent has, with no proof. spawnWithKey's read serves when it named this DID and jti.
  const seen = !proof ? { agent: false, nonce: false }
    : early && early.did === did && early.jti === proof.jti ? early
    : await d.storage.agents.seen(did, `pop:${proof.jti}`)
  if (seen.nonce) throw new AgentIdError('ERR_REPLAY', 'this proof of possession was used before')
  if (seen.agent) throw new AgentIdError('ERR_CONFLICT', 'an agent with this DID exists; renew its credential instead')
  // grantToolProfile: a root link for the agent's tool profile, committed with the agent.
  const root = grantCapabilities
    ? await d.delegations.rootLink(did, grantCapabilities, { maxDataClass: request.claims.dataAccessClass }, request.lifetimeSec ?? d.ttl)
    : undefined
  const named = d.trustDomain === undefined ? request.claims : { ...request.claims, spiffeId: agentSpiffeId(d.trustDomain, actor.name, did) }
  const claims = await d.attestation.apply(named, request.evidence, proof?.nonce ?? null, d.now())
  const issued = await issueCredential(d, did, claims, request.lifetimeSec, request.format, (row, at) => [
    ...(proof
      ? [
          d.storage.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
          ...(proof.nonce !== null ? [d.storage.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
        ]
      : []),
    // An agent of this DID committed since the early read: the primary key refuses the insert.
    d.storage.ops.agentInsert({
      did,
      orchestrator_id: actor.id,
      controller: request.claims.controller,
      purpose: request.claims.purpose,
      claims_json: JSON.stringify(claims),
      key_custody: request.keyCustody,
      created_at: at,
    }, { code: 'ERR_CONFLICT', message: 'an agent with this DID exists; renew its credential instead' }),
    d.storage.ops.credentialInsert(row),
    ...(root ? root.ops : []),
    d.storage.ops.audit(at, actorName(actor), 'agent.spawned', did, { credentialId: row.id, credentialSha256: sha256Hex(row.jwt), status: { list: row.status_list_id, index: row.status_index }, keyCustody: request.keyCustody, ...(root ? { delegationId: root.id, delegationSha256: sha256Hex(root.jwt), delegationStatus: root.status } : {}) }),
  ])
  return { ...issued, keyCustody: request.keyCustody, ...(claims.spiffeId ? { spiffeId: claims.spiffeId } : {}), ...(privateJwk ? { privateJwk } : {}), ...(root ? { delegationChain: [root.jwt] } : {}) }
}

// The agent DID and jti a spawn body's proof names, and the proof decoded (not verified; undefined
// when it names none: issuer-held keys, or a body the spawn will refuse anyway, with its own error).
function proofNames(body: unknown): { did: string; jti: string; proof: DecodedProofOfPossession } | undefined {
  const token = typeof body === 'object' && body !== null ? (body as { proof?: unknown }).proof : undefined
  if (typeof token !== 'string') return undefined
  let proof: DecodedProofOfPossession
  try {
    proof = decodeProofOfPossession(token)
  } catch {
    return undefined
  }
  return typeof proof.iss === 'string' && typeof proof.jti === 'string' ? { did: proof.iss, jti: proof.jti, proof } : undefined
}
