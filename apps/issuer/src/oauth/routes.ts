// OAuth 2.0 authorization server of the issuer: RFC 8414 metadata, the JWKS, and the token endpoint
// (client_credentials; client auth private_key_jwt, RFC 7523; DPoP-bound, RFC 9449; RFC 9396
// authorization_details; RFC 8707 resource). Errors on these routes are RFC 6749 §5.2 bodies.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { AgentIdError, type AgentClaims } from '@agentid/core'
import type { IssuerService } from '../domain/service.js'
import { AGENTID_ACTION, checkAgainstClaims, parseAuthorizationDetails } from './authorization-details.js'
import { JWT_BEARER_ASSERTION, verifyClientAssertion } from './client-assertion.js'
import { DPOP_ALGS, DPOP_IAT_WINDOW_SEC, DpopNonces, verifyDpopProof } from './dpop.js'
import { OAuthError, oauthFail } from './errors.js'

export const CLIENT_CREDENTIALS = 'client_credentials'
/** Access-token lifetimes (seconds). */
export const DEFAULT_TOKEN_TTL_SEC = 120
export const MAX_TOKEN_TTL_SEC = 300
const FORM_LIMIT = 64 * 1024
const KNOWN_PARAMS = ['grant_type', 'client_id', 'client_assertion_type', 'client_assertion', 'resource', 'authorization_details', 'expires_in', 'scope']

/** The RFC 8414 metadata document of an issuer at `baseUrl`. */
export function authorizationServerMetadata(baseUrl: string): Record<string, unknown> {
  return {
    issuer: baseUrl,
    token_endpoint: `${baseUrl}/v1/token`,
    jwks_uri: `${baseUrl}/v1/jwks`,
    grant_types_supported: [CLIENT_CREDENTIALS],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['EdDSA'],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    authorization_details_types_supported: [AGENTID_ACTION],
  }
}

// One value per parameter (RFC 6749 §3.2: parameters must not repeat).
function formParams(body: unknown): Map<string, string> {
  if (typeof body !== 'string') oauthFail('invalid_request', 'the request body must be application/x-www-form-urlencoded')
  const params = new URLSearchParams(body as string)
  const out = new Map<string, string>()
  for (const [key, value] of params) {
    if (out.has(key)) {
      if (KNOWN_PARAMS.includes(key)) oauthFail('invalid_request', `parameter ${key} is repeated`)
      continue
    }
    out.set(key, value)
  }
  return out
}

function isAbsoluteUri(value: string): boolean {
  if (value.length > 2048 || value.includes('#')) return false
  try {
    const url = new URL(value)
    return /^[a-z][a-z0-9+.-]*:$/.test(url.protocol)
  } catch {
    return false
  }
}

// Exactly one DPoP header (raw headers: Node would join repeats into one value).
function dpopHeader(request: FastifyRequest): string {
  const raw = request.raw.rawHeaders
  const values: string[] = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'dpop') values.push(raw[i + 1]!)
  if (values.length === 0) oauthFail('invalid_dpop_proof', 'a DPoP proof (DPoP header) is required')
  if (values.length > 1) oauthFail('invalid_dpop_proof', 'exactly one DPoP header is allowed')
  return values[0]!
}

function parseExpiresIn(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TOKEN_TTL_SEC
  if (!/^[1-9][0-9]{0,5}$/.test(value)) oauthFail('invalid_request', 'expires_in must be a positive integer')
  const n = Number(value)
  if (n > MAX_TOKEN_TTL_SEC) oauthFail('invalid_request', `expires_in must be at most ${MAX_TOKEN_TTL_SEC} seconds`)
  return n
}

/** The token endpoint's work, after the form is parsed. */
async function issueToken(service: IssuerService, nonces: DpopNonces, request: FastifyRequest): Promise<Record<string, unknown>> {
  const baseUrl = service.engine.baseUrl
  const tokenEndpoint = `${baseUrl}/v1/token`
  const form = formParams(request.body)
  const grantType = form.get('grant_type')
  if (grantType === undefined) oauthFail('invalid_request', 'grant_type is required')
  if (grantType !== CLIENT_CREDENTIALS) oauthFail('unsupported_grant_type', `grant_type must be ${CLIENT_CREDENTIALS}`)
  if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION) oauthFail('invalid_client', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`)
  const assertion = form.get('client_assertion')
  if (!assertion) oauthFail('invalid_client', 'client_assertion is required')
  const resource = form.get('resource')
  if (resource === undefined) oauthFail('invalid_target', 'resource is required (RFC 8707)')
  if (!isAbsoluteUri(resource!)) oauthFail('invalid_target', 'resource must be an absolute URI without a fragment')
  const expiresIn = parseExpiresIn(form.get('expires_in'))
  const details = parseAuthorizationDetails(form.get('authorization_details'))

  // The proof first: a client asked for a nonce does not spend its client assertion.
  const now = service.now()
  const dpop = await verifyDpopProof(dpopHeader(request), { method: 'POST', url: tokenEndpoint, now, nonces })
  const client = verifyClientAssertion(assertion!, { clientId: form.get('client_id'), audiences: [tokenEndpoint, baseUrl], now })

  const store = service.store
  const agent = store.agents.get(client.did)
  if (!agent) oauthFail('invalid_client', 'the client is not a registered agent')
  if (agent!.status !== 'active') oauthFail('invalid_client', 'the agent has been revoked')
  const identity = store.credentials.activeByAgent(client.did).some((c) => c.kind === 'identity' && c.expires_at > now)
  if (!identity) oauthFail('invalid_client', 'the agent holds no valid identity credential')
  checkAgainstClaims(details, JSON.parse(agent!.claims_json) as AgentClaims)

  // Both jtis are spent, the agent checked active again and the issuance logged, in one write.
  const at = service.now()
  const tokenId = randomUUID()
  try {
    await store.commit([
      store.ops.nonceUse(`oauth-ca:${client.did}:${client.jti}`, client.exp, { code: 'ERR_REPLAY', message: 'client assertion' }),
      store.ops.nonceUse(`dpop:${dpop.jkt}:${dpop.jti}`, Math.max(dpop.iat, now) + DPOP_IAT_WINDOW_SEC + 1, { code: 'ERR_CONFLICT', message: 'dpop' }),
      store.ops.agentActive(client.did, { code: 'ERR_REVOKED', message: 'revoked' }),
      store.ops.audit(at, `agent:${client.did}`, 'token.issued', client.did, { tokenId, resource, jkt: dpop.jkt, expiresIn, details: details.length }),
    ])
  } catch (error) {
    if (error instanceof AgentIdError && error.code === 'ERR_REPLAY') oauthFail('invalid_client', 'the client assertion was used before')
    if (error instanceof AgentIdError && error.code === 'ERR_CONFLICT') oauthFail('invalid_dpop_proof', 'the DPoP proof was used before')
    if (error instanceof AgentIdError && error.code === 'ERR_REVOKED') oauthFail('invalid_client', 'the agent has been revoked')
    throw error
  }

  const accessToken = await service.engine.signJwt({ typ: 'at+jwt' }, {
    iss: service.issuer.did,
    aud: resource,
    sub: client.did,
    client_id: client.did,
    iat: at,
    exp: at + expiresIn,
    jti: tokenId,
    cnf: { jkt: dpop.jkt },
    authorization_details: details,
  })
  return { access_token: accessToken, token_type: 'DPoP', expires_in: expiresIn, authorization_details: details }
}

/** Registers `GET /.well-known/oauth-authorization-server`, `GET /v1/jwks` and `POST /v1/token`. */
export function oauthRoutes(service: IssuerService): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const nonces = new DpopNonces(() => service.now())
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) => done(null, body))
    app.setErrorHandler((error, request, reply) => {
      let oauth: OAuthError
      if (error instanceof OAuthError) oauth = error
      else {
        const fx = error as { statusCode?: unknown; code?: unknown }
        if (typeof fx?.statusCode === 'number' && fx.statusCode >= 400 && fx.statusCode < 500) {
          oauth = new OAuthError('invalid_request', fx.statusCode === 413 ? 'the request body is larger than 64 KiB' : 'the request body must be application/x-www-form-urlencoded')
        } else {
          request.log.error({ err: error }, 'internal error')
          oauth = new OAuthError('server_error', 'internal error')
        }
      }
      if (oauth.status < 500) request.log.info({ error: oauth.error }, 'token request refused')
      void reply.code(oauth.status).headers({ 'cache-control': 'no-store', ...oauth.headers }).type('application/json').send(oauth.body)
    })

    app.get('/.well-known/oauth-authorization-server', async () => authorizationServerMetadata(service.engine.baseUrl))
    app.get('/v1/jwks', async (_request, reply) => {
      const { publicJwk, keyId } = service.engine.issuer
      return reply.header('cache-control', 'public, max-age=300').send({ keys: [{ ...publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' }] })
    })
    app.post('/v1/token', { bodyLimit: FORM_LIMIT }, async (request, reply) => {
      const type = request.headers['content-type']
      if (typeof type !== 'string' || type.split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
        oauthFail('invalid_request', 'the request body must be application/x-www-form-urlencoded')
      }
      const body = await issueToken(service, nonces, request)
      return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache', 'dpop-nonce': nonces.issue() }).send(body)
    })
  }
}
