// The admin API of the approval webhook's outbox: GET /v1/webhooks/events (a page, newest first),
// GET /v1/webhooks/events/:id (with its attempts) and POST /v1/webhooks/events/:id/redeliver.
// Admin key only, checked before anything else is read (admin.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Principal } from '../domain/principal.js'
import { getWebhookEvent, listWebhookEvents, redeliverWebhookEvent, type WebhookAdminDeps } from './admin.js'

export interface WebhookRouteDeps extends WebhookAdminDeps {
  /** Authenticates the request's bearer key (ERR_UNAUTHENTICATED when missing or unknown). */
  authenticate: (request: FastifyRequest) => Promise<Principal>
}

/** Registers the webhook admin routes on the issuer's Fastify instance. */
export function webhookRoutes(deps: WebhookRouteDeps): (app: FastifyInstance) => Promise<void> {
  return async (app) => {
    app.get('/v1/webhooks/events', async (request, reply) =>
      reply.header('cache-control', 'no-store').send(await listWebhookEvents(deps, await deps.authenticate(request), request.query)))
    app.get<{ Params: { id: string } }>('/v1/webhooks/events/:id', async (request, reply) =>
      reply.header('cache-control', 'no-store').send(await getWebhookEvent(deps, await deps.authenticate(request), request.params.id)))
    app.post<{ Params: { id: string } }>('/v1/webhooks/events/:id/redeliver', async (request, reply) =>
      reply.header('cache-control', 'no-store').send({ event: await redeliverWebhookEvent(deps, await deps.authenticate(request), request.params.id) }))
  }
}
