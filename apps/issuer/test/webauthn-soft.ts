// A software WebAuthn authenticator for the issuer's in-process tests (no browser): it makes the same
// registration ('none' attestation) and assertion responses a platform authenticator makes, with node:crypto
// P-256 keys and the CBOR encoder of @simplewebauthn/server. The browser suite (test/approvals-browser)
// drives the real thing.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isoCBOR } from '@simplewebauthn/server/helpers'

export interface SoftPasskey {
  id: string
  privateKey: KeyObject
  counter: number
}

export interface SoftOptions {
  origin?: string
  rpId?: string
  /** Authenticator flags (default UP|UV). */
  flags?: number
  type?: string
  /** Replace the challenge the options gave. */
  challenge?: string
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest()

/** Answers registration options (`optionsJSON` of POST /v1/enrolments/options) for `origin`. */
export function softRegister(options: { challenge: string; rp: { id: string } }, origin: string, o: SoftOptions = {}): { passkey: SoftPasskey; response: Record<string, unknown> } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string }
  const idBytes = randomBytes(16)
  const coseKey = new Map<number, number | Uint8Array>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x, 'base64url')], [-3, Buffer.from(jwk.y, 'base64url')]])
  const authData = Buffer.concat([
    sha256(o.rpId ?? options.rp.id),
    Buffer.from([(o.flags ?? 0x05) | 0x40]),
    Buffer.from([0, 0, 0, 0]),
    Buffer.alloc(16),
    Buffer.from([0, idBytes.length]),
    idBytes,
    Buffer.from(isoCBOR.encode(coseKey as never)),
  ])
  const clientData = Buffer.from(JSON.stringify({ type: o.type ?? 'webauthn.create', challenge: o.challenge ?? options.challenge, origin: o.origin ?? origin, crossOrigin: false }))
  const attestationObject = Buffer.from(isoCBOR.encode(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]) as never))
  const id = idBytes.toString('base64url')
  return {
    passkey: { id, privateKey, counter: 0 },
    response: {
      id, rawId: id, type: 'public-key', clientExtensionResults: {},
      response: { clientDataJSON: clientData.toString('base64url'), attestationObject: attestationObject.toString('base64url'), transports: ['internal'] },
    },
  }
}

/** Answers authentication options (`approve` or `deny` of POST /v1/approvals/:id/options) for `origin`. */
export function softAssert(passkey: SoftPasskey, options: { challenge: string; rpId: string }, origin: string, o: SoftOptions = {}): Record<string, unknown> {
  passkey.counter++
  const authData = Buffer.concat([sha256(o.rpId ?? options.rpId), Buffer.from([o.flags ?? 0x05]), Buffer.from([0, 0, 0, passkey.counter])])
  const clientData = Buffer.from(JSON.stringify({ type: o.type ?? 'webauthn.get', challenge: o.challenge ?? options.challenge, origin: o.origin ?? origin, crossOrigin: false }))
  const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), passkey.privateKey)
  return {
    id: passkey.id, rawId: passkey.id, type: 'public-key', clientExtensionResults: {},
    response: { clientDataJSON: clientData.toString('base64url'), authenticatorData: authData.toString('base64url'), signature: signature.toString('base64url') },
  }
}
