// The public face of the offline JSON-LD document loader. Light on purpose: the loader itself
// (./document-loader.js, which pulls in @digitalbazaar/*) is imported on the first document asked
// for, so importing @agentid/verifier still loads no JSON-LD module.

/** A JSON-LD remote document, as jsonld.js and @digitalbazaar/vc expect from a document loader. */
export interface JsonLdRemoteDocument {
  contextUrl: string | null
  documentUrl: string
  document: unknown
}

/** A JSON-LD document loader (`documentLoader` of jsonld.js, @digitalbazaar/vc and jsonld-signatures). */
export type JsonLdDocumentLoader = (url: string) => Promise<JsonLdRemoteDocument>

/**
 * The offline document loader the verifier uses for Data Integrity credentials: the pinned VC 2.0
 * and agentid v1 contexts, Ed25519 did:key documents computed locally (Multikey); every other URL
 * is refused with a VerificationError (ERR_DID_UNRESOLVABLE for a DID, ERR_MALFORMED otherwise).
 * It never makes a network call. Issuers sign with the same loader, so what they sign is what
 * verifiers read.
 * @example
 * const vc = await issue({ credential, suite, documentLoader: createDocumentLoader() })
 */
export function createDocumentLoader(): JsonLdDocumentLoader {
  let inner: Promise<JsonLdDocumentLoader> | undefined
  return async (url: string): Promise<JsonLdRemoteDocument> => {
    inner ??= import('./document-loader.js').then((m) => m.createDocumentLoader())
    return (await inner)(url)
  }
}
