import { base64urlEncode, decodeDidKey } from '@agentid/core'
import type { DidResolver } from '@agentid/verifier'
import { readText } from './remote.js'

type Document = Record<string, unknown>

export interface ResolverSources {
  /** The issuer the CLI talks to: its DID and where its DID document comes from. */
  issuer?: { did: string; document: () => Promise<Document | null> }
  /** For other did:web DIDs (https only). */
  fetch: typeof globalThis.fetch
}

const MAX_DOCUMENT_BYTES = 256 * 1024

/**
 * A DID resolver for `verify` when a trusted issuer is a did:web: the issuer the CLI talks to is
 * resolved through it (its database, or its `/.well-known/did.json`), other did:web DIDs over HTTPS
 * as the did:web method says, did:key from the DID itself.
 */
export function cliResolver(sources: ResolverSources): DidResolver {
  const result = (didDocument: Document | null, error?: string) =>
    ({ didResolutionMetadata: error ? { error } : {}, didDocument: didDocument as never, didDocumentMetadata: {} })
  return {
    async resolve(did: string) {
      if (did.startsWith('did:key:')) return result(didKeyDocument(did))
      if (sources.issuer && did === sources.issuer.did) {
        const doc = await sources.issuer.document()
        return doc ? result(doc) : result(null, 'notFound')
      }
      const url = didWebUrl(did)
      if (url === undefined) return result(null, did.startsWith('did:web:') ? 'invalidDid' : 'unsupportedDidMethod')
      const response = await sources.fetch(url, { headers: { accept: 'application/did+json, application/json' }, redirect: 'error', signal: AbortSignal.timeout(5000) })
      if (!response.ok) return result(null, 'notFound')
      const text = await readText(response, MAX_DOCUMENT_BYTES)
      if (text === undefined) return result(null, 'invalidDidDocument')
      try {
        const doc = JSON.parse(text) as unknown
        return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? result(doc as Document) : result(null, 'invalidDidDocument')
      } catch {
        return result(null, 'invalidDidDocument')
      }
    },
  }
}

function didKeyDocument(did: string): Document {
  const { keyId, publicKey } = decodeDidKey(did)
  return {
    id: did,
    verificationMethod: [{ id: keyId, type: 'JsonWebKey2020', controller: did, publicKeyJwk: { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(publicKey) } }],
    assertionMethod: [keyId],
    authentication: [keyId],
  }
}

/** `did:web:host%3Aport:a:b` → `https://host:port/a/b/did.json`; no path → `/.well-known/did.json`. */
export function didWebUrl(did: string): string | undefined {
  const match = /^did:web:([A-Za-z0-9.-]+(?:%3[Aa][0-9]{1,5})?)((?::[A-Za-z0-9._~-]+)*)$/.exec(did)
  if (!match) return undefined
  const host = match[1]!.replace(/%3a/i, ':')
  const path = match[2] ? `${match[2].split(':').join('/')}/did.json` : '/.well-known/did.json'
  return `https://${host}${path}`
}
