import { generateEd25519KeyPair, type Ed25519PrivateJwk, type Ed25519PublicJwk } from '@agentid/core'

/** An agent's key pair as JWKs, and its did:key. Keep `privateJwk` inside the agent. */
export interface AgentKey {
  did: string
  publicJwk: Ed25519PublicJwk
  privateJwk: Ed25519PrivateJwk
}

/**
 * Generates an agent's Ed25519 key pair with node:crypto.
 * @example
 * const key = generateAgentKey() // key.did === 'did:key:z6Mk…'
 */
export function generateAgentKey(): AgentKey {
  const { did, publicJwk, privateJwk } = generateEd25519KeyPair()
  return { did, publicJwk, privateJwk }
}
