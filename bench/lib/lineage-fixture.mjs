// The lineage benchmarks' fixture (lineage.mjs, profile-lineage.mjs, lineage-ab.mjs): nine agents
// with identity credentials from the bench issuer, lineages agent 0 → … → agent n−1 → svc-8 (the
// service verifying), and the warm case's new hop by agent 7 on a 7-hop prefix. `core` and `lineage`
// are the packages that sign (a given checkout's build in lineage-ab.mjs).
import { credentialJwt, keyFromLabel } from './tokens.mjs'

export function lineageFixture({ core, lineage }, { now, clock = Date.now }) {
  const issuer = keyFromLabel('issuer')
  const agents = Array.from({ length: 9 }, (_, i) => {
    const key = keyFromLabel(`lineage-agent-${i}`)
    return { ...key, signer: core.signerFromKeyObject(key.privateKey, key.did, key.keyId), credential: credentialJwt(issuer, { sub: key.did, jti: `urn:uuid:lineage-${i}`, index: i + 1, now }) }
  })
  const url = (i) => `https://svc-${i}.payments.example`
  const ARGS = lineage.httpArgs('https://svc-8.payments.example/v1/charges', '{"amount":100,"currency":"EUR"}')
  const COMMAND = 'POST /v1/charges'

  /** A fresh lineage of n hops ending at svc-8; `open`: its last hop names the next agent instead (a prefix). */
  async function lineageOf(n, { open = false } = {}) {
    let l
    for (let i = 0; i < n; i++) {
      const last = i === n - 1 && !open
      l = await lineage.appendHop(l, {
        signer: agents[i].signer, credential: agents[i].credential, clock,
        target: last ? url(8) : url(i + 1), ...(last ? {} : { callee: agents[i + 1].did }),
        command: last ? COMMAND : 'POST /v1/step', args: last ? ARGS : { step: i }, ttlSec: 300, user: 'user-1',
      })
    }
    return l
  }

  return {
    issuer,
    agents,
    url,
    ARGS,
    COMMAND,
    /** What svc-8 passes to verifyLineage for the call it received. */
    options: { audience: url(8), command: COMMAND, args: ARGS },
    lineageOf,
    /** The warm case: `prefix` (lineageOf(7, { open: true })) and a new last hop by agent 7. */
    warmLineage: (prefix) => lineage.appendHop(prefix, { signer: agents[7].signer, credential: agents[7].credential, clock, target: url(8), command: COMMAND, args: ARGS, ttlSec: 300, user: 'user-1' }),
    /** Verifies `prefix` once with `verifier` (as the agent its last hop names would), so that its memo holds it. */
    async memoizePrefix(verifier, prefix) {
      const entries = prefix.split('~')
      const last = JSON.parse(Buffer.from(entries[entries.length - 1].split('.')[1], 'base64url').toString())
      await verifier.verifyLineage(prefix, { audience: last.aud, command: last.cmd, argsDigest: last.arg })
    },
  }
}
