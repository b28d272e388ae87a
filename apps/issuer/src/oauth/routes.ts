// OAuth 2.0 authorization server of the issuer: RFC 8414 metadata, the JWKS, and the token endpoint
// (client_credentials and RFC 8693 token exchange; client auth private_key_jwt, RFC 7523; DPoP-bound,
// RFC 9449; RFC 9396 authorization_details; RFC 8707 resource; an optional delegation chain).
// Errors on these routes are RFC 6749 §5.2 bodies.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { AgentIdError } from '@agentid/core'
import type { IssuerService } from '../domain/service.js'
import { isClientAbort } from '../http/errors.js'
import { databaseUnavailable } from '../storage/unavailable.js'
import { authenticatedAgent, type AgentIdTokenClaim } from './agent-claim.js'
import { AGENTID_ACTION, checkAgainstClaims, parseAuthorizationDetails } from './authorization-details.js'
import { JWT_BEARER_ASSERTION, verifyClientAssertion } from './client-assertion.js'
import { checkDelegation, DELEGATION_PARAM, parseDelegationParam } from './delegation-check.js'
import { DPOP_ALGS, DPOP_IAT_WINDOW_SEC, ED25519_ALG, DpopNonces, verifyDpopProof } from './dpop.js'
import { OAuthError, oauthFail } from './errors.js'
import { ACTOR_TOKEN_TYPES, SUBJECT_TOKEN_TYPES, TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, verifyExchange } from './token-exchange.js'
import { TrustedIdps } from './trusted-idps.js'
import { certificateBinding, CLIENT_CERTIFICATE_PARAM } from '../svid/token-binding.js'

export const CLIENT_CREDENTIALS = 'client_credentials'
/** Access-token lifetimes (seconds). */
export const DEFAULT_TOKEN_TTL_SEC = 120
export const MAX_TOKEN_TTL_SEC = 300
const FORM_LIMIT = 64 * 1024
const KNOWN_PARAMS = [
  'grant_type', 'client_id', 'client_assertion_type', 'client_assertion', 'resource', 'authorization_details', 'expires_in', 'scope',
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', DELEGATION_PARAM, CLIENT_CERTIFICATE_PARAM,
]

/**
 * The RFC 8414 metadata document of an issuer at `baseUrl`. Token exchange (and its token types, in
 * agentid's own members) is listed only when identity providers are trusted.
 */
export function authorizationServerMetadata(baseUrl: string, o: { tokenExchange?: boolean; certificateBound?: boolean } = {}): Record<string, unknown> {
  return {
    issuer: baseUrl,
    token_endpoint: `${baseUrl}/v1/token`,
    jwks_uri: `${baseUrl}/v1/jwks`,
    // REQUIRED by RFC 8414 §2; empty: this server has no authorization endpoint (agents use the token endpoint only).
    response_types_supported: [],
    grant_types_supported: o.tokenExchange ? [CLIENT_CREDENTIALS, TOKEN_EXCHANGE] : [CLIENT_CREDENTIALS],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    // Ed25519 is RFC 9864's fully specified name for EdDSA over Ed25519 (what openid-client v6 sends).
    token_endpoint_auth_signing_alg_values_supported: ['EdDSA', ED25519_ALG],
    dpop_signing_alg_values_supported: [...DPOP_ALGS, ED25519_ALG],
    authorization_details_types_supported: [AGENTID_ACTION],
    // RFC 8705 §3.3: tokens bound to the agent's X.509-SVID, when the issuer has a trust domain.
    ...(o.certificateBound ? { tls_client_certificate_bound_access_tokens: true } : {}),
    ...(o.tokenExchange
      ? {
          token_exchange_subject_token_types_supported: [...SUBJECT_TOKEN_TYPES],
          token_exchange_actor_token_types_supported: [...ACTOR_TOKEN_TYPES],
          token_exchange_issued_token_types_supported: [TOKEN_TYPE_ACCESS_TOKEN],
        }
      : {}),
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

function hasDpopHeader(request: FastifyRequest): boolean {
  const raw = request.raw.rawHeaders
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'dpop') return true
  return false
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

interface TokenContext { service: IssuerService; nonces: DpopNonces; idps: TrustedIdps }

/** The token endpoint's work, after the form is parsed. */
async function issueToken({ service, nonces, idps }: TokenContext, request: FastifyRequest): Promise<Record<string, unknown>> {
  const baseUrl = service.engine.baseUrl
  const tokenEndpoint = `${baseUrl}/v1/token`
  const form = formParams(request.body)
  const grantType = form.get('grant_type')
  if (grantType === undefined) oauthFail('invalid_request', 'grant_type is required')
  const exchange = grantType === TOKEN_EXCHANGE && idps.size > 0
  if (grantType !== CLIENT_CREDENTIALS && !exchange) {
    oauthFail('unsupported_grant_type', `grant_type must be ${idps.size > 0 ? `${CLIENT_CREDENTIALS} or ${TOKEN_EXCHANGE}` : CLIENT_CREDENTIALS}`)
  }
  if (form.get('client_assertion_type') !== JWT_BEARER_ASSERTION) oauthFail('invalid_client', `client_assertion_type must be ${JWT_BEARER_ASSERTION}`)
  const assertion = form.get('client_assertion')
  if (!assertion) oauthFail('invalid_client', 'client_assertion is required')
  const resource = form.get('resource')
  if (resource === undefined) oauthFail('invalid_target', 'resource is required (RFC 8707)')
  if (!isAbsoluteUri(resource!)) oauthFail('invalid_target', 'resource must be an absolute URI without a fragment')
  let expiresIn = parseExpiresIn(form.get('expires_in'))
  const details = parseAuthorizationDetails(form.get('authorization_details'))
  const chainParam = form.get(DELEGATION_PARAM)
  const chain = chainParam === undefined ? undefined : parseDelegationParam(chainParam)

  // The proof first: a client asked for a nonce does not spend its client assertion. Without a DPoP
  // header, a client certificate (an X.509-SVID) binds the token instead (RFC 8705, svid/token-binding.ts).
  const now = service.now()
  const certificate = await certificateBinding(request, form, service.svid, now, hasDpopHeader(request))
  if (certificate && exchange) oauthFail('invalid_request', 'token exchange issues DPoP-bound tokens only')
  const dpop = certificate ? null : await verifyDpopProof(dpopHeader(request), { method: 'POST', url: tokenEndpoint, now, nonces })
  const audiences = [tokenEndpoint, baseUrl]
  const client = verifyClientAssertion(assertion!, { clientId: form.get('client_id'), audiences, now, ...(dpop ? { jkt: dpop.jkt } : {}) })
  if (certificate && certificate.did !== client.did) oauthFail('invalid_client', 'the client certificate is not for the key that signed the client assertion')
  const store = service.storage
  const agent = await authenticatedAgent(store, client.did, now)
  checkAgainstClaims(details, agent.claims)

  const exchanged = exchange && dpop ? await verifyExchange(form, { agent: client.did, audiences, resource: resource!, details, now, idps, jkt: dpop.jkt }) : undefined
  const forUser = exchanged ? exchanged.details : details
  // Datatypes or identifiers taken over from the user's grant are the agent's to hold too.
  if (exchanged) checkAgainstClaims(forUser, agent.claims)
  const delegation = chain
    ? await checkDelegation(chain, { invoker: client.did, resource: resource!, details: forUser, now, store, verifyDelegation: (c, r) => service.verifyDelegation(c, r) })
    : undefined
  const granted = delegation ? delegation.details : forUser
  // The token outlives neither the user's token nor the delegation it rests on.
  // Whole seconds, rounded down (an exp may be fractional): less than one left is expired.
  if (exchanged) {
    if (Math.floor(exchanged.subjectExp - now) < 1) oauthFail('invalid_request', 'subject_token: has expired')
    expiresIn = Math.min(expiresIn, Math.floor(exchanged.subjectExp - now))
  }
  if (delegation) {
    if (Math.floor(delegation.notAfter - now) < 1) oauthFail('invalid_grant', `${DELEGATION_PARAM}: the delegation has expired`)
    expiresIn = Math.min(expiresIn, Math.floor(delegation.notAfter - now))
  }

  // Every jti is spent, the agent and the chain's links checked unrevoked again and the issuance
  // logged, in one write.
  const at = service.now()
  const tokenId = randomUUID()
  const logged = {
    tokenId, resource, ...(dpop ? { jkt: dpop.jkt } : { x5t: certificate!.thumbprint }), expiresIn, details: granted.length,
    ...(delegation ? { delegationRoot: delegation.root, delegationDepth: delegation.depth } : {}),
    ...(exchanged ? { subjectIssuer: exchanged.subjectIssuer, user: exchanged.user, subjectTokenId: exchanged.subjectTokenId } : {}),
  }
  try {
    await store.commit([
      store.ops.nonceUse(`oauth-ca:${client.did}:${client.jti}`, client.exp, { code: 'ERR_REPLAY', message: 'client assertion' }),
      // The actor token shares the client assertion's namespace: one JWT is spent once, whatever field it came in.
      ...(exchanged ? [store.ops.nonceUse(`oauth-ca:${client.did}:${exchanged.actor.jti}`, exchanged.actor.exp, { code: 'ERR_REPLAY', message: 'actor token' })] : []),
      ...(dpop ? [store.ops.nonceUse(`dpop:${dpop.jkt}:${dpop.jti}`, Math.max(dpop.iat, now) + DPOP_IAT_WINDOW_SEC + 1, { code: 'ERR_CONFLICT', message: 'dpop' })] : []),
      store.ops.agentActive(client.did, { code: 'ERR_REVOKED', message: 'revoked' }),
      ...(delegation ? delegation.linkIds.map((id) => store.ops.delegationActive(id, { code: 'ERR_REVOKED', message: 'delegation' })) : []),
      store.ops.audit(at, `agent:${client.did}`, exchanged ? 'token.exchanged' : 'token.issued', client.did, logged),
    ])
  } catch (error) {
    if (error instanceof AgentIdError && error.code === 'ERR_REPLAY') {
      if (error.message === 'actor token') oauthFail('invalid_request', 'actor_token: was used before')
      oauthFail('invalid_client', 'the client assertion was used before')
    }
    if (error instanceof AgentIdError && error.code === 'ERR_CONFLICT') oauthFail('invalid_dpop_proof', 'the DPoP proof was used before')
    if (error instanceof AgentIdError && error.code === 'ERR_REVOKED') {
      if (error.message === 'delegation') oauthFail('invalid_grant', `${DELEGATION_PARAM}: a link has been revoked`)
      oauthFail('invalid_client', 'the agent has been revoked')
    }
    throw error
  }

  const agentid: AgentIdTokenClaim = {
    claims: agent.claims,
    ...agent.identity,
    ...(delegation ? { delegation: { root: delegation.root, depth: delegation.depth } } : {}),
    ...(exchanged ? { subjectIssuer: exchanged.subjectIssuer } : {}),
  }
  const accessToken = await service.engine.signJwt({ typ: 'at+jwt' }, {
    iss: service.issuer.did,
    aud: resource,
    sub: exchanged ? exchanged.user : client.did,
    client_id: client.did,
    ...(exchanged ? { act: { sub: client.did } } : {}),
    iat: at,
    exp: at + expiresIn,
    jti: tokenId,
    cnf: dpop ? { jkt: dpop.jkt } : { 'x5t#S256': certificate!.thumbprint },
    authorization_details: granted,
    agentid,
  })
  return {
    access_token: accessToken,
    ...(exchanged ? { issued_token_type: TOKEN_TYPE_ACCESS_TOKEN } : {}),
    token_type: dpop ? 'DPoP' : 'Bearer',
    expires_in: expiresIn,
    authorization_details: granted,
  }
}

/** Registers `GET /.well-known/oauth-authorization-server`, `GET /v1/jwks` and `POST /v1/token`. */
export function oauthRoutes(service: IssuerService): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    // Stateless nonces under a key every instance on the database shares (settings): a nonce one
    // instance issued is accepted by the others.
    const nonces = new DpopNonces(() => service.now(), 300, await service.sharedKey('dpop_nonce_key'))
    const idps = new TrustedIdps(service.trustedIdps, { defaultAudience: service.engine.baseUrl, ...(service.fetch ? { fetch: service.fetch } : {}) })
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT }, (_request, body, done) => done(null, body))
    app.setErrorHandler((error, request, reply) => {
      if (isClientAbort(error, request.raw)) {
        // The client hung up: info, not an internal error; the answer goes nowhere.
        request.log.info({ code: (error as { code?: unknown }).code }, 'client aborted the request')
        const aborted = new OAuthError('invalid_request', 'the request ended before its body')
        return void reply.code(aborted.status).type('application/json').send(aborted.body)
      }
      let oauth: OAuthError
      if (error instanceof OAuthError) oauth = error
      else {
        const fx = error as { statusCode?: unknown; code?: unknown }
        // A body refused by the scope's JSON parser (a JSON body sent here: duplicate members, bad JSON).
        if (error instanceof AgentIdError && error.code === 'ERR_INVALID_INPUT') {
          oauth = new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded')
        } else if (typeof fx?.statusCode === 'number' && fx.statusCode >= 400 && fx.statusCode < 500) {
          oauth = new OAuthError('invalid_request', fx.statusCode === 413 ? 'the request body is larger than 64 KiB' : 'the request body must be application/x-www-form-urlencoded')
        } else if (databaseUnavailable(error)) {
          // The database is unreachable or too slow: retry later (503), not a fault of this request.
          request.log.warn({ err: error }, 'database unavailable')
          oauth = new OAuthError('temporarily_unavailable', 'the database is unavailable; retry', { 'retry-after': '1' })
        } else {
          request.log.error({ err: error }, 'internal error')
          oauth = new OAuthError('server_error', 'internal error')
        }
      }
      if (oauth.status < 500) request.log.info({ error: oauth.error }, 'token request refused')
      void reply.code(oauth.status).headers({ 'cache-control': 'no-store', ...oauth.headers }).type('application/json').send(oauth.body)
    })

    app.get('/.well-known/oauth-authorization-server', async () => authorizationServerMetadata(service.engine.baseUrl, { tokenExchange: idps.size > 0, certificateBound: service.svid !== undefined }))
    app.get('/v1/jwks', async (_request, reply) => {
      const { publicJwk, keyId } = service.engine.issuer
      return reply.header('cache-control', 'public, max-age=300').send({ keys: [{ ...publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' }] })
    })
    app.post('/v1/token', { bodyLimit: FORM_LIMIT }, async (request, reply) => {
      const type = request.headers['content-type']
      if (typeof type !== 'string' || type.split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
        oauthFail('invalid_request', 'the request body must be application/x-www-form-urlencoded')
      }
      const body = await issueToken({ service, nonces, idps }, request)
      return reply.headers({ 'cache-control': 'no-store', pragma: 'no-cache', 'dpop-nonce': nonces.issue() }).send(body)
    })
  }
}
