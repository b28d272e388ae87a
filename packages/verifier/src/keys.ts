import type { KeyObject } from 'node:crypto'
import {
  assertEd25519PublicKey,
  base64urlDecode,
  decodeDidKey,
  publicKeyFromRaw,
  VerificationError,
} from '@agentid/core'
import type { Resolvable } from 'did-resolver'
import { base58 } from './base58.js'
import { BoundedCache } from './lru.js'

/** A did-resolver `Resolvable` (a `Resolver`, or anything with the same `resolve`). */
export type DidResolver = Resolvable

/** Which verification relationship a key must have for the job at hand. */
export type KeyPurpose = 'assertionMethod' | 'authentication' | 'capabilityDelegation' | 'capabilityInvocation'

interface ResolvedKeys {
  /** Verification method id → key, for keys listed under each purpose. */
  byPurpose: Map<KeyPurpose, Map<string, KeyObject>>
  resolvedAt: number
}

const PURPOSES: readonly KeyPurpose[] = ['assertionMethod', 'authentication', 'capabilityDelegation', 'capabilityInvocation']

function unresolvable(did: string, message: string, cause?: unknown): never {
  throw new VerificationError('ERR_DID_UNRESOLVABLE', message, { details: { did }, cause })
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Raw Ed25519 key bytes from a verification method, or undefined for other key types. */
function ed25519KeyOf(method: Record<string, unknown>): Uint8Array | undefined {
  const type = method.type
  if (typeof method.publicKeyBase58 === 'string' && type === 'Ed25519VerificationKey2018') {
    return base58.decode(method.publicKeyBase58)
  }
  if (typeof method.publicKeyMultibase === 'string' && (type === 'Ed25519VerificationKey2020' || type === 'Multikey')) {
    const mb = method.publicKeyMultibase
    if (!mb.startsWith('z')) return undefined
    const bytes = base58.decode(mb.slice(1))
    if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) return undefined
    return bytes.subarray(2)
  }
  if (isRecord(method.publicKeyJwk) && (type === 'JsonWebKey2020' || type === 'JsonWebKey')) {
    const jwk = method.publicKeyJwk
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || 'd' in jwk) return undefined
    return base64urlDecode(jwk.x, 'publicKeyJwk.x')
  }
  return undefined
}

/**
 * Resolves DIDs to their Ed25519 verification keys through the injected resolver, with a bounded
 * cache: resolution is slow (≈ 170 µs for did:key through did-resolver), verification must not be.
 */
export class KeyResolver {
  private readonly cache: BoundedCache<string, ResolvedKeys>
  private readonly inflight = new Map<string, Promise<ResolvedKeys>>()

  constructor(
    private readonly resolver: DidResolver,
    cacheSize: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {
    this.cache = new BoundedCache(cacheSize)
  }

  /**
   * The Ed25519 keys that `did` lists for `purpose`. With `kid`, only that key (which must belong
   * to `did` and be listed for `purpose`). Throws ERR_DID_UNRESOLVABLE or ERR_KEY_MISMATCH.
   */
  async keysFor(did: string, purpose: KeyPurpose, kid?: string): Promise<KeyObject[]> {
    const resolved = await this.resolve(did)
    const keys = resolved.byPurpose.get(purpose)!
    if (kid !== undefined) {
      const full = kid.startsWith('#') ? did + kid : kid
      if (!full.startsWith(did + '#')) {
        throw new VerificationError('ERR_KEY_MISMATCH', 'kid names a key of another DID', { details: { did, kid } })
      }
      const key = keys.get(full)
      if (!key) throw new VerificationError('ERR_KEY_MISMATCH', `kid is not an Ed25519 ${purpose} key of the DID`, { details: { did, kid } })
      return [key]
    }
    if (keys.size === 0) throw new VerificationError('ERR_KEY_MISMATCH', `the DID has no Ed25519 ${purpose} key`, { details: { did } })
    return [...keys.values()]
  }

  private async resolve(did: string): Promise<ResolvedKeys> {
    const cached = this.cache.get(did)
    if (cached && this.now() - cached.resolvedAt < this.ttlMs) return cached
    let pending = this.inflight.get(did)
    if (!pending) {
      pending = this.load(did).finally(() => this.inflight.delete(did))
      this.inflight.set(did, pending)
    }
    return pending
  }

  private async load(did: string): Promise<ResolvedKeys> {
    if (typeof did !== 'string' || !did.startsWith('did:') || did.includes('#') || did.length > 2048) unresolvable(String(did), 'not a DID')
    // did:key carries its key: check it strictly (canonical point, not small order) before trusting any document.
    const embedded = did.startsWith('did:key:') ? decodeDidKey(did).publicKey : undefined
    let result
    try {
      result = await this.resolver.resolve(did)
    } catch (cause) {
      return unresolvable(did, 'DID resolution failed', cause)
    }
    const doc = result?.didDocument
    if (result?.didResolutionMetadata?.error || !isRecord(doc)) unresolvable(did, `DID resolution failed: ${String(result?.didResolutionMetadata?.error ?? 'no document')}`)
    if (doc.id !== did) unresolvable(did, 'resolved DID document has another id')
    const methods = new Map<string, Record<string, unknown>>()
    for (const vm of Array.isArray(doc.verificationMethod) ? doc.verificationMethod : []) {
      if (isRecord(vm) && typeof vm.id === 'string') methods.set(vm.id.startsWith('#') ? did + vm.id : vm.id, vm)
    }
    const byPurpose = new Map<KeyPurpose, Map<string, KeyObject>>()
    const objects = new Map<string, KeyObject>()
    for (const purpose of PURPOSES) {
      const keys = new Map<string, KeyObject>()
      for (const ref of Array.isArray(doc[purpose]) ? doc[purpose] : []) {
        const vm = typeof ref === 'string' ? methods.get(ref.startsWith('#') ? did + ref : ref) : isRecord(ref) ? ref : undefined
        if (!vm || typeof vm.id !== 'string') continue
        const id = vm.id.startsWith('#') ? did + vm.id : vm.id
        if (!id.startsWith(did + '#') || (vm.controller !== undefined && vm.controller !== did)) continue
        let key = objects.get(id)
        if (!key) {
          let raw: Uint8Array | undefined
          try {
            raw = ed25519KeyOf(vm)
          } catch {
            raw = undefined
          }
          if (!raw) continue
          assertEd25519PublicKey(raw)
          if (embedded && Buffer.compare(Buffer.from(raw), Buffer.from(embedded)) !== 0) unresolvable(did, 'did:key document names a key other than its own')
          key = publicKeyFromRaw(raw)
          objects.set(id, key)
        }
        keys.set(id, key)
      }
      byPurpose.set(purpose, keys)
    }
    const resolved = { byPurpose, resolvedAt: this.now() }
    this.cache.set(did, resolved)
    return resolved
  }
}
