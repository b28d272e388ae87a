// The issuer's SPIFFE CA: a P-256 key per trust domain, sealed at rest like the issuer's other keys
// (AES-256-GCM under a key derived from the master secret), and its self-signed CA certificate.
import 'reflect-metadata' // @peculiar/x509 resolves its services through tsyringe, which needs it
import { createHash, createPrivateKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { AgentIdError, base64urlEncode } from '@agentid/core'
import { createCryptoBox, type CryptoBox } from '../crypto-box.js'
import type { IssuerStorage, SvidAuthorityRow } from '../storage/types.js'

x509.cryptoProvider.set(webcrypto as never)
type CryptoKey = webcrypto.CryptoKey

/** HKDF `info` of the key that seals SVID CA keys. Changing it orphans every stored CA key. */
export const SVID_CA_BOX_INFO = 'agentid/issuer/svid-ca/v1'
/** Lifetime of a CA certificate (days), and how long before its end a successor is made. */
export const CA_LIFETIME_DAYS = 365
export const CA_ROTATE_BEFORE_DAYS = 30
export const SIGNING_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const
const DAY = 86_400

/** One CA of the trust domain, its private key opened in memory. */
export interface CaKey {
  /** `kid` of its JWT-SVID key: RFC 7638 thumbprint of the public JWK. */
  readonly kid: string
  readonly certificate: x509.X509Certificate
  readonly der: Buffer
  /** For @peculiar/x509 (X.509-SVIDs). */
  readonly cryptoKey: CryptoKey
  /** For JWT-SVIDs (ES256). */
  readonly keyObject: KeyObject
  readonly publicJwk: { kty: 'EC'; crv: 'P-256'; x: string; y: string }
  readonly notAfter: number
}

/** Random positive serial of 16 bytes (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
export function serialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return bytes.toString('hex')
}

/**
 * The CAs of one trust domain, kept in `svid_authorities` (storage.svidAuthorities, either engine). The
 * newest is used to sign; every CA not yet expired is in the bundle, so a successor made 30 days before
 * the end overlaps the old one. Several instances on one database make one CA: the check for a current
 * one and the insert run in one storage transaction (PostgreSQL: under the cluster-wide write lock), so
 * an instance that finds one made meanwhile drops the key it generated, unstored.
 */
export class SvidAuthority {
  private cas: CaKey[] = []

  private constructor(private readonly storage: IssuerStorage, private readonly box: CryptoBox, readonly trustDomain: string, private readonly now: () => number) {}

  /** Loads (and, when none is current, creates) the CA of `trustDomain`. */
  static async open(options: { storage: IssuerStorage; secret: Uint8Array; trustDomain: string; now: () => number }): Promise<SvidAuthority> {
    const authority = new SvidAuthority(options.storage, createCryptoBox(options.secret, SVID_CA_BOX_INFO), options.trustDomain, options.now)
    await authority.refresh()
    return authority
  }

  /** The signing CA, rotated first when it is within 30 days of its end. */
  async current(): Promise<CaKey> {
    const newest = this.cas[this.cas.length - 1]
    if (!newest || newest.notAfter - this.now() < CA_ROTATE_BEFORE_DAYS * DAY) await this.refresh()
    const ca = this.cas[this.cas.length - 1]
    if (!ca) throw new AgentIdError('ERR_INTERNAL', 'no SVID CA')
    return ca
  }

  /** Every CA not yet expired, oldest first. */
  all(): readonly CaKey[] {
    const now = this.now()
    return this.cas.filter((ca) => ca.notAfter > now)
  }

  private async refresh(): Promise<void> {
    const now = this.now()
    const due = (rows: SvidAuthorityRow[]) => {
      const newest = rows[rows.length - 1]
      return !newest || newest.not_after - now < CA_ROTATE_BEFORE_DAYS * DAY
    }
    let found = await this.storage.svidAuthorities.unexpired(this.trustDomain, now)
    if (due(found)) {
      // The key and certificate are made outside the transaction (which holds the write lock).
      const made = await this.create(now)
      found = await this.storage.transaction(async (tx) => {
        const current = await tx.svidAuthorities.unexpired(this.trustDomain, now)
        if (!due(current)) return current
        await tx.svidAuthorities.insert(made)
        return tx.svidAuthorities.unexpired(this.trustDomain, now)
      })
    }
    this.cas = await Promise.all(found.map((row) => this.openRow(row)))
  }

  private async create(now: number): Promise<SvidAuthorityRow> {
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: `O=agentid, CN=agentid SVID CA ${this.trustDomain}`,
      notBefore: new Date((now - 60) * 1000),
      notAfter: new Date((now + CA_LIFETIME_DAYS * DAY) * 1000),
      keys,
      signingAlgorithm: SIGNING_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        // X509-SVID.md §3: a signing certificate may carry the trust domain's own SPIFFE ID.
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${this.trustDomain}` }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    })
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
    const jwk = await webcrypto.subtle.exportKey('jwk', keys.publicKey)
    const id = thumbprint(jwk as { crv: string; kty: string; x: string; y: string })
    try {
      return { id, trust_domain: this.trustDomain, key_sealed: this.box.seal(pkcs8, `svid-ca:${id}`), cert_der: Buffer.from(cert.rawData), not_before: now - 60, not_after: now + CA_LIFETIME_DAYS * DAY, created_at: now }
    } finally {
      pkcs8.fill(0)
    }
  }

  private async openRow(row: SvidAuthorityRow): Promise<CaKey> {
    const pkcs8 = this.box.open(row.key_sealed, `svid-ca:${row.id}`)
    try {
      const cryptoKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
      const keyObject = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
      const der = Buffer.from(row.cert_der)
      const certificate = new x509.X509Certificate(der)
      const publicJwk = new X509Certificate(der).publicKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string }
      if (thumbprint(publicJwk) !== row.id) throw new AgentIdError('ERR_INTERNAL', 'an SVID CA key does not match its certificate')
      return { kid: row.id, certificate, der, cryptoKey, keyObject, publicJwk: { kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y }, notAfter: row.not_after }
    } finally {
      pkcs8.fill(0)
    }
  }
}

function thumbprint(jwk: { crv: string; kty: string; x: string; y: string }): string {
  return base64urlEncode(createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest())
}
