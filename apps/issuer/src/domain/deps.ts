// The shared dependencies of the issuer's operations. IssuerService builds one of these and passes
// it to each operation module (access, orchestrators, spawn, renewal, grants, revoke, reads, …),
// which takes only the members it uses (`Pick<ServiceDeps, …>`).
import type { Verifier } from '@agentid/verifier'
import type { Attestation } from '../attestation/index.js'
import type { RevocationEvents } from '../events/recorder.js'
import type { IssuerStorage } from '../storage/types.js'
import type { IssuerEngine } from '../veramo/engine.js'
import type { Delegations } from './delegations.js'
import type { DataIntegritySigner } from './di.js'
import type { StatusLists } from './status-lists.js'

export interface ServiceDeps {
  storage: IssuerStorage
  engine: IssuerEngine
  statusLists: StatusLists
  di: DataIntegritySigner
  /** The issuer's own verifier (self-check.ts): every credential is checked before it is stored. */
  selfCheck: Verifier
  delegations: Delegations
  /** Security events of revocations (events/), written in each revocation's transaction. */
  events: RevocationEvents
  /** Verifies attestation evidence of spawn and renew (attestation/). */
  attestation: Attestation
  /** The SPIFFE trust domain of the agents' SPIFFE IDs, when configured. */
  trustDomain: string | undefined
  /** Clock in milliseconds. */
  clock: () => number
  /** Unix seconds. */
  now: () => number
  /** Default and maximum credential lifetimes, and a challenge's lifetime, seconds. */
  ttl: number
  maxTtl: number
  challengeTtl: number
}
