// The issuer checks its own output with the same verifier services use, before storing or
// returning it. Its status lists come from memory, not over HTTP.
import { Resolver } from 'did-resolver'
import { getResolver as getKeyDidResolver } from 'key-did-resolver'
import { ed25519Backend } from '@agentid/core'
import { createVerifier, type DidResolver, type Verifier } from '@agentid/verifier'
import type { IssuerEngine } from '../veramo/engine.js'
import type { StatusLists } from './status-lists.js'

/** The issuer's own verifier: trusts only this issuer, reads its status lists from `statusLists`. */
export function createSelfCheck(engine: IssuerEngine, clock: () => number, statusLists: StatusLists): Verifier {
  const doc = engine.didDocument()
  // A did:web issuer resolves itself from memory; the agents' did:keys (delegation links they sign) offline.
  const keyDids = new Resolver(getKeyDidResolver())
  const resolver: DidResolver | undefined = doc
    ? {
        resolve: async (did: string) => did === doc.id
          ? { didResolutionMetadata: {}, didDocument: doc as never, didDocumentMetadata: {} }
          : did.startsWith('did:key:') ? keyDids.resolve(did) : { didResolutionMetadata: { error: 'notFound' }, didDocument: null, didDocumentMetadata: {} },
      }
    : undefined
  return createVerifier({
    trustedIssuers: [engine.issuer.did],
    clock,
    memoSize: 1,
    // With libsodium the check runs on the event loop: it costs less CPU there than node:crypto's does
    // on libuv's pool (a spawn is CPU-bound on two cores); node:crypto's is still handed to the pool.
    offloadSignatures: ed25519Backend() !== 'libsodium',
    statusTtlMs: 1000,
    statusGraceMs: 0,
    // Delegation links (signed by agents) may name only this issuer's own status lists.
    trustedStatusLists: [`${engine.baseUrl}/v1/status-lists/`],
    ...(resolver ? { resolver } : {}),
    fetch: async (url: string) => {
      const id = url.startsWith(`${engine.baseUrl}/v1/status-lists/`) ? url.slice(`${engine.baseUrl}/v1/status-lists/`.length) : ''
      try {
        const list = await statusLists.get(id)
        return { ok: true, status: 200, text: async () => list.jwt }
      } catch {
        return { ok: false, status: 404, text: async () => '' }
      }
    },
  })
}
