import { AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_DOCUMENT, isDidKeySyntax, VerificationError } from '@agentid/core'
import { contexts } from '@digitalbazaar/credentials-context'
import * as DidKey from '@digitalbazaar/did-method-key'
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey'
import type { DocumentLoader, RemoteDocument } from '@digitalbazaar/vc'
import { BoundedCache } from '../lru.js'
import { deepFreeze } from '../util.js'

export type { DocumentLoader, RemoteDocument }

/** The VC Data Model 2.0 base context URL. */
export const VC_CONTEXT_V2 = 'https://www.w3.org/ns/credentials/v2'

const vcV2 = contexts.get(VC_CONTEXT_V2)
if (vcV2 === undefined) throw new Error('@digitalbazaar/credentials-context does not hold the VC v2 context')

/**
 * The only contexts production serves: VC v2 (as published in the REC; its SHA-256 is checked
 * against the pinned vectors/vc-contexts copy in a test) and the agentid context shipped in core.
 */
const PINNED: ReadonlyMap<string, unknown> = new Map<string, unknown>([
  [VC_CONTEXT_V2, vcV2],
  [AGENTID_CONTEXT_V1, AGENTID_CONTEXT_V1_DOCUMENT],
])

const didKey = DidKey.driver()
didKey.use({ multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from })

function unresolvable(url: string, message: string, cause?: unknown): never {
  throw new VerificationError('ERR_DID_UNRESOLVABLE', message, { details: { did: url.slice(0, 256) }, cause })
}

/**
 * did:key documents by URL: a did:key's document is a function of the DID, so it is computed once
 * (did-method-key also derives the X25519 keyAgreement key, in pure JS: most of a DI verification's
 * cost beyond the signature when every credential is resolved anew). Deep-frozen: jsonld and the
 * suites only read it. Bounded like the JWT path's DID cache.
 */
const didKeyDocuments = new BoundedCache<string, RemoteDocument>(1_000)

async function resolveDidKey(url: string): Promise<RemoteDocument> {
  const cached = didKeyDocuments.get(url)
  if (cached) return cached
  const hash = url.indexOf('#')
  const did = hash === -1 ? url : url.slice(0, hash)
  // Ed25519 did:key only, checked by our own codec before the library sees it.
  if (!isDidKeySyntax(did)) unresolvable(url, 'only Ed25519 did:key DIDs are resolved offline')
  if (hash !== -1 && url.slice(hash + 1) !== did.slice('did:key:'.length)) unresolvable(url, 'unknown verification method of a did:key')
  let document: Record<string, unknown>
  try {
    document = await didKey.get({ url })
  } catch (cause) {
    return unresolvable(url, 'did:key cannot be decoded', cause)
  }
  const remote: RemoteDocument = deepFreeze({ contextUrl: null, documentUrl: url, document })
  didKeyDocuments.set(url, remote)
  return remote
}

/**
 * Creates the JSON-LD document loader for Data Integrity verification. Offline by construction:
 * it serves pinned contexts and computes did:key documents (Multikey, via
 * @digitalbazaar/did-method-key and ed25519-multikey); every other URL is refused —
 * ERR_DID_UNRESOLVABLE for a DID, ERR_MALFORMED for anything else. It never makes a network call.
 *
 * `testContexts` adds contexts for conformance tests only (the W3C examples context); production
 * code never passes it.
 * @example
 * const loader = createDocumentLoader()
 * await loader('https://www.w3.org/ns/credentials/v2') // { document: {...} }
 * await loader('https://evil.example/ctx')            // throws VerificationError ERR_MALFORMED
 */
export function createDocumentLoader(testContexts?: ReadonlyMap<string, unknown>): DocumentLoader {
  return async (url: string): Promise<RemoteDocument> => {
    if (typeof url !== 'string') throw new VerificationError('ERR_MALFORMED', 'JSON-LD document URL must be a string')
    const pinned = PINNED.get(url) ?? testContexts?.get(url)
    if (pinned !== undefined) return { contextUrl: null, documentUrl: url, document: pinned }
    if (url.startsWith('did:')) {
      if (url.startsWith('did:key:')) return resolveDidKey(url)
      unresolvable(url, 'only did:key is resolved offline for Data Integrity credentials')
    }
    throw new VerificationError('ERR_MALFORMED', 'JSON-LD context is not one of the pinned contexts', { details: { url: url.slice(0, 256) } })
  }
}
