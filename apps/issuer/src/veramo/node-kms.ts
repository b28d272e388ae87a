import { sign as cryptoSign, type KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { AbstractKeyManagementSystem, type AbstractPrivateKeyStore } from '@veramo/key-manager'
import type { IKey, ManagedKeyInfo, MinimalImportableKey, TKeyType } from '@veramo/core'
import { AgentIdError, base64urlEncode, ed25519SeedSigner, generateEd25519KeyPair, privateKeyFromSeed, type Ed25519SeedSigner } from '@agentid/core'

/** Algorithms an Ed25519 key of this KMS signs with (Veramo's `meta.algorithms`). */
const ED25519_ALGORITHMS = ['EdDSA', 'Ed25519'] as const
const HEX = /^(?:[0-9a-fA-F]{2})+$/

interface LoadedKey {
  privateKey: KeyObject
  publicKeyHex: string
  /**
   * The same key in libsodium where core's Ed25519 backend is libsodium, else null; null again once
   * wiped ({@link wipe}): a sign in flight that holds the key then signs with the KeyObject.
   */
  sodium: Ed25519SeedSigner | null
}

/** Wipes a key's libsodium copy (the KeyObject is freed, and wiped by OpenSSL, by the collector). */
function wipe(key: LoadedKey): void {
  key.sodium?.dispose()
  key.sodium = null
}

/**
 * A Veramo key management system (`AbstractKeyManagementSystem`) for Ed25519 on node:crypto,
 * keeping private keys in an `AbstractPrivateKeyStore` (encrypted at rest by ours). Behaves like
 * `@veramo/kms-local` for Ed25519: `privateKeyHex` is `seed ‖ publicKey` (64 bytes; a 32-byte seed
 * is also accepted on import), `kid` defaults to the public key hex, and `sign` returns the
 * signature as base64url, the form did-jwt's EdDSA signer expects. Decrypted keys are cached in
 * memory (a node:crypto `KeyObject`, and libsodium's key pair where core's Ed25519 backend is
 * libsodium), so a signature costs one call and no decryption. Ed25519 is deterministic: both give the
 * same signature.
 * Other key types, other algorithms and `sharedSecret` throw `not_supported` (`ERR_INVALID_INPUT`).
 * @example
 * const kms = new NodeEd25519KMS(privateKeyStore)
 * new KeyManager({ store: keyStore, kms: { local: kms } })
 */
export class NodeEd25519KMS extends AbstractKeyManagementSystem {
  readonly #store: AbstractPrivateKeyStore
  readonly #name: string
  readonly #cache = new Map<string, LoadedKey>()
  // Bumped by every change to the cache but a load's own: a load that read the store before one does
  // not cache what it read (a key deleted, or replaced, meanwhile).
  #generation = 0

  /** @param name - the name this KMS is registered under in KeyManager's `kms` map. */
  constructor(store: AbstractPrivateKeyStore, name = 'local') {
    super()
    this.#store = store
    this.#name = name
  }

  async createKey({ type, kid }: { type: TKeyType; meta?: unknown; kid?: string }): Promise<ManagedKeyInfo> {
    requireEd25519(type)
    // core's generator: generateKeyPairSync + a JWK export can deadlock Node 20 (see generateEd25519KeyPair).
    const jwk = generateEd25519KeyPair().privateJwk
    const privateKeyHex = Buffer.concat([Buffer.from(jwk.d, 'base64url'), Buffer.from(jwk.x, 'base64url')]).toString('hex')
    return this.importKey({ type, privateKeyHex, ...(kid === undefined ? {} : { kid }) })
  }

  async importKey(args: Omit<MinimalImportableKey, 'kms'>): Promise<ManagedKeyInfo> {
    requireEd25519(args?.type)
    const loaded = loadEd25519(args.privateKeyHex)
    const kid = args.kid ?? loaded.publicKeyHex
    const seedAndPublic = privateKeyHexOf(loaded)
    try {
      await this.#store.importKey({ alias: kid, type: 'Ed25519', privateKeyHex: seedAndPublic })
    } catch (error) {
      wipe(loaded)
      throw error
    }
    this.#generation++
    const previous = this.#cache.get(kid)
    if (previous) wipe(previous)
    this.#cache.set(kid, loaded)
    return managedKeyInfo(this.#name, kid, loaded.publicKeyHex)
  }

  async listKeys(): Promise<ManagedKeyInfo[]> {
    const keys = await this.#store.listKeys({})
    return keys.filter((k) => k.type === 'Ed25519').map((k) => {
      const loaded = loadEd25519(k.privateKeyHex)
      wipe(loaded) // only its public key is wanted here
      return managedKeyInfo(this.#name, k.alias, loaded.publicKeyHex)
    })
  }

  async deleteKey({ kid }: { kid: string }): Promise<boolean> {
    this.#forget(kid)
    try {
      return await this.#store.deleteKey({ alias: kid })
    } finally {
      // Again once the store has answered: a load meanwhile may have read the row before it went.
      this.#forget(kid)
    }
  }

  #forget(kid: string): void {
    this.#generation++
    const cached = this.#cache.get(kid)
    if (cached) wipe(cached)
    this.#cache.delete(kid)
  }

  /**
   * Signs raw bytes with EdDSA (Ed25519, RFC 8032) and returns the 64-byte signature as base64url.
   * `keyRef` is the key store's record (Veramo's KeyManager passes the whole `IKey`). `data` is the
   * bytes to sign: KeyManager has already turned `keyManagerSign`'s string forms (`utf-8`, `hex`/`base16`)
   * into bytes; a string that reaches the KMS directly is read as UTF-8, like did-jwt's EdDSASigner.
   */
  async sign({ keyRef, algorithm, data }: { keyRef: Pick<IKey, 'kid'>; algorithm?: string; data: Uint8Array; [x: string]: unknown }): Promise<string> {
    if (algorithm !== undefined && !(ED25519_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw notSupported(`not_supported: Cannot sign ${algorithm} using an Ed25519 key`)
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    if (!(bytes instanceof Uint8Array)) throw new TypeError('sign: data must be bytes')
    const key = await this.#load(keyRef?.kid)
    // libsodium on the event loop costs less CPU than node:crypto's sign on libuv's pool (about 30
    // against 60-75 µs per spawn here, the handoff included); without it, the pool keeps the loop free.
    // Read after the await: a key wiped meanwhile (deleted, imported again, cache cleared) has none.
    if (key.sodium !== null) return base64urlEncode(key.sodium.sign(bytes))
    return base64urlEncode(await signOnPool(null, bytes, key.privateKey))
  }

  async sharedSecret(_args: { myKeyRef: Pick<IKey, 'kid'>; theirKey: Pick<IKey, 'publicKeyHex' | 'type'> }): Promise<string> {
    throw notSupported('not_supported: this KMS does not compute shared secrets')
  }

  /** Drops every decrypted key from memory (they are reloaded from the store on next use). */
  clearCache(): void {
    // Wiped: the collector frees libsodium's copy without wiping it. A sign in flight that holds one
    // signs with its KeyObject instead.
    this.#generation++
    for (const key of this.#cache.values()) wipe(key)
    this.#cache.clear()
  }

  async #load(kid: string | undefined): Promise<LoadedKey> {
    if (typeof kid !== 'string') throw new TypeError('sign: keyRef.kid is required')
    const cached = this.#cache.get(kid)
    if (cached) return cached
    const generation = this.#generation
    let stored
    try {
      stored = await this.#store.getKey({ alias: kid })
    } catch (cause) {
      if (cause instanceof AgentIdError && cause.code !== 'ERR_NOT_FOUND') throw cause
      throw new AgentIdError('ERR_NOT_FOUND', `key_not_found: No key entry found for kid=${kid}`, { cause, details: { resource: 'private_key' } })
    }
    requireEd25519(stored.type)
    const loaded = loadEd25519(stored.privateKeyHex)
    // What was cached while the store answered wins: a concurrent load's (one key in memory, not two) or
    // an import's. A delete or a clear meanwhile: this sign uses what it read, once, and it is not kept.
    const current = this.#cache.get(kid)
    if (current) {
      wipe(loaded)
      return current
    }
    if (generation !== this.#generation) {
      wipe(loaded)
      return loaded
    }
    this.#cache.set(kid, loaded)
    return loaded
  }
}

const signOnPool = promisify(cryptoSign) as (algorithm: null, data: Uint8Array, key: KeyObject) => Promise<Buffer>

function requireEd25519(type: unknown): asserts type is 'Ed25519' {
  if (type !== 'Ed25519') throw notSupported(`not_supported: Key type not supported: ${String(type)}`)
}

function notSupported(message: string): AgentIdError {
  return new AgentIdError('ERR_INVALID_INPUT', message, { details: { reason: 'not_supported' } })
}

/** Parses `seed` (32 bytes) or `seed ‖ publicKey` (64 bytes, the public half checked) as hex. */
function loadEd25519(privateKeyHex: unknown): LoadedKey {
  if (typeof privateKeyHex !== 'string' || !HEX.test(privateKeyHex)) throw invalidKey('privateKeyHex must be hex')
  const bytes = Buffer.from(privateKeyHex, 'hex')
  if (bytes.length !== 32 && bytes.length !== 64) throw invalidKey('an Ed25519 private key is a 32-byte seed, or seed and public key (64 bytes)')
  const seed = bytes.subarray(0, 32)
  let privateKey: KeyObject
  let sodium: Ed25519SeedSigner | null
  try {
    try {
      privateKey = privateKeyFromSeed(seed)
    } catch (cause) {
      throw invalidKey('not an Ed25519 private key', cause)
    }
    sodium = ed25519SeedSigner(seed) // a bad AGENTID_ED25519 throws its own TypeError here
  } finally {
    bytes.fill(0, 0, 32)
  }
  const x = (privateKey.export({ format: 'jwk' }) as { x: string }).x
  const publicKeyHex = Buffer.from(x, 'base64url').toString('hex')
  // Both libraries derive the public key from the seed alone: they agree, or neither is used.
  if (sodium !== null && Buffer.from(sodium.publicKey).toString('hex') !== publicKeyHex) {
    sodium.dispose()
    throw invalidKey('libsodium and node:crypto derive different public keys from this seed')
  }
  if (bytes.length === 64 && bytes.subarray(32).toString('hex') !== publicKeyHex) {
    sodium?.dispose()
    throw invalidKey('the public half does not match the seed')
  }
  return { privateKey, publicKeyHex, sodium }
}

function privateKeyHexOf(key: LoadedKey): string {
  const jwk = key.privateKey.export({ format: 'jwk' }) as { d: string }
  return Buffer.from(jwk.d, 'base64url').toString('hex') + key.publicKeyHex
}

function invalidKey(message: string, cause?: unknown): AgentIdError {
  return new AgentIdError('ERR_INVALID_INPUT', `invalid_argument: ${message}`, { cause, details: { field: 'privateKeyHex' } })
}

function managedKeyInfo(kms: string, kid: string, publicKeyHex: string): ManagedKeyInfo {
  return { kid, kms, type: 'Ed25519', publicKeyHex, meta: { algorithms: [...ED25519_ALGORITHMS] } }
}
