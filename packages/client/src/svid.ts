// SVIDs for an agent: its X.509-SVID (for mutual TLS, presented by an https.Agent) and JWT-SVIDs,
// asked of the issuer with a proof of possession of the agent's key (purpose `svid`).
import { Agent as HttpsAgent, type AgentOptions } from 'node:https'
import { AgentIdError, createProofOfPossession, privateKeyFromJwk, signerFromJwk, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import { call, fetchIssuerDid, type IssuerConnection } from './issuer.js'
import { JWT_BEARER_ASSERTION_TYPE, TokenRequestError } from './agent-fetch.js'
import { signAgentJwt } from './agent-jwts.js'

/** An X.509-SVID as the issuer returns it (`POST /v1/agents/:did/svids/x509`). */
export interface X509Svid {
  spiffeId: string
  /** PEM of the certificate for the agent's own key. */
  certificate: string
  /** PEM of the CA certificate that signed it. */
  caCertificate: string
  expiresAt: string
  /** `x5t#S256` of the certificate. */
  thumbprint: string
}

/** A JWT-SVID as the issuer returns it. */
export interface JwtSvid { spiffeId: string; token: string; audience: string[]; expiresAt: string }

export interface SvidRequestOptions extends IssuerConnection {
  /** The agent's key (the SVID certifies it; the request proves possession of it). */
  privateJwk?: Ed25519PrivateJwk
  signer?: Signer
  /** The issuer's DID (audience of the proof); fetched from `GET /v1/issuer` when absent. */
  issuerDid?: string
  lifetimeSec?: number
}

function signerOf(options: SvidRequestOptions, what: string): Signer {
  const signer = options.signer ?? (options.privateJwk ? signerFromJwk(options.privateJwk) : undefined)
  if (!signer) throw new TypeError(`${what}: signer or privateJwk is required`)
  return signer
}

async function svidProof(options: SvidRequestOptions, signer: Signer): Promise<string> {
  const audience = options.issuerDid ?? (await fetchIssuerDid(options))
  return createProofOfPossession({ signer, audience, purpose: 'svid' })
}

/**
 * Asks the issuer for an X.509-SVID of the agent's own key.
 * @example
 * const svid = await fetchX509Svid({ issuerUrl, privateJwk })
 * const agent = createSvidHttpsAgent({ privateJwk, svid, ca: serverCa })
 */
export async function fetchX509Svid(options: SvidRequestOptions): Promise<X509Svid> {
  const signer = signerOf(options, 'fetchX509Svid')
  const proof = await svidProof(options, signer)
  const result = (await call(options, 'POST', `/v1/agents/${encodeURIComponent(signer.did)}/svids/x509`, {
    proof,
    ...(options.lifetimeSec === undefined ? {} : { lifetimeSec: options.lifetimeSec }),
  })) as Partial<X509Svid>
  if (typeof result?.certificate !== 'string' || typeof result.expiresAt !== 'string') throw new AgentIdError('ERR_INTERNAL', 'issuer returned no X.509-SVID')
  return result as X509Svid
}

/**
 * Asks the issuer for a JWT-SVID for `audience` (at most 300 s).
 * @example
 * const { token } = await fetchJwtSvid({ issuerUrl, privateJwk, audience: 'spiffe://erp.example/api' })
 */
export async function fetchJwtSvid(options: SvidRequestOptions & { audience: string | readonly string[] }): Promise<JwtSvid> {
  const signer = signerOf(options, 'fetchJwtSvid')
  if (options.audience === undefined || options.audience.length === 0) throw new TypeError('fetchJwtSvid: audience is required')
  const proof = await svidProof(options, signer)
  const result = (await call(options, 'POST', `/v1/agents/${encodeURIComponent(signer.did)}/svids/jwt`, {
    proof,
    audience: options.audience,
    ...(options.lifetimeSec === undefined ? {} : { lifetimeSec: options.lifetimeSec }),
  })) as Partial<JwtSvid>
  if (typeof result?.token !== 'string') throw new AgentIdError('ERR_INTERNAL', 'issuer returned no JWT-SVID')
  return result as JwtSvid
}

/** The trust domain's SPIFFE bundle (`GET /v1/spiffe/bundle`), as JSON. */
export async function fetchSpiffeBundle(conn: IssuerConnection): Promise<Record<string, unknown>> {
  return (await call(conn, 'GET', '/v1/spiffe/bundle', undefined)) as Record<string, unknown>
}

export interface SvidHttpsAgentOptions {
  privateJwk: Ed25519PrivateJwk
  svid: Pick<X509Svid, 'certificate'>
  /** CA certificates (PEM) that sign the servers' certificates; default: Node's. */
  ca?: string | readonly string[]
  /** More `https.Agent` options (keepAlive, servername, …). */
  agentOptions?: Omit<AgentOptions, 'key' | 'cert' | 'ca'>
}

/**
 * An `https.Agent` that presents the agent's X.509-SVID as its TLS client certificate (mutual TLS),
 * with the agent's Ed25519 key (TLS 1.3).
 * @example
 * https.request('https://erp.example/invoices', { agent: createSvidHttpsAgent({ privateJwk, svid, ca }) })
 */
export function createSvidHttpsAgent(options: SvidHttpsAgentOptions): HttpsAgent {
  if (typeof options?.svid?.certificate !== 'string') throw new TypeError('createSvidHttpsAgent: svid.certificate (PEM) is required')
  const key = privateKeyFromJwk(options.privateJwk).export({ format: 'pem', type: 'pkcs8' }) as string
  return new HttpsAgent({
    ...options.agentOptions,
    key,
    cert: options.svid.certificate,
    ...(options.ca === undefined ? {} : { ca: typeof options.ca === 'string' ? options.ca : [...options.ca] }),
    minVersion: 'TLSv1.3',
  })
}

export interface CertificateBoundTokenOptions {
  issuerUrl: string
  privateJwk?: Ed25519PrivateJwk
  signer?: Signer
  /** The agent's X.509-SVID: the token is bound to it (`cnf.x5t#S256`). */
  svid: Pick<X509Svid, 'certificate'>
  /** The resource server (RFC 8707). */
  resource: string
  /** RFC 9396 authorization details (`agentid_action` entries), as objects. */
  authorizationDetails?: readonly Record<string, unknown>[]
  /** Seconds, at most 300. */
  expiresIn?: number
  fetch?: typeof globalThis.fetch
}

/** An access token bound to a certificate, used as `Authorization: Bearer` over mutual TLS with that certificate. */
export interface CertificateBoundToken { accessToken: string; tokenType: 'Bearer'; expiresIn: number; authorizationDetails: unknown }

/**
 * Asks the issuer's token endpoint for an access token bound to the agent's X.509-SVID (RFC 8705
 * `cnf.x5t#S256`) instead of a DPoP key: the client assertion is signed by the agent's key, and the
 * certificate travels as the form parameter `agentid_client_certificate`. Present the token as
 * `Authorization: Bearer` on a mutual-TLS connection with the same certificate
 * ({@link createSvidHttpsAgent}); it is useless with any other.
 * @example
 * const { accessToken } = await fetchCertificateBoundToken({ issuerUrl, privateJwk, svid, resource: 'https://erp.example' })
 */
export async function fetchCertificateBoundToken(options: CertificateBoundTokenOptions): Promise<CertificateBoundToken> {
  const signer = options.signer ?? (options.privateJwk ? signerFromJwk(options.privateJwk) : undefined)
  if (!signer) throw new TypeError('fetchCertificateBoundToken: signer or privateJwk is required')
  if (typeof options.resource !== 'string' || options.resource === '') throw new TypeError('fetchCertificateBoundToken: resource is required')
  const tokenEndpoint = `${options.issuerUrl.replace(/\/+$/, '')}/v1/token`
  const nowSec = Math.floor(Date.now() / 1000)
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: signer.did,
    client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
    client_assertion: await signAgentJwt(signer, tokenEndpoint, nowSec),
    resource: options.resource,
    agentid_client_certificate: options.svid.certificate,
  })
  if (options.authorizationDetails !== undefined) form.set('authorization_details', JSON.stringify(options.authorizationDetails))
  if (options.expiresIn !== undefined) form.set('expires_in', String(options.expiresIn))
  const response = await (options.fetch ?? globalThis.fetch)(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
    signal: AbortSignal.timeout(10_000),
  })
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
  if (!response.ok) {
    const error = typeof body?.error === 'string' ? body.error : 'invalid_response'
    throw new TokenRequestError(error, response.status, `token request refused (HTTP ${response.status}) ${error}${typeof body?.error_description === 'string' ? `: ${body.error_description}` : ''}`)
  }
  if (typeof body?.access_token !== 'string' || body.token_type !== 'Bearer' || typeof body.expires_in !== 'number') {
    throw new TokenRequestError('invalid_response', response.status, 'the token endpoint did not return a certificate-bound access token')
  }
  return { accessToken: body.access_token, tokenType: 'Bearer', expiresIn: body.expires_in, authorizationDetails: body.authorization_details }
}
