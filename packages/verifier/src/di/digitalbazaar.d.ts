// Types for the untyped @digitalbazaar packages, limited to what agentid calls. Ambient module
// declarations: this file has no top-level import or export. Nothing here reaches the public API.

declare module '@digitalbazaar/credentials-context' {
  /** Context URL → context document (VC v1, VC v2, undefined-terms v2). */
  export const contexts: ReadonlyMap<string, unknown>
  export const named: ReadonlyMap<string, { id: string; context: unknown }>
}

declare module '@digitalbazaar/ed25519-multikey' {
  export interface Ed25519Verifier {
    algorithm: string
    id: string
    verify(options: { data: Uint8Array; signature: Uint8Array }): Promise<boolean>
  }
  export interface Ed25519Signer {
    algorithm: string
    id: string
    sign(options: { data: Uint8Array }): Promise<Uint8Array>
  }
  export interface Ed25519KeyPair {
    id?: string
    controller?: string
    publicKeyMultibase: string
    secretKeyMultibase?: string
    publicKey: Uint8Array
    secretKey?: Uint8Array
    signer(): Ed25519Signer
    verifier(): Ed25519Verifier
    export(options?: { publicKey?: boolean; secretKey?: boolean; includeContext?: boolean }): Promise<Record<string, unknown>>
  }
  export function generate(options?: { id?: string; controller?: string; seed?: Uint8Array }): Promise<Ed25519KeyPair>
  export function from(key: Record<string, unknown>): Promise<Ed25519KeyPair>
  export function fromJwk(options: { jwk: Record<string, unknown>; secretKey?: boolean; id?: string; controller?: string }): Promise<Ed25519KeyPair>
  export function toJwk(options: { keyPair: Ed25519KeyPair; secretKey?: boolean }): Promise<Record<string, unknown>>
}

declare module '@digitalbazaar/did-method-key' {
  export interface DidKeyDriver {
    method: string
    use(options: { multibaseMultikeyHeader: string; fromMultibase: (key: Record<string, unknown>) => Promise<unknown> }): void
    /** The DID document for a DID, or the verification method for a DID URL with a fragment. */
    get(options: { did?: string; url?: string }): Promise<Record<string, unknown>>
  }
  export function driver(): DidKeyDriver
}

declare module '@digitalbazaar/eddsa-rdfc-2022-cryptosuite' {
  export interface Cryptosuite {
    name: string
    requiredAlgorithm: string
    canonize(input: unknown, options: { documentLoader: (url: string) => Promise<unknown>; [option: string]: unknown }): Promise<string>
    createVerifier(options: { verificationMethod: Record<string, unknown> }): Promise<unknown>
  }
  export const cryptosuite: Cryptosuite
}

declare module '@digitalbazaar/data-integrity' {
  import type { Cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
  import type { Ed25519Signer } from '@digitalbazaar/ed25519-multikey'
  export class DataIntegrityProof {
    constructor(options: { cryptosuite: Cryptosuite; signer?: Ed25519Signer; date?: Date | string | number })
    readonly type: string
    readonly cryptosuite: string
  }
}

declare module '@digitalbazaar/vc' {
  import type { DataIntegrityProof } from '@digitalbazaar/data-integrity'
  export interface RemoteDocument {
    contextUrl: string | null
    documentUrl: string
    document: unknown
  }
  export type DocumentLoader = (url: string) => Promise<RemoteDocument>
  /** A jsonld-signatures proof purpose (duck-typed by jsonld-signatures). */
  export interface ProofPurpose {
    match(proof: Record<string, unknown>, options: Record<string, unknown>): Promise<boolean>
    validate(proof: Record<string, unknown>, options: Record<string, unknown>): Promise<{ valid: boolean; error?: unknown }>
  }
  export interface VerifyCredentialResult {
    verified: boolean
    error?: unknown
    results?: Array<{ verified: boolean; error?: unknown; proof?: unknown }>
    statusResult?: unknown
  }
  export function issue(options: {
    credential: Record<string, unknown>
    suite: DataIntegrityProof
    documentLoader: DocumentLoader
    now?: Date | string
    purpose?: ProofPurpose
  }): Promise<Record<string, unknown>>
  export function verifyCredential(options: {
    credential: unknown
    suite: DataIntegrityProof | DataIntegrityProof[]
    documentLoader: DocumentLoader
    now?: Date | string
    maxClockSkew?: number
    purpose?: ProofPurpose
    checkStatus?: (options: unknown) => Promise<{ verified: boolean }>
  }): Promise<VerifyCredentialResult>
}

// rdf-canonize (a dependency of the cryptosuite; a devDependency here, for the conformance tests).
declare module 'rdf-canonize' {
  export function canonize(input: unknown, options: { algorithm: 'RDFC-1.0'; inputFormat?: 'application/n-quads'; format?: 'application/n-quads'; [option: string]: unknown }): Promise<string>
}
