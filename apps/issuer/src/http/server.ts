import type { IncomingMessage, ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { AgentIdError, closeLingering, lingerAfterAnswer, type AgentIdErrorCode } from '@agentid/core'
import { requireAdmin, type IssuerService, type Principal } from '../domain/service.js'
import { parseRevokeRequest } from '../domain/input.js'
import { clientErrorResponse, HTTP_STATUS, isClientAbort, toHttpError } from './errors.js'
import { databaseUnavailable } from '../storage/unavailable.js'
import { openApiDocument } from './openapi.js'
import { parseJsonBody } from './json-body.js'
import { oauthRoutes } from '../oauth/routes.js'
import { eventRoutes, type EventRouteOptions } from '../events/routes.js'
import type { IssuerLog } from '../log/log.js'
import { logRoutes } from '../log/routes.js'
import { approvalRoutes } from '../approvals/routes.js'
import { svidRoutes } from '../svid/routes.js'
import { consoleRoutes, type ConsoleOptions } from '../console/routes.js'
import { webhookRoutes } from '../webhooks/routes.js'

export interface ServerOptions {
  /** Pino logger options (a `stream` to write JSON lines to), or false for none (tests). Default: JSON logs at info on stdout. */
  logger?: boolean | { level: string; stream?: { write(line: string): void } }
  /** Cache-Control max-age of status lists, seconds (default 10). */
  statusListMaxAgeSec?: number
  /** The event stream's settings (GET /v1/events). */
  events?: EventRouteOptions
  /** The issuer log: served under /log and /v1/log, and its entry index named in spawn, renew and revoke answers. */
  log?: IssuerLog
  /** The operator console at /console (apps/issuer/src/console): its folder and session timeouts. */
  console?: ConsoleOptions
}

/** The shipped context file's bytes, read once. */
const AGENTID_CONTEXT_V1_BYTES = readFileSync(createRequire(import.meta.url).resolve('@agentid/core/contexts/agentid-v1.json'))

/** Largest request body accepted (64 KiB); larger is 413 ERR_PAYLOAD_TOO_LARGE. */
export const BODY_LIMIT = 64 * 1024

const JSON_LD_TYPES = ['application/vc+ld+json', 'application/ld+json']

/**
 * The JSON-LD media type an Accept header asks for before (by q, then by order) application/vc+jwt,
 * or null: the JWT is the default, also for a missing header or one naming neither.
 */
export function prefersJsonLd(accept: string | string[] | undefined): string | null {
  if (typeof accept !== 'string' || accept.length > 1024) return null
  let best: { type: string; q: number } | null = null
  for (const part of accept.split(',')) {
    const [mediaType = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase())
    if (mediaType !== 'application/vc+jwt' && !JSON_LD_TYPES.includes(mediaType)) continue
    const qParam = params.find((p) => p.startsWith('q='))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (!Number.isFinite(q) || q <= 0) continue
    if (best === null || q > best.q) best = { type: mediaType, q }
  }
  return best !== null && best.type !== 'application/vc+jwt' ? best.type : null
}

// The issuer log's entry index of what an answer reports (`logIndex`), when the log runs.
function withLogIndex<T extends object>(result: T, logIndex: number | undefined): T | (T & { logIndex: number }) {
  return logIndex === undefined ? result : { ...result, logIndex }
}

// A spawn's or renewal's answer: the log index its commit returned, named only when the log runs.
function issuedAnswer<T extends { logIndex: number }>(result: T, log: IssuerLog | undefined): Omit<T, 'logIndex'> | T {
  if (log) return result
  const { logIndex: _, ...rest } = result
  return rest
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header)
  return match?.[1]
}

/**
 * Builds the issuer's HTTP API (DESIGN.md "Issuer HTTP API") on Fastify. Every error is the JSON
 * body `{ error: { code, message } }` with the status of one table; never a stack trace.
 */
export function buildServer(service: IssuerService, options: ServerOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? { level: 'info' },
    bodyLimit: BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Our own 503 while closing (below): Fastify's is not an { error: { code, message } } body.
    return503OnClosing: false,
    forceCloseConnections: false,
    routerOptions: { maxParamLength: 256 },
    // HTTP that Node's parser refuses never reaches a route: answer it with our error body, not
    // Fastify's default one, where the socket can still take an answer.
    clientErrorHandler: (error, socket) => {
      const answer = socket.destroyed ? null : clientErrorResponse(error)
      app.log.info({ code: (error as { code?: unknown }).code }, 'malformed HTTP refused')
      // Written, then the rest read and dropped for a bounded time: a reset would destroy the answer.
      if (answer !== null) closeLingering(socket, {}, answer)
      else socket.destroy()
    },
    // Router errors (a malformed percent-encoding, an over-long path parameter) get our error body too.
    frameworkErrors: (error, _request, reply) => {
      const routing = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      const { status, body } = routing
        ? toHttpError(new AgentIdError('ERR_INVALID_INPUT', error.code === 'FST_ERR_BAD_URL' ? 'the URL is not valid' : 'a path parameter is too long'))
        : toHttpError(error)
      void (reply as FastifyReply).code(status).type('application/json').send(body)
    },
  })
  // `Expect: 100-continue` with a Content-Length over the limit: 413 at once, before the client sends
  // the body (Node would answer 100 Continue and read it first). Every other request goes on as usual.
  app.server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    if (Number(request.headers['content-length']) > BODY_LIMIT) {
      lingerAfterAnswer(response) // a client that sends the body anyway still reads the 413
      const body = JSON.stringify(toHttpError(new AgentIdError('ERR_PAYLOAD_TOO_LARGE', 'request body is larger than 64 KiB')).body)
      response.writeHead(HTTP_STATUS.ERR_PAYLOAD_TOO_LARGE, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body)
      return
    }
    response.writeContinue()
    app.server.emit('request', request, response)
  })
  // JSON bodies through the verifier's strict parser (duplicate members refused): the issuer reads a
  // body the way a verifier reads a token.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string))
    } catch (error) {
      done(error as Error, undefined)
    }
  })
  // JSON only: Fastify's built-in text/plain parser would hand route handlers a string (400, not 415).
  app.removeContentTypeParser('text/plain')
  // While closing, a request that arrives on a still-open keep-alive connection is refused (503, our
  // error body); requests accepted before the close complete.
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  // Callback hooks, not async ones: these run on every request, and an async hook costs Fastify a
  // promise and a microtask turn each.
  app.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done()
    void reply.code(HTTP_STATUS.ERR_UNAVAILABLE).header('retry-after', '1').type('application/json').send({ error: { code: 'ERR_UNAVAILABLE' satisfies AgentIdErrorCode, message: 'the issuer is shutting down; retry' } })
  })
  // A request accepted before the close is answered with `Connection: close`: otherwise its keep-alive
  // connection stays open after the answer and the close waits for the keep-alive timeout (72 s).
  // An answer sent before the request's body was read (413 over the limit, 415, a refusal while
  // closing) closes the connection lingering: the client still sending gets the answer, not a reset,
  // and an endless body cannot hold the connection (@agentid/core lingerAfterAnswer).
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close')
    if (!request.raw.complete) lingerAfterAnswer(reply.raw)
    done(null, payload)
  })
  const maxAge = options.statusListMaxAgeSec ?? 10
  const log = options.log
  const auth = (request: FastifyRequest): Promise<Principal> => service.authenticate(bearer(request))
  // Admin routes check the caller's role before its body: a caller who may not ask learns nothing of how to.
  const admin = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await auth(request)
    requireAdmin(principal)
    return principal
  }

  app.setErrorHandler((error, request, reply) => {
    // A reset database connection is ECONNRESET too, as is a client hanging up mid-body: the request's
    // own stream says which (aborted only when the client went away).
    const aborted = request.raw.readableAborted || request.raw.aborted
    if (!aborted && databaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable')
      return void reply.code(503).header('retry-after', '1').type('application/json').send({ error: { code: 'ERR_UNAVAILABLE', message: 'the database is unavailable; retry' } })
    }
    if (aborted || isClientAbort(error, request.raw)) {
      request.log.info({ code: (error as { code?: unknown }).code }, 'client aborted the request')
      return void reply.code(400).type('application/json').send({ error: { code: 'ERR_INVALID_INPUT', message: 'the request ended before its body' } })
    }
    const { status, body, internal } = toHttpError(error)
    if (internal) request.log.error({ err: error }, 'internal error')
    else request.log.info({ code: body.error.code, status }, 'request refused')
    void reply.code(status).type('application/json').send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } })
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  // Readiness for a balancer: the database answers a read within 5 s (liveness stays /healthz: a
  // process whose database is down is not restarted for it).
  app.get('/readyz', async (_request, reply) => {
    let timer: NodeJS.Timeout | undefined
    const ok = await Promise.race([
      service.storage.events.head().then(() => true, () => false),
      new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), 5_000) }),
    ]).finally(() => clearTimeout(timer))
    if (!ok) return reply.code(503).header('retry-after', '1').send({ error: { code: 'ERR_UNAVAILABLE', message: 'the database does not answer' } })
    return { status: 'ready' }
  })
  // The agentid JSON-LD context (https://w3id.org/agentid/v1), the exact bytes @agentid/core ships
  // (SHA-256 AGENTID_CONTEXT_V1_SHA256), for verifiers that pin it from here rather than from npm.
  app.get('/contexts/agentid/v1', async (_request, reply) =>
    reply.type('application/ld+json').header('cache-control', 'public, max-age=86400, immutable').header('access-control-allow-origin', '*').send(AGENTID_CONTEXT_V1_BYTES))
  app.get('/openapi.json', async () => openApiDocument(service.issuer.did))
  app.get('/v1/issuer', async () => ({ did: service.issuer.did, keyId: service.issuer.keyId }))
  app.get('/.well-known/did.json', async (_request, reply) => {
    const doc = service.engine.didDocument()
    if (!doc) throw new AgentIdError('ERR_NOT_FOUND', 'this issuer runs as did:key; its DID document is the DID itself')
    return reply.type('application/did+json').send(doc)
  })

  app.post('/v1/challenges', async (request, reply) => {
    await auth(request)
    return reply.code(201).send(await service.createChallenge())
  })

  app.post('/v1/agents', async (request, reply) => {
    const result = await service.spawnWithKey(bearer(request), request.body)
    return reply.code(201).header('cache-control', 'no-store').send(issuedAnswer(result, log))
  })
  app.get('/v1/agents', async (request) => service.listAgents(await auth(request), request.query))
  app.get<{ Params: { did: string } }>('/v1/agents/:did', async (request) => service.getAgent(await auth(request), request.params.did))
  app.post<{ Params: { did: string } }>('/v1/agents/:did/renew', async (request, reply) => {
    const result = await service.renew(request.params.did, request.body)
    return reply.code(201).header('cache-control', 'no-store').send(issuedAnswer(result, log))
  })
  app.post<{ Params: { did: string } }>('/v1/agents/:did/revoke', async (request) => {
    const principal = await admin(request)
    const result = await service.revokeAgent(principal, request.params.did, parseRevokeRequest(request.body).reason)
    return withLogIndex(result, await log?.lastIndex('agent.revoked', request.params.did))
  })
  app.post<{ Params: { id: string } }>('/v1/credentials/:id/revoke', async (request) => {
    const principal = await admin(request)
    const result = await service.revokeCredential(principal, request.params.id, parseRevokeRequest(request.body).reason)
    return withLogIndex(result, await log?.lastIndexOfCredential('credential.revoked', request.params.id))
  })

  app.post<{ Params: { did: string } }>('/v1/agents/:did/grants', async (request, reply) => {
    const principal = await admin(request)
    const result = await service.grant(principal, request.params.did, request.body)
    return reply.code(201).header('cache-control', 'no-store').send(result)
  })
  app.post('/v1/delegations/status', async (request, reply) => {
    const result = await service.registerDelegation(request.body)
    return reply.code(201).header('cache-control', 'no-store').send(result)
  })
  app.post<{ Params: { id: string } }>('/v1/delegations/:id/revoke', async (request) => {
    const principal = await admin(request)
    const result = await service.revokeDelegation(principal, request.params.id, parseRevokeRequest(request.body).reason)
    return withLogIndex(result, await log?.lastIndex('delegation.revoked', request.params.id))
  })

  // Content negotiation: the JWT (application/vc+jwt) by default; the VC 2.0 credential with a Data
  // Integrity proof for Accept: application/vc+ld+json or application/ld+json. Each has its own ETag.
  app.get<{ Params: { id: string } }>('/v1/status-lists/:id', async (request, reply: FastifyReply) => {
    // A did:web issuer signs no Data Integrity credentials (yet): it always serves the JWT.
    const jsonLd = service.issuer.did.startsWith('did:key:') ? prefersJsonLd(request.headers.accept) : null
    const list = jsonLd !== null
      ? await service.statusListDi(request.params.id).then((l) => ({ etag: l.etag, type: jsonLd, body: l.json }))
      : await service.statusList(request.params.id).then((l) => ({ etag: l.etag, type: 'application/vc+jwt', body: l.jwt }))
    void reply.header('etag', list.etag).header('cache-control', `public, max-age=${maxAge}`).header('vary', 'Accept')
    if (request.headers['if-none-match'] === list.etag) return reply.code(304).send()
    return reply.type(list.type).send(list.body)
  })

  app.post('/v1/orchestrators', async (request, reply) => {
    const principal = await admin(request)
    const body = request.body as Record<string, unknown> | undefined
    if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'name')) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'body must be { "name": "…" }', { details: { field: 'body' } })
    }
    return reply.code(201).header('cache-control', 'no-store').send(await service.addOrchestrator(principal, body.name))
  })
  app.get('/v1/orchestrators', async (request) => ({ orchestrators: await service.listOrchestrators(await auth(request)) }))
  app.delete<{ Params: { id: string } }>('/v1/orchestrators/:id', async (request) => service.removeOrchestrator(await auth(request), request.params.id))

  if (log) void app.register(logRoutes(log))
  svidRoutes(app, service.svid)

  // OAuth 2.0 (metadata, JWKS, token endpoint): RFC 6749 error bodies, in their own scope.
  void app.register(oauthRoutes(service))
  void app.register(eventRoutes(service, options.events))
  // Human approvals: approvers, enrolment, requests, decisions and the pages (apps/issuer/src/approvals).
  // The operator console: sign-in, its JSON routes under /console/api and the built app under /console/.
  // Its reads go through service.storage.console and its sessions through storage.consoleSessions
  // (SQLite or PostgreSQL): every instance on one database shares them.
  void app.register(consoleRoutes(service, log, options.console))
  // The webhook outbox's admin API (apps/issuer/src/webhooks/routes.ts): list, show, redeliver.
  void app.register(webhookRoutes({ storage: service.storage, sender: service.approvals.webhooks, authenticate: auth }))
  void app.register(approvalRoutes({ approvals: service.approvals, authenticate: (key) => service.authenticate(key), parseReason: (body) => parseRevokeRequest(body).reason }))

  return app
}
