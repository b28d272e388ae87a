/**
 * The one module through which the issuer uses Veramo. Nothing Veramo-typed leaves this file: the
 * rest of the issuer sees {@link IssuerEngine}.
 */
import { verify as cryptoVerify } from 'node:crypto'
import type { Database } from 'better-sqlite3'
import { createAgent, type Agent as VeramoAgent, type ManagedKeyInfo, type ICredentialPlugin, type IDIDManager, type IIdentifier, type IKey, type IKeyManager, type IResolver, type TAgent } from '@veramo/core'
import { CredentialPlugin } from '@veramo/credential-w3c'
import { DIDManager } from '@veramo/did-manager'
import { KeyDIDProvider } from '@veramo/did-provider-key'
import { DIDResolverPlugin } from '@veramo/did-resolver'
import { KeyManager } from '@veramo/key-manager'
import { parse as parseDid, Resolver, type DIDResolutionResult, type Resolvable } from 'did-resolver'
import { getResolver as getKeyDidResolver } from 'key-did-resolver'
import {
  AgentIdError,
  base64urlDecode,
  base64urlEncode,
  jwkThumbprint,
  publicKeyFromRaw,
  signCompactJws,
  type Ed25519PublicJwk,
  type JwsHeader,
  type Signer,
} from '@agentid/core'
import { createCryptoBox } from '../crypto-box.js'
import { SqliteDIDStore } from './sqlite-did-store.js'
import { StorageDIDStore, StorageKeyStore, StoragePrivateKeyStore } from './storage-stores.js'
import type { IssuerStorage } from '../storage/types.js'
import { AbstractDIDStore } from '@veramo/did-manager'
import { AbstractKeyStore } from '@veramo/key-manager'
import { SqliteKeyStore } from './sqlite-key-store.js'
import { SqlitePrivateKeyStore } from './sqlite-private-key-store.js'
import { NodeEd25519KMS } from './node-kms.js'
import { CredentialProviderJWT } from '@veramo/credential-jwt'
import { jwtVcClaims, type JwtCredentialInput } from './jwt-vc.js'

export type { JwtCredentialInput } from './jwt-vc.js'

/** HKDF `info` of the key that seals private keys in `private_keys`. Changing it orphans every stored key. */
export const PRIVATE_KEY_BOX_INFO = 'agentid/issuer/private-keys/v1'
/** Alias of the issuer's identifier in the `identifiers` table. */
export const ISSUER_ALIAS = 'issuer'

const KMS = 'local'
const DID_CONTEXT = 'https://www.w3.org/ns/did/v1'
const JWS_2020_CONTEXT = 'https://w3id.org/security/suites/jws-2020/v1'
const HOST = /^(?=.{1,253}(?::|$))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::([0-9]{1,5}))?$/

type Agent = TAgent<IDIDManager & IKeyManager & IResolver & ICredentialPlugin>

export interface IssuerEngineOptions {
  /** The issuer database from `openDatabase` (schema migrated). The engine does not close it. */
  db?: Database
  /**
   * Instead of `db`: the issuer's storage (storage/, e.g. PostgreSQL); the Veramo stores then go
   * through `storage.veramo`, and several instances starting together create one issuer identity.
   */
  storage?: IssuerStorage
  /** The 32-byte master secret (see `loadMasterSecret`) that seals the issuer's private key. */
  secret: Uint8Array
  /** Public base URL of the issuer (`https://issuer.example.com`); validated and exposed as {@link IssuerEngine.baseUrl} for building status-list URLs. */
  baseUrl: string
  /**
   * Run as `did:web:<domain>` (a host name, optionally `:port`) instead of `did:key`. The DID
   * document is then served from `https://<domain>/.well-known/did.json` ({@link IssuerEngine.didDocument}).
   */
  didWebDomain?: string
  /** Clock in unix seconds (default: system clock), for row timestamps. */
  now?: () => number
}

/** The issuer's identity: its DID and the verification method that signs (the JWS `kid`). */
export interface IssuerIdentity {
  readonly did: string
  /** Verification method id, `did:key:z6Mk…#z6Mk…` or `did:web:<domain>#<JWK thumbprint>`. */
  readonly keyId: string
  /** The issuer's public key. */
  readonly publicJwk: Ed25519PublicJwk
}

/** A DID document as served at `/.well-known/did.json`. */
export interface IssuerDidDocument {
  '@context': string[]
  id: string
  verificationMethod: Array<{ id: string; type: 'JsonWebKey2020'; controller: string; publicKeyJwk: Ed25519PublicJwk }>
  authentication: string[]
  assertionMethod: string[]
}

/** The issuer's storage-backed signing engine. */
export interface IssuerEngine {
  /** Created on first start (alias `issuer`), the same after every restart on the same database. */
  readonly issuer: IssuerIdentity
  /** `baseUrl` without a trailing slash. */
  readonly baseUrl: string
  /**
   * Issues a JWT VC (`alg: EdDSA`, `kid` = {@link IssuerIdentity.keyId}): byte for byte what Veramo's
   * `createVerifiableCredential` with proof format `jwt` issues (did-jwt-vc's encoding, built directly
   * by `jwt-vc.ts`), signed through Veramo's key manager. The credential must already be complete:
   * malformed input (or a member the encoding does not cover) is a programming error and throws
   * `TypeError`; a failure to sign throws `ERR_INTERNAL`.
   * @returns the compact JWT.
   */
  issueJwtCredential(credential: JwtCredentialInput): Promise<string>
  /**
   * Signs a JWT with the issuer key: header `{ alg: 'EdDSA', kid: issuer.keyId, ...header }` (`alg` may
   * not be changed), payload as given. For status-list credentials and other issuer-signed tokens.
   */
  signJwt(header: Omit<JwsHeader, 'alg'> & { alg?: 'EdDSA' }, payload: Record<string, unknown>): Promise<string>
  /**
   * Signs raw bytes with the issuer key (Ed25519, through Veramo's `keyManagerSign`, hex-encoded so
   * that any bytes pass exactly) and returns the 64-byte signature. For Data Integrity proofs, whose
   * signing input is binary (two SHA-256 digests).
   */
  signBytes(data: Uint8Array): Promise<Uint8Array>
  /**
   * The issuer key as a `Signer` (for `delegate()` from @agentid/delegation): signs a JWS signing
   * input (ASCII) through the Veramo KMS, like {@link signJwt}.
   */
  signer(): Signer
  /** The issuer's DID document when it runs as `did:web`; `null` for `did:key` (resolvable from the DID alone). */
  didDocument(): IssuerDidDocument | null
  /** Drops decrypted key material from memory; later calls throw `ERR_INTERNAL`. Does not close `db`. */
  close(): Promise<void>
}

// The Veramo agent behind each engine, for interoperability checks in tests (never exported from index.ts).
const agents = new WeakMap<IssuerEngine, Agent>()

/**
 * Builds the issuer's Veramo agent on the SQLite database — DID, key and private-key stores on
 * better-sqlite3, an Ed25519 KMS on node:crypto, did:key resolution plus an offline resolver for the
 * issuer's own DID, and JWT credentials through `@veramo/credential-w3c` — then loads the issuer
 * identity, creating it on first start. The issuer key is test-signed at startup, so a wrong master
 * secret fails here (`ERR_INTERNAL`, `details.reason: 'secret_mismatch'`), not on the first request.
 * A database whose issuer does not match the configuration (did:key vs did:web, another domain)
 * throws `ERR_CONFLICT` rather than silently switching issuers.
 * @example
 * const db = openDatabase(join(dataDir, 'issuer.db'))
 * const engine = await createIssuerEngine({ db, secret: loadMasterSecret({ dataDir }).key, baseUrl: 'https://issuer.example.com' })
 * const jwt = await engine.issueJwtCredential({ '@context': [VC_CONTEXT_V1], type: ['VerifiableCredential'], id, credentialSubject, issuanceDate, expirationDate })
 */
export async function createIssuerEngine(options: IssuerEngineOptions): Promise<IssuerEngine> {
  const { db, storage, secret } = options ?? ({} as IssuerEngineOptions)
  if (storage === undefined && (!db || typeof db.prepare !== 'function')) throw new TypeError('createIssuerEngine: db is required')
  if (!(secret instanceof Uint8Array) || secret.length !== 32) throw new TypeError('createIssuerEngine: secret must be 32 bytes')
  const baseUrl = parseBaseUrl(options.baseUrl)
  const webDid = options.didWebDomain === undefined ? undefined : didWebFromDomain(options.didWebDomain)
  const now = options.now ?? (() => Math.floor(Date.now() / 1000))

  const box = createCryptoBox(secret, PRIVATE_KEY_BOX_INFO)
  const didStore: AbstractDIDStore = storage !== undefined ? new StorageDIDStore(storage, now) : new SqliteDIDStore(db!, now)
  const keyStore = new PinnedKeyStore(storage !== undefined ? new StorageKeyStore(storage) : new SqliteKeyStore(db!))
  const kms = new NodeEd25519KMS(storage !== undefined ? new StoragePrivateKeyStore(storage, box) : new SqlitePrivateKeyStore(db!, box), KMS)

  // Resolution: the issuer's own DID from memory (offline, also for did:web), other did:key DIDs computed.
  let own: { did: string; resolution: DIDResolutionResult } | undefined
  const didKeyResolver = new Resolver(getKeyDidResolver())
  const resolver: Resolvable = {
    async resolve(didUrl, resolveOptions) {
      if (own !== undefined && parseDid(didUrl)?.did === own.did) return structuredClone(own.resolution)
      return didKeyResolver.resolve(didUrl, resolveOptions)
    },
  }

  // The issuer's identifier never changes while the engine runs: serve it from memory once loaded
  // (credential-w3c and credential-jwt each look it up on every issuance).
  let issuerIdentifier: IIdentifier | undefined
  const agent: Agent = createAgent<IDIDManager & IKeyManager & IResolver & ICredentialPlugin>({
    plugins: [
      new KeyManager({ store: keyStore, kms: { [KMS]: kms } }),
      new DIDManager({ store: didStore, defaultProvider: 'did:key', providers: { 'did:key': new KeyDIDProvider({ defaultKms: KMS }) } }),
      new DIDResolverPlugin({ resolver }),
      // Veramo's own JWT issuance, kept for the interoperability tests (veramoIssueCredential).
      new CredentialPlugin([new CredentialProviderJWT()]),
    ],
    overrides: {
      // Frozen: a plugin that tried to modify it would throw instead of corrupting the cache.
      didManagerGet: async ({ did }: { did: string }): Promise<IIdentifier> =>
        issuerIdentifier !== undefined && did === issuerIdentifier.did ? issuerIdentifier : didStore.getDID({ did }),
    },
  })
  directDispatch(agent)

  const identifier = deepFreeze(await loadOrCreateIssuer(storage ?? db!, agent, didStore, webDid))
  const controller = identifier.keys.find((k) => k.kid === identifier.controllerKeyId) ?? identifier.keys[0]
  if (!controller || controller.type !== 'Ed25519' || !/^[0-9a-f]{64}$/.test(controller.publicKeyHex)) {
    throw new AgentIdError('ERR_INTERNAL', 'the stored issuer has no Ed25519 key', { details: { reason: 'issuer_key_missing', did: identifier.did } })
  }
  const veramoKid = controller.kid
  issuerIdentifier = identifier
  keyStore.pin(controller)
  const publicKeyBytes = Buffer.from(controller.publicKeyHex, 'hex')
  const publicJwk: Ed25519PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(publicKeyBytes) }
  const issuer: IssuerIdentity = Object.freeze({
    did: identifier.did,
    keyId: webDid === undefined ? `${identifier.did}#${identifier.did.slice('did:key:'.length)}` : `${identifier.did}#${jwkThumbprint(publicJwk)}`,
    publicJwk: Object.freeze(publicJwk),
  })

  const document = webDid === undefined ? null : buildDidDocument(issuer)
  own = {
    did: issuer.did,
    resolution: document
      ? { didResolutionMetadata: { contentType: 'application/did+ld+json' }, didDocument: document as never, didDocumentMetadata: {} }
      : await didKeyResolver.resolve(issuer.did),
  }

  // Through KeyManager, as Veramo signs. A JWS signing input is ASCII, so the UTF-8 round trip is exact.
  const sign = async (data: Uint8Array): Promise<Uint8Array> => {
    const signature = await agent.keyManagerSign({ keyRef: veramoKid, data: Buffer.from(data).toString('utf8'), encoding: 'utf-8', algorithm: 'EdDSA' })
    return base64urlDecode(signature, 'KMS signature')
  }
  await startupCheck(sign, publicKeyBytes)

  let closed = false
  const open = (): void => {
    if (closed) throw new AgentIdError('ERR_INTERNAL', 'the issuer engine is closed', { details: { reason: 'engine_closed' } })
  }

  const engine: IssuerEngine = {
    issuer,
    baseUrl,

    async issueJwtCredential(credential: JwtCredentialInput): Promise<string> {
      open()
      // Veramo's encoding (jwt-vc.ts), signed through its key manager as Veramo signs it.
      const { header, claims } = jwtVcClaims(credential, issuer.did, issuer.keyId)
      try {
        return await signCompactJws(header, JSON.stringify(claims), { sign })
      } catch (cause) {
        throw new AgentIdError('ERR_INTERNAL', 'credential issuance failed', { cause, details: { reason: 'issuance_failed' } })
      }
    },

    async signJwt(header, payload): Promise<string> {
      open()
      if (header === null || typeof header !== 'object') throw new TypeError('signJwt: header must be an object')
      if (header.alg !== undefined && header.alg !== 'EdDSA') throw new TypeError('signJwt: alg is always EdDSA')
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new TypeError('signJwt: payload must be an object')
      return signCompactJws({ alg: 'EdDSA', kid: issuer.keyId, ...header }, JSON.stringify(payload), { sign })
    },

    async signBytes(data: Uint8Array): Promise<Uint8Array> {
      open()
      if (!(data instanceof Uint8Array)) throw new TypeError('signBytes: data must be bytes')
      const signature = await agent.keyManagerSign({ keyRef: veramoKid, data: Buffer.from(data).toString('hex'), encoding: 'hex', algorithm: 'EdDSA' })
      return base64urlDecode(signature, 'KMS signature')
    },

    signer(): Signer {
      return {
        did: issuer.did,
        keyId: issuer.keyId,
        alg: 'EdDSA',
        async sign(data: Uint8Array): Promise<Uint8Array> {
          open()
          // The KMS takes text: only ASCII (as every JWS signing input is) survives the round trip.
          if (!(data instanceof Uint8Array) || data.some((b) => b > 0x7e || b < 0x20)) throw new TypeError('signer: only a JWS signing input (ASCII) is signed')
          return sign(data)
        },
      }
    },

    didDocument(): IssuerDidDocument | null {
      return document === null ? null : structuredClone(document)
    },

    async close(): Promise<void> {
      closed = true
      kms.clearCache()
    },
  }
  Object.freeze(engine)
  agents.set(engine, agent)
  return engine
}

/**
 * Issues `credential` through Veramo's own `createVerifiableCredential` (proof format `jwt`, stock
 * `@veramo/credential-jwt`) on the engine's agent and key. For the test that the engine's direct
 * encoding is byte for byte Veramo's.
 * @internal
 */
export async function veramoIssueCredential(engine: IssuerEngine, credential: JwtCredentialInput): Promise<string> {
  const agent = agents.get(engine)
  if (!agent) throw new TypeError('veramoIssueCredential: not an engine')
  const { validFrom, validUntil, ...rest } = credential
  const issuanceDate = rest.issuanceDate ?? validFrom
  const expirationDate = rest.expirationDate ?? validUntil
  const identifier = await agent.didManagerGet({ did: engine.issuer.did })
  const vc = await agent.createVerifiableCredential({
    credential: { ...rest, ...(issuanceDate === undefined ? {} : { issuanceDate }), ...(expirationDate === undefined ? {} : { expirationDate }), issuer: { id: engine.issuer.did } } as never,
    proofFormat: 'jwt',
    keyRef: identifier.controllerKeyId!,
    header: { kid: engine.issuer.keyId },
  } as never)
  return vc.proof.jwt as string
}

/**
 * Verifies a JWT credential with Veramo's own `verifyCredential` on the engine's agent (status checks
 * off: this agent has no status plugin). For interoperability tests; the issuer verifies with
 * `@agentid/verifier`.
 * @internal
 */
export async function veramoVerifyCredential(engine: IssuerEngine, jwt: string): Promise<{ verified: boolean; error?: string }> {
  const agent = agents.get(engine)
  if (!agent) throw new TypeError('veramoVerifyCredential: not an engine')
  const result = await agent.verifyCredential({ credential: jwt, policies: { credentialStatus: false } })
  return result.verified ? { verified: true } : { verified: false, error: result.error?.message ?? 'unknown' }
}

/**
 * The key store, with the issuer's key record served from memory (KeyManager reads it on every
 * signature). The record is immutable while the engine runs; deleting it through this store unpins it.
 */
class PinnedKeyStore extends AbstractKeyStore {
  #pinned: IKey | undefined

  constructor(private readonly inner: AbstractKeyStore) {
    super()
  }

  importKey(args: Partial<IKey>): Promise<boolean> {
    return this.inner.importKey(args)
  }

  listKeys(args: {} = {}): Promise<ManagedKeyInfo[]> {
    return this.inner.listKeys(args)
  }

  pin(key: IKey): void {
    this.#pinned = key
  }

  override async getKey({ kid }: { kid: string }): Promise<IKey> {
    return this.#pinned !== undefined && kid === this.#pinned.kid ? this.#pinned : this.inner.getKey({ kid })
  }

  override async deleteKey({ kid }: { kid: string }): Promise<boolean> {
    if (kid === this.#pinned?.kid) this.#pinned = undefined
    return this.inner.deleteKey({ kid })
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const member of Object.values(value)) deepFreeze(member)
  }
  return value
}

/**
 * Veramo's `Agent.execute` creates a `debug` logger on every method call (a `tty.isatty` syscall each
 * time) and `JSON.stringify`s every result for it even when logging is off: about 15% of an issuance,
 * which makes four agent calls. This dispatches straight to the plugin method with the same context.
 * It relies on schema validation being off (`createAgent`'s default) and on `Agent.methods`.
 */
function directDispatch(agent: Agent): void {
  const core = agent as unknown as VeramoAgent
  const methods = core.methods
  const execute = async (method: string, args: unknown): Promise<unknown> => {
    const fn = methods[method]
    if (!fn) throw new Error(`Method not available: ${method}`)
    return fn(args ?? {}, { ...core.context, agent: core })
  }
  core.execute = execute as VeramoAgent['execute']
}

async function loadOrCreateIssuer(db: Database | IssuerStorage, agent: Agent, didStore: AbstractDIDStore, webDid: string | undefined): Promise<IIdentifier> {
  let identifier = await findIssuer(didStore)
  if (identifier === undefined && !('prepare' in db)) {
    // Several instances on one database: the first to take the lock creates the issuer, the others find it.
    identifier = await db.exclusive('issuer-init', async () => (await findIssuer(didStore)) ?? (await createIssuer(agent, didStore, webDid)))
  }
  if (identifier === undefined && 'prepare' in db) {
    // BEGIN IMMEDIATE takes the write lock: a second process starting on the same file waits, then
    // finds the issuer the first one created. The transaction spans awaits, which is safe only
    // because nothing else uses this connection while the engine is being built.
    db.exec('BEGIN IMMEDIATE')
    try {
      identifier = (await findIssuer(didStore)) ?? (await createIssuer(agent, didStore, webDid))
      db.exec('COMMIT')
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK')
      throw err
    }
  }
  if (identifier === undefined) throw new AgentIdError('ERR_INTERNAL', 'the issuer identity could not be loaded or created')
  const expected = webDid ?? 'a did:key'
  const matches = webDid === undefined ? identifier.provider === 'did:key' && identifier.did.startsWith('did:key:') : identifier.did === webDid
  if (!matches) {
    throw new AgentIdError('ERR_CONFLICT', `this database's issuer is ${identifier.did}, but the configuration asks for ${expected}`, {
      details: { reason: 'issuer_mismatch', stored: identifier.did, configured: webDid ?? 'did:key' },
    })
  }
  return identifier
}

async function findIssuer(didStore: AbstractDIDStore): Promise<IIdentifier | undefined> {
  try {
    return await didStore.getDID({ alias: ISSUER_ALIAS })
  } catch (err) {
    if (err instanceof AgentIdError && err.code === 'ERR_NOT_FOUND') return undefined
    throw err
  }
}

async function createIssuer(agent: Agent, didStore: AbstractDIDStore, webDid: string | undefined): Promise<IIdentifier> {
  if (webDid === undefined) return agent.didManagerCreate({ alias: ISSUER_ALIAS, provider: 'did:key', kms: KMS })
  // No did:web provider is needed: the DID names our domain and its document is built from the key.
  const key = await agent.keyManagerCreate({ kms: KMS, type: 'Ed25519' })
  const identifier: IIdentifier = { did: webDid, provider: 'did:web', alias: ISSUER_ALIAS, controllerKeyId: key.kid, keys: [key], services: [] }
  await didStore.importDID(identifier)
  return identifier
}

async function startupCheck(sign: (data: Uint8Array) => Promise<Uint8Array>, publicKey: Uint8Array): Promise<void> {
  const probe = new TextEncoder().encode('agentid issuer startup check')
  let signature: Uint8Array
  try {
    signature = await sign(probe)
  } catch (cause) {
    if (cause instanceof AgentIdError && cause.details.reason === 'ciphertext_invalid') {
      throw new AgentIdError('ERR_INTERNAL', 'the master secret does not decrypt the issuer key (wrong AGENTID_SECRET or secret.key?)', {
        cause,
        details: { reason: 'secret_mismatch' },
      })
    }
    throw cause
  }
  if (!cryptoVerify(null, probe, publicKeyFromRaw(publicKey), signature)) {
    throw new AgentIdError('ERR_INTERNAL', 'the issuer private key does not match its public key', { details: { reason: 'issuer_key_mismatch' } })
  }
}

function parseBaseUrl(value: unknown): string {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new TypeError('createIssuerEngine: baseUrl must be an absolute http(s) URL')
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username || url.password) {
    throw new TypeError('createIssuerEngine: baseUrl must be an http(s) URL without query, fragment or credentials')
  }
  return url.href.replace(/\/+$/, '')
}

/** `example.com` → `did:web:example.com`; `localhost:8443` → `did:web:localhost%3A8443`. */
function didWebFromDomain(domain: unknown): string {
  const host = typeof domain === 'string' ? domain.toLowerCase() : ''
  const match = HOST.exec(host)
  if (!match || (match[1] !== undefined && Number(match[1]) > 65535)) {
    throw new TypeError('createIssuerEngine: didWebDomain must be a host name, optionally with :port')
  }
  return `did:web:${host.replace(':', '%3A')}`
}

function buildDidDocument(issuer: IssuerIdentity): IssuerDidDocument {
  return {
    '@context': [DID_CONTEXT, JWS_2020_CONTEXT],
    id: issuer.did,
    verificationMethod: [{ id: issuer.keyId, type: 'JsonWebKey2020', controller: issuer.did, publicKeyJwk: { ...issuer.publicJwk } }],
    authentication: [issuer.keyId],
    assertionMethod: [issuer.keyId],
  }
}
