// Certificate-bound access tokens (RFC 8705 §3) at the token endpoint: the agent's X.509-SVID, from the
// TLS connection (an issuer served over mutual TLS) or, behind a TLS-terminating proxy or over plain
// HTTP, from the form parameter `agentid_client_certificate`; the token's `cnf` is its `x5t#S256`.
import { X509Certificate } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { encodeDidKey, rawPublicKey } from '@agentid/core'
import { parseSpiffeBundle, verifyX509SvidChain } from '@agentid/verifier'
import { oauthFail } from '../oauth/errors.js'
import type { SvidIssuer } from './issuer.js'

/** The form parameter that carries the agent's X.509-SVID (PEM, or base64/base64url DER). */
export const CLIENT_CERTIFICATE_PARAM = 'agentid_client_certificate'

export interface CertificateBinding {
  /** `x5t#S256` of the certificate. */
  thumbprint: string
  /** The did:key of the certificate's key. */
  did: string
}

function peerCertificate(request: FastifyRequest): X509Certificate | undefined {
  const socket = request.raw.socket as { getPeerX509Certificate?: () => X509Certificate | undefined }
  return typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined
}

function fromParam(value: string): X509Certificate {
  try {
    if (value.includes('-----BEGIN CERTIFICATE-----')) return new X509Certificate(value)
    if (value.length > 64 * 1024 || !/^[A-Za-z0-9+/_=-]+$/.test(value)) throw new Error('not base64')
    return new X509Certificate(Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64'))
  } catch {
    return oauthFail('invalid_request', `${CLIENT_CERTIFICATE_PARAM} is not a certificate`)
  }
}

/**
 * The certificate a token request is to be bound to, or null for a DPoP request. Present when the
 * request has no DPoP header and carries a client certificate (the TLS peer's, else the form's; both
 * must then be the same). It must be an X.509-SVID of this issuer's trust domain, within its validity
 * (`invalid_client` otherwise); the caller checks that its key is the client's (`did`).
 */
export async function certificateBinding(request: FastifyRequest, form: Map<string, string>, svid: SvidIssuer | undefined, now: number, hasDpop: boolean): Promise<CertificateBinding | null> {
  const param = form.get(CLIENT_CERTIFICATE_PARAM)
  const peer = peerCertificate(request)
  if (param === undefined && peer === undefined) return null
  if (hasDpop) {
    if (param !== undefined) oauthFail('invalid_request', `a request is bound either by DPoP or by ${CLIENT_CERTIFICATE_PARAM}, not both`)
    return null // a TLS client certificate on a DPoP request: the token is DPoP-bound
  }
  if (!svid) oauthFail('invalid_request', 'certificate-bound tokens need the issuer to run with a trust domain (AGENTID_TRUST_DOMAIN)')
  const cert = param !== undefined ? fromParam(param) : peer!
  if (param !== undefined && peer !== undefined && !peer.raw.equals(cert.raw)) oauthFail('invalid_request', `${CLIENT_CERTIFICATE_PARAM} is not the TLS client certificate`)
  let checked
  try {
    checked = verifyX509SvidChain([cert], parseSpiffeBundle(await svid.bundleDocument(), svid.trustDomain), { now })
  } catch (error) {
    return oauthFail('invalid_client', `the client certificate is not a valid X.509-SVID of this issuer (${(error as { code?: string }).code ?? 'invalid'})`)
  }
  let did: string
  try {
    did = encodeDidKey(rawPublicKey(checked.publicKey))
  } catch {
    return oauthFail('invalid_client', 'the client certificate key is not an agent key')
  }
  return { thumbprint: checked.thumbprint, did }
}
