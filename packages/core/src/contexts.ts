function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

const IRI = 'https://w3id.org/agentid#'

/**
 * The agentid JSON-LD context document, served as `AGENTID_CONTEXT_V1`
 * (`https://w3id.org/agentid/v1`). `@protected`, so no later context can change what a term means;
 * it defines the credential types and every claim, so JSON-LD safe mode (Data Integrity
 * canonicalization) keeps all of them. `toolProfile`, `attestation`, `capabilities` and `caveats`
 * are `@json` literals, signed as JSON (JCS): as plain RDF values, `"x"` and `["x"]` (a named profile
 * and a one-tool list) would be the same signed data, and list order would not be signed.
 * `model` carries a property-scoped context (which JSON-LD lets override the protected VC v2 `name`),
 * so the model's name is agentid's term, whatever base context is used.
 *
 * Kept equal to `src/contexts/agentid-v1.json` (a test checks it); a module rather than a JSON
 * import so that `tsc -b` ships it in `dist` without extra build steps.
 * @example
 * const loader = (url: string) => url === AGENTID_CONTEXT_V1 ? { document: AGENTID_CONTEXT_V1_DOCUMENT } : refuse(url)
 */
export const AGENTID_CONTEXT_V1_DOCUMENT = deepFreeze({
  '@context': {
    '@version': 1.1,
    '@protected': true,
    AgentIdentityCredential: `${IRI}AgentIdentityCredential`,
    AgentCapabilityCredential: `${IRI}AgentCapabilityCredential`,
    purpose: `${IRI}purpose`,
    controller: `${IRI}controller`,
    model: {
      '@id': `${IRI}model`,
      '@context': {
        '@version': 1.1,
        '@protected': true,
        provider: `${IRI}modelProvider`,
        name: `${IRI}modelName`,
        version: `${IRI}modelVersion`,
      },
    },
    toolProfile: { '@id': `${IRI}toolProfile`, '@type': '@json' },
    policyTier: `${IRI}policyTier`,
    dataAccessClass: `${IRI}dataAccessClass`,
    attestation: { '@id': `${IRI}attestation`, '@type': '@json' },
    spiffeId: `${IRI}spiffeId`,
    capabilities: { '@id': `${IRI}capabilities`, '@type': '@json' },
    caveats: { '@id': `${IRI}caveats`, '@type': '@json' },
    parentHash: `${IRI}parentHash`,
  },
} as const)


/**
 * SHA-256 (hex) of the shipped `contexts/agentid-v1.json` bytes (`@agentid/core/contexts/agentid-v1.json`,
 * also served by the issuer at `GET /contexts/agentid/v1`): what a verifier that is not written in
 * JavaScript pins. A test checks it against the file.
 * @example
 * createHash('sha256').update(bytes).digest('hex') === AGENTID_CONTEXT_V1_SHA256
 */
export const AGENTID_CONTEXT_V1_SHA256 = '2bb72c82e313bd94284b89392709057b1d5e4e15d4274348a9fdc7478b52ca6a'
