import { hash } from 'node:crypto'
import type { BoundedCache } from '../lru.js'
import type { VerifiedAgent } from '../types.js'
import { boundCredential } from './bounds.js'
import { deepFreeze } from '../util.js'

/** What the verifier lends the Data Integrity path: its trust list, clock, memo and status check. */
export interface DataIntegrityContext {
  trusted: ReadonlySet<string>
  now: () => number
  skew: number
  memo: BoundedCache<string, { agent: VerifiedAgent; nbf: number | null; exp: number }>
  checkTime(nbf: number | null, exp: number): void
  checkStatus(agent: VerifiedAgent): Promise<void>
}


/**
 * The JSON-LD path, imported on the first Data Integrity credential and kept: `import()` of a loaded
 * module still runs the loader's resolution and module-map look-up on every call.
 */
let verifyDi: Promise<typeof import('./verify-di.js')> | undefined

/**
 * Verifies a Data Integrity agent credential (an object, or JSON text) for `verifyAgentCredential`.
 * This module is light on purpose: it bounds the input and looks up the memo, and imports the
 * JSON-LD stack (./verify-di.js: jsonld, rdf-canonize, @digitalbazaar/*) only on the first Data
 * Integrity credential, so a service that only ever sees JWTs never loads it.
 */
export async function verifyDataIntegrityInput(ctx: DataIntegrityContext, input: unknown): Promise<VerifiedAgent> {
  const { credential, json } = boundCredential(input)
  // SHA-256 of the JSON text names the exact credential, as the token's hash does for JWTs.
  const key = hash('sha256', json, 'base64url') // the form of a lineage entry's `crd`
  const known = ctx.memo.get(key)
  if (known) {
    ctx.checkTime(known.nbf, known.exp)
    await ctx.checkStatus(known.agent)
    return known.agent
  }
  const { verifyBoundedCredential } = await (verifyDi ??= import('./verify-di.js').catch((error: unknown) => {
    verifyDi = undefined // a failed import is tried again on the next credential, as before
    throw error
  }))
  // The private copy bounded above, not the input: it is bounded (and copied) once.
  const { credentialStatus: _entry, ...fields } = await verifyBoundedCredential({ credential, json }, { trustedIssuers: ctx.trusted, now: ctx.now, skew: ctx.skew })
  const agent: VerifiedAgent = deepFreeze(fields)
  // The same status check as for JWTs: the entry's list, signed by the same issuer.
  await ctx.checkStatus(agent)
  ctx.memo.set(key, { agent, nbf: agent.validFrom, exp: agent.expiresAt })
  return agent
}
