// What the verify suite and the cold-path profile share: an issuer, its signed status list behind a
// local fetch, a verifier with the list and the issuer DID already cached, and a pool of distinct
// credentials for distinct agents.
import { createVerifier } from '@agentid/verifier'
import { agentDids, keyFromLabel, localFetch, nthCredential, statusListJwt } from './tokens.mjs'

export async function verifySetup({ pool = 40_000 } = {}) {
  const now = Math.floor(Date.now() / 1000)
  const issuer = keyFromLabel('issuer')
  const fetch = localFetch(statusListJwt(issuer, now))
  // statusTtlMs of an hour: no list refresh lands inside a timed round. memoSize stays the default
  // (1,000): a pool larger than it means a token reused after wrapping around was evicted long ago.
  const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch, statusTtlMs: 3_600_000 })
  const dids = agentDids(pool + 1)
  const tokens = Array.from({ length: pool }, (_, i) => nthCredential(issuer, dids, i + 1, now))
  const same = nthCredential(issuer, dids, 0, now)
  await verifier.verifyAgentCredential(same) // fetches the list, resolves the issuer DID
  let next = 0
  const cold = () => verifier.verifyAgentCredential(tokens[next++ % pool])
  return { now, issuer, verifier, dids, tokens, same, cold, coldCalls: () => next }
}
