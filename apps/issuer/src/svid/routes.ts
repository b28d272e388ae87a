// SVID routes of the issuer (registered by buildServer when a trust domain is configured).
import type { FastifyInstance } from 'fastify'
import { AgentIdError } from '@agentid/core'
import type { SvidIssuer } from './issuer.js'

/** The route of the SPIFFE bundle. */
export const SPIFFE_BUNDLE_PATH = '/v1/spiffe/bundle'

/**
 * `GET /v1/spiffe/bundle` (anyone: the trust bundle in the SPIFFE format), `POST /v1/agents/:did/svids/x509`
 * and `POST /v1/agents/:did/svids/jwt` (the agent, with a proof of possession of purpose `svid`).
 */
export function svidRoutes(app: FastifyInstance, configured: SvidIssuer | undefined): void {
  // Registered always (the OpenAPI document lists them); without a trust domain each is 404.
  const svid = (): SvidIssuer => {
    if (!configured) throw new AgentIdError('ERR_NOT_FOUND', 'this issuer has no SPIFFE trust domain (AGENTID_TRUST_DOMAIN)')
    return configured
  }
  app.get(SPIFFE_BUNDLE_PATH, async (_request, reply) => {
    const bundle = await svid().bundleDocument()
    return reply.header('cache-control', `public, max-age=${bundle.spiffe_refresh_hint as number}`).type('application/json').send(bundle)
  })
  app.post<{ Params: { did: string } }>('/v1/agents/:did/svids/x509', async (request, reply) => {
    const result = await svid().issueX509(request.params.did, request.body)
    return reply.code(201).header('cache-control', 'no-store').send(result)
  })
  app.post<{ Params: { did: string } }>('/v1/agents/:did/svids/jwt', async (request, reply) => {
    const result = await svid().issueJwt(request.params.did, request.body)
    return reply.code(201).header('cache-control', 'no-store').send(result)
  })
}
