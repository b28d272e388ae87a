// Data Integrity (VC Data Model 2.0, `DataIntegrityProof` / `eddsa-rdfc-2022`) credentials of the
// issuer: agent identity credentials and status-list credentials, signed with @digitalbazaar/vc
// through the issuer engine's key (the private key never leaves the Veramo KMS) and the verifier's
// own offline document loader, so that what the issuer signs is exactly what verifiers read.
// The JSON-LD stack (jsonld, rdf-canonize, @digitalbazaar/*) is imported on the first Data
// Integrity credential: an issuer that only issues JWTs never loads it.
import { AGENTID_CONTEXT_V1, AgentIdError, STATUS_LIST_CREDENTIAL } from '@agentid/core'
import { createDocumentLoader, type JsonLdDocumentLoader } from '@agentid/verifier'

/** The VC Data Model 2.0 base context. */
export const VC_CONTEXT_V2 = 'https://www.w3.org/ns/credentials/v2'
export const DI_CRYPTOSUITE = 'eddsa-rdfc-2022'

/** What a Data Integrity signer needs from the issuer: its DID, its did:key method id and raw-bytes signing. */
export interface DataIntegrityKey {
  /** The issuer DID (did:key only). */
  did: string
  /** The verification method: `did:key:z6Mk…#z6Mk…`. */
  keyId: string
  /** Ed25519 signature of raw bytes with the issuer key. */
  signBytes(data: Uint8Array): Promise<Uint8Array>
}

/** The fields of an agent identity credential, as the issuer decided them. */
export interface DiAgentCredentialInput {
  id: string
  subject: Record<string, unknown> & { id: string }
  validFrom: number
  validUntil: number
  status: { id: string; type: 'BitstringStatusListEntry'; statusPurpose: 'revocation'; statusListIndex: string; statusListCredential: string }
}

/** The fields of a status-list credential. */
export interface DiStatusListInput {
  url: string
  encodedList: string
  validFrom: number
  validUntil: number
}

// XML Schema dateTimeStamp in UTC, whole seconds.
const dateTime = (sec: number): string => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')

type Stack = {
  issue: typeof import('@digitalbazaar/vc').issue
  DataIntegrityProof: typeof import('@digitalbazaar/data-integrity').DataIntegrityProof
  cryptosuite: typeof import('@digitalbazaar/eddsa-rdfc-2022-cryptosuite').cryptosuite
}
let stack: Promise<Stack> | undefined
function loadStack(): Promise<Stack> {
  stack ??= Promise.all([import('@digitalbazaar/vc'), import('@digitalbazaar/data-integrity'), import('@digitalbazaar/eddsa-rdfc-2022-cryptosuite')]).then(
    ([vc, di, suite]) => ({ issue: vc.issue, DataIntegrityProof: di.DataIntegrityProof, cryptosuite: suite.cryptosuite }),
  )
  stack.catch(() => (stack = undefined))
  return stack
}

/** Unsigned VC 2.0 agent identity credential. */
export function agentCredentialDocument(issuer: string, input: DiAgentCredentialInput): Record<string, unknown> {
  return {
    '@context': [VC_CONTEXT_V2, AGENTID_CONTEXT_V1],
    id: input.id,
    type: ['VerifiableCredential', 'AgentIdentityCredential'],
    issuer,
    validFrom: dateTime(input.validFrom),
    validUntil: dateTime(input.validUntil),
    credentialSubject: input.subject,
    credentialStatus: input.status,
  }
}

/** Unsigned VC 2.0 BitstringStatusListCredential. */
export function statusListDocument(issuer: string, input: DiStatusListInput): Record<string, unknown> {
  return {
    '@context': [VC_CONTEXT_V2],
    id: input.url,
    type: ['VerifiableCredential', STATUS_LIST_CREDENTIAL],
    issuer,
    validFrom: dateTime(input.validFrom),
    validUntil: dateTime(input.validUntil),
    credentialSubject: { id: `${input.url}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: input.encodedList },
  }
}

/**
 * Signs VC 2.0 credentials with a `DataIntegrityProof` (`eddsa-rdfc-2022`, proof purpose
 * `assertionMethod`) by the issuer's did:key key. did:web issuers are refused (ERR_INVALID_INPUT):
 * verifiers resolve only did:key offline for Data Integrity.
 * @example
 * const di = new DataIntegritySigner({ did, keyId, signBytes: (d) => engine.signBytes(d) })
 * const vc = await di.sign(agentCredentialDocument(did, input), now)
 */
export class DataIntegritySigner {
  private readonly loader: JsonLdDocumentLoader = createDocumentLoader()

  constructor(private readonly key: DataIntegrityKey) {}

  /** Throws ERR_INVALID_INPUT unless this issuer can sign Data Integrity credentials (did:key only, for now). */
  assertSupported(): void {
    const multibase = this.key.did.startsWith('did:key:z6Mk') ? this.key.did.slice('did:key:'.length) : null
    if (multibase === null || this.key.keyId !== `${this.key.did}#${multibase}`) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'format: "di" needs a did:key issuer; this issuer runs as did:web (use format "jwt")', { details: { field: 'format' } })
    }
  }

  /** Adds the proof (created at `nowSec`) to an unsigned credential and returns the signed one. */
  async sign(credential: Record<string, unknown>, nowSec: number): Promise<Record<string, unknown>> {
    this.assertSupported()
    const { issue, DataIntegrityProof, cryptosuite } = await loadStack()
    const key = this.key
    const suite = new DataIntegrityProof({
      cryptosuite,
      date: new Date(nowSec * 1000),
      signer: { id: key.keyId, algorithm: 'Ed25519', sign: async ({ data }) => key.signBytes(data) },
    })
    try {
      return await issue({ credential, suite, documentLoader: this.loader, now: new Date(nowSec * 1000) })
    } catch (cause) {
      throw new AgentIdError('ERR_INTERNAL', 'Data Integrity signing failed', { cause, details: { reason: 'issuance_failed' } })
    }
  }
}
