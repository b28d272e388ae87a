// Types for the untyped @digitalbazaar packages the issuer signs with, limited to what di.ts calls.
// Ambient module declarations: this file has no top-level import or export.

declare module '@digitalbazaar/eddsa-rdfc-2022-cryptosuite' {
  export interface Cryptosuite {
    name: string
    requiredAlgorithm: string
  }
  export const cryptosuite: Cryptosuite
}

declare module '@digitalbazaar/data-integrity' {
  import type { Cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
  export interface DataIntegritySigner {
    algorithm: string
    id: string
    sign(options: { data: Uint8Array }): Promise<Uint8Array>
  }
  export class DataIntegrityProof {
    constructor(options: { cryptosuite: Cryptosuite; signer?: DataIntegritySigner; date?: Date | string | number })
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
  export interface VerifyCredentialResult {
    verified: boolean
    error?: unknown
  }
  export function issue(options: {
    credential: Record<string, unknown>
    suite: DataIntegrityProof
    documentLoader: DocumentLoader
    now?: Date | string
  }): Promise<Record<string, unknown>>
  export function verifyCredential(options: {
    credential: unknown
    suite: DataIntegrityProof | DataIntegrityProof[]
    documentLoader: DocumentLoader
    now?: Date | string
    checkStatus?: (options: unknown) => Promise<{ verified: boolean }>
  }): Promise<VerifyCredentialResult>
}
