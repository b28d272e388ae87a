import type { KeyObject } from 'node:crypto'
import {
  assertEd25519PublicKey,
  base64urlDecode,
  base64urlEncode,
  parseDidKeySyntax,
  publicKeyFromRaw,
  ed25519Backend,
  verifyJwsSignature,
  verifyJwsSignatureAsync,
  verifyJwsSignatureRaw,
  type DecodedJws,
  VerificationError,
} from '@agentid/core'
import type { Resolvable } from 'did-resolver'
import { base58 } from './base58.js'
import { BoundedCache } from './lru.js'
import { isRecord } from './util.js'

/** A did-resolver `Resolvable` (a `Resolver`, or anything with the same `resolve`). */
export type DidResolver = Resolvable

/** Which verification relationship a key must have for the job at hand. */
export type KeyPurpose = 'assertionMethod' | 'authentication' | 'capabilityDelegation' | 'capabilityInvocation'

/**
 * A resolved Ed25519 key. Its encoding is checked the cheap way before the first signature it is asked
 * to verify: canonical, not of small order (refused ERR_DID_UNRESOLVABLE, invalidPublicKey, whatever
 * the signature). Before the signature, so that both backends answer alike: libsodium refuses such a
 * key inside its verify, where node:crypto's cofactorless equation accepts a signature made for it
 * without any secret (under the identity point, any R = [S]B). A key that is not on the curve never
 * verifies anything (ERR_SIGNATURE_INVALID, on both).
 *
 * Its node:crypto KeyObject is made on its second use: the first check imports the key from its JWK
 * for that one call (no KeyObject, whose construction was half the import: a stream of new agents'
 * did:keys, each verifying one delegation link, paid it for every key and then collected it).
 */
export class VerificationKey {
  private pointChecked = false
  private object: KeyObject | undefined
  private used = false

  constructor(
    readonly id: string,
    private readonly raw: Uint8Array,
  ) {}

  /** The key as a node:crypto KeyObject (made once, on demand). */
  get key(): KeyObject {
    return (this.object ??= publicKeyFromRaw(this.raw))
  }

  /** Verifies a JWS signature under this key; throws VerificationError. */
  async verify(jws: Pick<DecodedJws, 'signingInput' | 'signature'>, offload: boolean): Promise<void> {
    if (!offload) return this.verifySync(jws)
    this.checkPoint()
    await verifyJwsSignatureAsync(jws, this.key)
    this.used = true
  }

  /** The same check as {@link verify} on this thread, without a promise (the caller did not ask to offload). */
  verifySync(jws: Pick<DecodedJws, 'signingInput' | 'signature'>): void {
    this.checkPoint()
    const first = !this.used
    this.used = true
    // libsodium takes the raw key as it is: no import, no KeyObject (see core's ed25519Backend).
    if (ed25519Backend() === 'libsodium') verifyJwsSignatureRaw(jws, this.raw)
    else verifyJwsSignature(jws, first && this.object === undefined ? { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(this.raw) } : this.key)
  }

  /** The cheap checks of the key's encoding (canonical, not of small order), once; the curve equation is left to the signature. */
  private checkPoint(): void {
    if (!this.pointChecked) {
      assertEd25519PublicKey(this.raw, { signatureVerified: true })
      this.pointChecked = true
    }
  }
}

/**
 * The first of `keys` (a signer's candidates for the job) under which the JWS signature verifies, on
 * this thread; throws the last key's error when none does. The one loop of the credential, delegation
 * and lineage checks.
 */
export function verifyUnderAnyKeySync(keys: readonly VerificationKey[], jws: Pick<DecodedJws, 'signingInput' | 'signature'>): VerificationKey {
  let last: unknown
  for (const key of keys) {
    try {
      key.verifySync(jws)
      return key
    } catch (error) {
      last = error
    }
  }
  throw last
}

/** {@link verifyUnderAnyKeySync} through {@link VerificationKey.verify}: `offload` runs each check on libuv's thread pool. */
export async function verifyUnderAnyKey(keys: readonly VerificationKey[], jws: Pick<DecodedJws, 'signingInput' | 'signature'>, offload: boolean): Promise<VerificationKey> {
  let last: unknown
  for (const key of keys) {
    try {
      await key.verify(jws, offload)
      return key
    } catch (error) {
      last = error
    }
  }
  throw last
}

interface ResolvedKeys {
  /** Verification method id -> key, for keys listed under each purpose; null when `one` is set. */
  byPurpose: Map<KeyPurpose, Map<string, VerificationKey>> | null
  /**
   * The one key listed under every purpose (an Ed25519 did:key read from itself), or null. No map of
   * one entry: a cold delegation chain resolves a new did:key per link, and each built a Map.
   */
  one: VerificationKey | null
  /** `[one]`, returned as is for a kid naming it or no kid (a lineage hop names none). */
  oneList: readonly VerificationKey[] | null
  resolvedAt: number
}

const PURPOSES: readonly KeyPurpose[] = ['assertionMethod', 'authentication', 'capabilityDelegation', 'capabilityInvocation']

function unresolvable(did: string, message: string, cause?: unknown): never {
  throw new VerificationError('ERR_DID_UNRESOLVABLE', message, { details: { did }, cause })
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
 * The default resolver: did:key only, offline (did-resolver + key-did-resolver). Imported on its
 * first use: with {@link KeyResolver}'s `embeddedDidKey`, an Ed25519 did:key never reaches it, so
 * a service that sees only those never loads it (nor the curve arithmetic it pulls in).
 */
export function defaultDidResolver(): DidResolver {
  let loading: Promise<DidResolver> | undefined
  return {
    async resolve(did, options) {
      loading ??= Promise.all([import('did-resolver'), import('key-did-resolver')]).then(([{ Resolver }, { getResolver }]) => new Resolver(getResolver()))
      return (await loading).resolve(did, options)
    },
  }
}

/**
 * Resolves DIDs to their Ed25519 verification keys through the injected resolver, with a bounded
 * cache: resolution is slow (~ 170 µs for did:key through did-resolver, most of it deriving the
 * X25519 keyAgreement key with pure-JS curve arithmetic), verification must not be.
 *
 * `embeddedDidKey` (set when no resolver was injected): an Ed25519 did:key is resolved from the
 * DID itself, to what key-did-resolver's document says of it (its one key under every purpose but
 * keyAgreement, which is never used here): 10 µs instead of 200.
 */
export class KeyResolver {
  private readonly cache: BoundedCache<string, ResolvedKeys>
  private readonly inflight = new Map<string, Promise<ResolvedKeys>>()

  constructor(
    private readonly resolver: DidResolver,
    cacheSize: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly embeddedDidKey = false,
  ) {
    this.cache = new BoundedCache(cacheSize)
  }

  /**
   * The Ed25519 keys that `did` lists for `purpose`. With `kid`, only that key (which must belong
   * to `did` and be listed for `purpose`). Throws ERR_DID_UNRESOLVABLE or ERR_KEY_MISMATCH.
   */
  async keysFor(did: string, purpose: KeyPurpose, kid?: string): Promise<readonly VerificationKey[]> {
    return this.select(await this.resolve(did), did, purpose, kid)
  }

  /**
   * {@link keysFor} without a promise when the answer is at hand: `did` resolved within the TTL (or an
   * Ed25519 did:key read from itself, with no injected resolver). Undefined when it must be resolved
   * (then call `keysFor`). Throws as `keysFor` does.
   *
   * `remember` false: an Ed25519 did:key read from itself is not put in the DID cache (one already
   * there is used). For a signer that a stream of new agents sees once, a delegation link below the
   * root: its entry (keys, their raw bytes and id) outlived the young generation only to be evicted,
   * so the garbage collector copied and promoted it for nothing, and it evicted entries that are
   * used again (a resolved did:web). Reading the key again from the DID costs about a microsecond.
   */
  keysForSync(did: string, purpose: KeyPurpose, kid?: string, remember = true): readonly VerificationKey[] | undefined {
    const cached = this.cache.get(did)
    const resolved = cached && this.now() - cached.resolvedAt < this.ttlMs ? cached : this.embeddedDidKey ? this.fromDidKey(did, remember) : undefined
    return resolved === undefined ? undefined : this.select(resolved, did, purpose, kid)
  }

  private select(resolved: ResolvedKeys, did: string, purpose: KeyPurpose, kid?: string): readonly VerificationKey[] {
    const one = resolved.one
    if (one !== null) {
      // The general path below with a map of this one key: the same answers and the same errors.
      if (kid === undefined || kid === one.id) return resolved.oneList!
      const full = kid.startsWith('#') ? did + kid : kid
      if (!full.startsWith(did + '#')) {
        throw new VerificationError('ERR_KEY_MISMATCH', 'kid names a key of another DID', { details: { did, kid } })
      }
      if (full !== one.id) throw new VerificationError('ERR_KEY_MISMATCH', `kid is not an Ed25519 ${purpose} key of the DID`, { details: { did, kid } })
      return resolved.oneList!
    }
    const keys = resolved.byPurpose!.get(purpose)!
    if (kid !== undefined) {
      // The usual case, a full kid naming a key of the DID, found without building strings.
      const direct = kid.length > did.length && kid.charCodeAt(did.length) === 0x23 /* # */ && kid.startsWith(did) ? keys.get(kid) : undefined
      if (direct !== undefined) return [direct]
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
    if (this.embeddedDidKey) {
      const resolved = this.fromDidKey(did)
      if (resolved) return resolved
    }
    let pending = this.inflight.get(did)
    if (!pending) {
      pending = this.load(did).finally(() => this.inflight.delete(did))
      this.inflight.set(did, pending)
    }
    return pending
  }

  /** An Ed25519 did:key's keys from the DID alone; undefined for anything else (left to the resolver). */
  private fromDidKey(did: string, remember = true): ResolvedKeys | undefined {
    if (typeof did !== 'string' || !did.startsWith('did:key:z6Mk')) return undefined
    let parsed
    try {
      parsed = parseDidKeySyntax(did)
    } catch {
      return undefined
    }
    const key = new VerificationKey(parsed.keyId, parsed.publicKey)
    // Its one key under every purpose: no map of purposes, nor of keys, to build.
    const resolved: ResolvedKeys = { byPurpose: null, one: key, oneList: [key], resolvedAt: this.now() }
    if (remember) this.cache.set(did, resolved)
    return resolved
  }

  private async load(did: string): Promise<ResolvedKeys> {
    if (typeof did !== 'string' || !did.startsWith('did:') || did.includes('#') || did.length > 2048) unresolvable(String(did), 'not a DID')
    // did:key carries its key: the document must name exactly that key.
    const embedded = did.startsWith('did:key:') ? parseDidKeySyntax(did).publicKey : undefined
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
    const byPurpose = new Map<KeyPurpose, Map<string, VerificationKey>>()
    const objects = new Map<string, VerificationKey>()
    for (const purpose of PURPOSES) {
      const keys = new Map<string, VerificationKey>()
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
          if (!raw || raw.length !== 32) continue
          if (embedded && Buffer.compare(Buffer.from(raw), Buffer.from(embedded)) !== 0) unresolvable(did, 'did:key document names a key other than its own')
          key = new VerificationKey(id, raw)
          objects.set(id, key)
        }
        keys.set(id, key)
      }
      byPurpose.set(purpose, keys)
    }
    const resolved: ResolvedKeys = { byPurpose, one: null, oneList: null, resolvedAt: this.now() }
    this.cache.set(did, resolved)
    return resolved
  }
}
