// The operator console's HTTP side: sign-in (an admin or orchestrator key exchanged once for a session
// cookie), the JSON routes its views read and write under /console/api, and the built single-page app
// under /console/. Every route acts as the session's principal through the same domain functions and
// checks as the bearer API (an orchestrator sees only its own agents), with the same error bodies.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AgentIdError, type AgentClaims } from '@agentid/core'
import type { IssuerService, Principal } from '../domain/service.js'
import type { IssuerLog } from '../log/log.js'
import type { AgentRow } from '../domain/store.js'
import { MAX_GRAPH_LINKS, MAX_TIMELINE_EVENTS, type AuditEventRow } from './queries.js'
import type { ConsoleFacets } from '../storage/types.js'
import { hashApiKey } from '../domain/api-keys.js'
import { ConsoleSessions, sameSecret, type ConsoleSession } from './sessions.js'
import { consoleCookieName, cookieValues } from './cookie.js'
import { encodeConsoleCursor, parseConsoleListQuery, parseRevocationBody, parseSignIn, parseSince } from './input.js'
import { CONSOLE_HEADERS, registerConsoleApp } from './static.js'

export interface ConsoleOptions {
  /** Folder of the built console (index.html, assets/); null: not served. Default: @agentid/console's dist. */
  dir?: string | null
  /** Session idle timeout, seconds (default 900). */
  idleSec?: number
  /** Session absolute lifetime, seconds (default 28,800). */
  maxAgeSec?: number
  /** Milliseconds (default Date.now). */
  clock?: () => number
}

/** The header that carries a session's CSRF token on every state-changing call. */
export const CSRF_HEADER = 'x-agentid-csrf'
const SIGN_IN_FAILURES_PER_MINUTE = 10

interface Ctx { session: ConsoleSession; principal: Principal }

const iso = (sec: number) => new Date(sec * 1000).toISOString()
const isoOrNull = (sec: number | null) => (sec === null ? null : iso(sec))

// Timeline details an operator may see, by name; other members stay in the log only.
const DETAIL_FIELDS = ['credentialId', 'delegationId', 'parentId', 'delegatee', 'reason', 'resource', 'keyCustody', 'user', 'expiresIn'] as const

function eventDetails(json: string | null): Record<string, unknown> {
  if (json === null) return {}
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return {}
  }
  if (typeof value !== 'object' || value === null) return {}
  const out: Record<string, unknown> = {}
  for (const k of DETAIL_FIELDS) {
    const v = (value as Record<string, unknown>)[k]
    if (typeof v === 'string' || typeof v === 'number') out[k] = v
  }
  for (const k of ['credentials', 'delegations'] as const) {
    const v = (value as Record<string, unknown>)[k]
    if (Array.isArray(v)) out[k] = v.length
  }
  return out
}

/** Registers the console (its routes and, when built, its app) on the issuer's Fastify instance. */
export function consoleRoutes(service: IssuerService, log: IssuerLog | undefined, options: ConsoleOptions = {}): (app: FastifyInstance) => Promise<void> {
  // In the issuer's database (SQLite or PostgreSQL): every instance on it shares them.
  const sessions = new ConsoleSessions(service.storage.consoleSessions, {
    ...(options.idleSec !== undefined ? { idleSec: options.idleSec } : {}),
    ...(options.maxAgeSec !== undefined ? { maxAgeSec: options.maxAgeSec } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
  })
  // The console's reads, SQL per engine (SQLite or PostgreSQL): service.storage.console.
  const queries = service.storage.console
  const baseOrigin = new URL(service.engine.baseUrl).origin
  const baseIsHttps = baseOrigin.startsWith('https:')
  const failures = new Map<string, { n: number; until: number }>()
  const facetCache = new Map<string, { until: number; values: ConsoleFacets }>()
  const clock = options.clock ?? Date.now

  const secure = (request: FastifyRequest) => baseIsHttps || request.protocol === 'https'
  // Named for this issuer: browsers do not separate cookies by port (see cookie.ts).
  const secureCookie = consoleCookieName(service.engine.baseUrl, true)
  const plainCookie = consoleCookieName(service.engine.baseUrl, false)
  const cookieName = (request: FastifyRequest) => (secure(request) ? secureCookie : plainCookie)
  // The session id the request carries; a cookie sent twice (tossed by another site) counts as none.
  const sessionId = (request: FastifyRequest): string | undefined => {
    const values = cookieValues(request.headers.cookie, cookieName(request))
    return values.length === 1 ? values[0] : undefined
  }
  const setCookie = (request: FastifyRequest, reply: FastifyReply, value: string, maxAge: number) => {
    const attrs = [`${cookieName(request)}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAge}`]
    if (secure(request)) attrs.push('Secure')
    void reply.header('set-cookie', attrs.join('; '))
  }

  // A browser's cross-site request carries another Origin (or Sec-Fetch-Site other than same-origin):
  // refused before anything else, on every call that changes state (sign-in included).
  const sameOrigin = (request: FastifyRequest) => {
    const site = request.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin') throw new AgentIdError('ERR_FORBIDDEN', 'cross-site request refused', { details: { reason: 'origin' } })
    const origin = request.headers.origin
    if (origin === undefined) return
    const own = `${request.protocol}://${request.headers.host ?? ''}`
    if (origin !== baseOrigin && origin !== own) throw new AgentIdError('ERR_FORBIDDEN', 'cross-origin request refused', { details: { reason: 'origin' } })
  }

  // The session and its principal, re-read in one query: a disabled orchestrator or a replaced admin
  // key ends it (ERR_UNAUTHENTICATED, details.reason says why).
  const current = async (request: FastifyRequest): Promise<Ctx> => {
    const session = await sessions.open(sessionId(request))
    return { session, principal: session.principal }
  }
  // State-changing calls: same origin, and the session's CSRF token echoed in a header a cross-site
  // form or a simple request cannot set.
  const writing = async (request: FastifyRequest): Promise<Ctx> => {
    sameOrigin(request)
    const ctx = await current(request)
    const token = request.headers[CSRF_HEADER]
    if (typeof token !== 'string' || !sameSecret(token, ctx.session.csrf)) throw new AgentIdError('ERR_FORBIDDEN', `missing or wrong ${CSRF_HEADER} header`, { details: { reason: 'csrf' } })
    return ctx
  }
  const admin = (ctx: Ctx) => {
    if (ctx.principal.kind !== 'admin') throw new AgentIdError('ERR_FORBIDDEN', 'admin key required')
  }
  // Orchestrator names by id, read once per request (there are few orchestrators).
  const orchestratorNames = async (): Promise<(id: string) => string> => {
    const names = new Map((await service.storage.orchestrators.list()).map((o) => [o.id, o.name]))
    return (id: string) => names.get(id) ?? id
  }
  const sessionView = (ctx: { session: ConsoleSession }) => {
    const p = ctx.session.principal
    return {
      principal: p.kind === 'admin' ? { kind: 'admin' } : { kind: 'orchestrator', id: p.id, name: p.name },
      csrfToken: ctx.session.csrf,
      idleTimeoutSec: sessions.idleSec,
      expiresInSec: sessions.expiresIn(ctx.session),
    }
  }

  const agentSummary = (orchestratorName: (id: string) => string) => (row: AgentRow) => {
    let claims: Partial<AgentClaims> = {}
    try {
      claims = JSON.parse(row.claims_json) as AgentClaims
    } catch {}
    return {
      did: row.did, status: row.status, purpose: row.purpose, controller: row.controller,
      model: claims.model ?? null, policyTier: claims.policyTier ?? null, dataAccessClass: claims.dataAccessClass ?? null,
      orchestrator: { id: row.orchestrator_id, name: orchestratorName(row.orchestrator_id) },
      createdAt: iso(row.created_at), revokedAt: isoOrNull(row.revoked_at),
    }
  }

  const noteFailure = (ip: string) => {
    const now = clock()
    const f = failures.get(ip)
    if (!f || f.until <= now) failures.set(ip, { n: 1, until: now + 60_000 })
    else f.n++
    if (failures.size > 10_000) failures.delete(failures.keys().next().value!)
  }

  return async (app) => {
    // Judged by the route that answered, else the percent-decoded path: the router also sends
    // /console/%61pi/session (or /console/./api/…) to the API, and those answers carry the CSRF token.
    app.addHook('onSend', async (request, reply) => {
      const raw = request.url.split('?')[0]!
      let path = raw
      try {
        path = decodeURIComponent(raw)
      } catch {}
      const route = request.routeOptions.url ?? ''
      const under = (prefix: string) => route.startsWith(prefix) || path.startsWith(prefix) || raw.startsWith(prefix)
      if (!under('/console')) return
      for (const [k, v] of Object.entries(CONSOLE_HEADERS)) if (!reply.hasHeader(k)) void reply.header(k, v)
      if (under('/console/api/')) void reply.header('cache-control', 'no-store')
    })

    // ---- session ------------------------------------------------------------------------------
    app.post('/console/api/session', async (request, reply) => {
      sameOrigin(request)
      const key = parseSignIn(request.body)
      let principal: Principal
      try {
        principal = await service.authenticate(key)
      } catch (error) {
        // Wrong keys past the limit are answered 429 (a signal in the logs; the keys are 256-bit random,
        // so this is not what stops guessing). A right key always signs in: others' failures from the
        // same address (a shared proxy) cannot lock an operator out.
        const f = failures.get(request.ip)
        if (f && f.until > clock() && f.n >= SIGN_IN_FAILURES_PER_MINUTE) throw new AgentIdError('ERR_RATE_LIMITED', 'too many failed sign-ins: wait a minute')
        noteFailure(request.ip)
        throw error
      }
      if (principal.kind === 'cli') throw new AgentIdError('ERR_UNAUTHENTICATED', 'an admin or orchestrator key is required')
      // A new id at every sign-in; a session the browser already had (or was handed) ends here.
      await sessions.delete(sessionId(request))
      const { id, session } = await sessions.create(principal, hashApiKey(key))
      setCookie(request, reply, id, sessions.maxAgeSec)
      return reply.code(201).send(sessionView({ session }))
    })
    app.get('/console/api/session', async (request) => sessionView(await current(request)))
    app.delete('/console/api/session', async (request, reply) => {
      await writing(request)
      await sessions.delete(sessionId(request))
      setCookie(request, reply, '', 0)
      return reply.code(204).send()
    })

    // ---- agents -------------------------------------------------------------------------------
    app.get('/console/api/agents', async (request) => {
      const { principal } = await current(request)
      const q = parseConsoleListQuery(request.query)
      let orchestratorId: string | undefined
      if (principal.kind === 'orchestrator') {
        if (q.orchestrator !== undefined && q.orchestrator !== principal.id && q.orchestrator !== principal.name) throw new AgentIdError('ERR_FORBIDDEN', 'an orchestrator lists only its own agents')
        orchestratorId = principal.id
      } else if (q.orchestrator !== undefined) {
        orchestratorId = ((await service.storage.orchestrators.byId(q.orchestrator)) ?? (await service.storage.orchestrators.byName(q.orchestrator)))?.id ?? '-'
      }
      const filter = { ...q.filter, ...(orchestratorId !== undefined ? { orchestratorId } : {}) }
      const rows = await queries.agentPage(filter, q.limit + 1, q.cursor)
      const page = rows.slice(0, q.limit)
      const last = page[page.length - 1]
      const counts = await queries.agentCounts(filter)
      return {
        agents: page.map(agentSummary(await orchestratorNames())),
        nextCursor: rows.length > q.limit && last ? encodeConsoleCursor(last.created_at, last.did) : null,
        counts: { ...counts, total: counts.active + counts.revoked },
      }
    })
    app.get('/console/api/facets', async (request) => {
      const { principal } = await current(request)
      const own = principal.kind === 'orchestrator' ? principal.id : undefined
      // Distinct values scan the table (≈ 1 s at 100,000 agents): kept 30 s per scope.
      const scope = own ?? ''
      const cached = facetCache.get(scope)
      const values = cached && cached.until > clock() ? cached.values : await queries.facets(own)
      if (values !== cached?.values) {
        facetCache.set(scope, { until: clock() + 30_000, values })
        if (facetCache.size > 1000) facetCache.delete(facetCache.keys().next().value!)
      }
      const orchestrators = principal.kind === 'admin'
        ? (await service.storage.orchestrators.list()).map((o) => ({ id: o.id, name: o.name }))
        : [{ id: (principal as { id: string }).id, name: (principal as { name: string }).name }]
      return { ...values, orchestrators }
    })
    app.get<{ Params: { did: string } }>('/console/api/agents/:did', async (request) => {
      const { principal } = await current(request)
      // The bearer API's own check: another orchestrator's agent is "not found".
      const agent = await service.getAgent(principal, request.params.did)
      const own = (orchestratorId: string) => principal.kind === 'admin' || (principal.kind === 'orchestrator' && orchestratorId === principal.id)
      let links = await queries.delegationsAround(agent.did, MAX_GRAPH_LINKS + 1)
      const truncated = links.length > MAX_GRAPH_LINKS
      links = links.slice(0, MAX_GRAPH_LINKS)
      const dids = [...new Set(links.flatMap((l) => [l.delegator, l.delegatee]))]
      const known = new Map((await queries.agentsBrief(dids)).map((a) => [a.did, a]))
      // An orchestrator sees the chains its agent holds and the links its own agents signed or
      // received; links between other orchestrators' agents further down are left out.
      const visible = (did: string) => { const a = known.get(did); return a !== undefined && own(a.orchestrator_id) }
      if (principal.kind === 'orchestrator') links = links.filter((l) => l.above === 1 || visible(l.delegator) || visible(l.delegatee))
      const now = service.now()
      const nodes = [...new Set(links.flatMap((l) => [l.delegator, l.delegatee]).concat(agent.did))].map((did) => {
        if (did === service.issuer.did) return { id: did, kind: 'issuer' as const }
        const a = known.get(did)
        if (a && own(a.orchestrator_id)) return { id: did, kind: 'agent' as const, status: a.status, purpose: a.purpose }
        return { id: did, kind: a ? ('other' as const) : ('external' as const) }
      })
      const orchestratorName = await orchestratorNames()
      const timeline = (await queries.eventsOfAgent(agent.did, links.map((l) => l.id), MAX_TIMELINE_EVENTS)).map((e: AuditEventRow) => ({
        index: e.log_index, at: iso(e.at), actor: e.actor.startsWith('orchestrator:') ? `orchestrator ${orchestratorName(e.actor.slice(13))}` : e.actor, action: e.action, subject: e.subject, details: eventDetails(e.details_json),
        logged: log !== undefined && e.log_index < log.size,
      }))
      return {
        agent: { ...agent, orchestratorName: orchestratorName(agent.orchestrator) },
        graph: {
          nodes,
          links: links.map((l) => ({
            id: l.id, parentId: l.parent_id, from: l.delegator, to: l.delegatee,
            status: l.revoked_at !== null ? 'revoked' : l.expires_at <= now ? 'expired' : 'active',
            createdAt: iso(l.created_at), expiresAt: iso(l.expires_at), revokedAt: isoOrNull(l.revoked_at), revocationReason: l.revocation_reason,
          })),
          truncated,
        },
        timeline,
        log: log ? { size: log.size } : null,
      }
    })

    // ---- revocation: preview (dry run of the cascade) and the revocation itself --------------------
    app.post('/console/api/revocations/preview', async (request) => {
      const ctx = await writing(request)
      admin(ctx)
      const { target } = parseRevocationBody(request.body, false)
      const effect = await service.previewRevocation(ctx.principal, target)
      const brief = new Map((await queries.agentsBrief(effect.downstreamAgents)).map((a) => [a.did, a]))
      return {
        ...effect,
        credentials: effect.credentials.map((c) => ({ ...c, expiresAt: iso(c.expiresAt) })),
        delegations: effect.delegations.map((d) => ({ ...d, expiresAt: iso(d.expiresAt) })),
        downstreamAgents: effect.downstreamAgents.map((did) => ({ did, status: brief.get(did)?.status ?? null, purpose: brief.get(did)?.purpose ?? null })),
      }
    })
    app.post('/console/api/revocations', async (request) => {
      const ctx = await writing(request)
      admin(ctx)
      const { target, reason } = parseRevocationBody(request.body, true)
      switch (target.kind) {
        case 'agent': return { kind: 'agent', ...await service.revokeAgent(ctx.principal, target.did, reason) }
        case 'credential': return { kind: 'credential', ...await service.revokeCredential(ctx.principal, target.id, reason) }
        case 'delegation': return { kind: 'delegation', ...await service.revokeDelegation(ctx.principal, target.id, reason) }
      }
    })

    // ---- orchestrators ------------------------------------------------------------------------
    app.get('/console/api/orchestrators', async (request) => ({ orchestrators: await service.listOrchestrators((await current(request)).principal) }))
    app.post('/console/api/orchestrators', async (request, reply) => {
      const ctx = await writing(request)
      const body = request.body as Record<string, unknown> | undefined
      if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).some((k) => k !== 'name')) {
        throw new AgentIdError('ERR_INVALID_INPUT', 'body must be { "name": "…" }', { details: { field: 'body' } })
      }
      return reply.code(201).send(await service.addOrchestrator(ctx.principal, body.name))
    })
    app.post<{ Params: { id: string } }>('/console/api/orchestrators/:id/disable', async (request) => {
      const ctx = await writing(request)
      const removed = await service.removeOrchestrator(ctx.principal, request.params.id)
      await sessions.endOrchestrator(removed.id)
      return removed
    })

    // ---- log and approvals ----------------------------------------------------------------------
    app.get('/console/api/log', async (request) => {
      await current(request)
      const since = parseSince(request.query)
      if (!log) throw new AgentIdError('ERR_NOT_FOUND', 'this issuer runs without a log')
      const latest = await log.latestCheckpoint()
      if (!latest) return { origin: log.origin, vkey: log.vkey, healthy: log.healthy, checkpoint: null }
      const cosignatures = (await log.cosignatures(latest.size)).map((c) => ({ witness: c.witness.split('+')[0] ?? c.witness, at: iso(c.created_at) }))
      let consistency: { from: number; to: number; proof: string[] } | { from: number; to: number; error: string } | null = null
      if (since !== undefined) {
        consistency = since > latest.size
          ? { from: since, to: latest.size, error: 'the log is smaller than when this console last looked' }
          : { from: since, to: latest.size, proof: since === 0 || since === latest.size ? [] : log.consistencyProof(since, latest.size).map((h) => Buffer.from(h).toString('base64')) }
      }
      return {
        origin: log.origin, vkey: log.vkey, healthy: log.healthy,
        checkpoint: { size: latest.size, note: await log.checkpoint(), createdAt: iso(latest.created_at), ageSec: Math.max(0, service.now() - latest.created_at), cosignatures },
        consistency,
      }
    })
    app.get('/console/api/approvals', async (request) => {
      const { principal } = await current(request)
      const q = (request.query ?? {}) as Record<string, unknown>
      const status = q.status === undefined ? 'pending' : q.status
      return service.approvals.listRequests(principal, { status, limit: '100' })
    })

    // The single-page app itself (static files), or a notice when it was not built.
    await registerConsoleApp(app, options.dir)
  }
}
