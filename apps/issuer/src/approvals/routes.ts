// HTTP routes of human approvals: the approver admin API, enrolment, approval requests (created by guarded
// services, read and long-polled by agents), and the pages approvers use.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AgentIdError } from '@agentid/core'
import type { Approvals, ApprovalActor } from './approvals.js'
import { APPROVE_HTML, APPROVE_JS, ENROL_HTML, ENROL_JS, PAGE_HEADERS, STYLE_CSS, webauthnBrowserBundle } from './pages.js'

export interface ApprovalRouteDeps {
  approvals: Approvals
  /** Authenticates a bearer key (the issuer's admin and orchestrator keys); throws ERR_UNAUTHENTICATED. */
  authenticate: (bearer: string | undefined) => ApprovalActor | Promise<ApprovalActor>
  /** Validates a revocation body; returns the reason. */
  parseReason: (body: unknown) => string
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header !== 'string') return undefined
  return /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header)?.[1]
}

const MAX_WAIT_SEC = 30

function waitOf(query: unknown): number {
  const wait = (query as Record<string, unknown> | undefined)?.wait
  if (wait === undefined) return 0
  if (typeof wait !== 'string' || !/^[0-9]{1,2}$/.test(wait) || Number(wait) > MAX_WAIT_SEC) {
    throw new AgentIdError('ERR_INVALID_INPUT', `wait: must be 0 to ${MAX_WAIT_SEC} seconds`, { details: { field: 'wait' } })
  }
  return Number(wait)
}

function asset(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply.headers(PAGE_HEADERS).type(type).send(body)
}

/** Registers the approval routes on the issuer's Fastify instance. */
export function approvalRoutes(deps: ApprovalRouteDeps): (app: FastifyInstance) => Promise<void> {
  const { approvals } = deps
  return async (app) => {
    const actor = async (request: FastifyRequest) => deps.authenticate(bearer(request))
    const admin = async (request: FastifyRequest) => {
      const a = await actor(request)
      if (a.kind !== 'admin' && a.kind !== 'cli') throw new AgentIdError('ERR_FORBIDDEN', 'admin key required')
      return a
    }

    // Pages and their assets: same origin only, strict CSP.
    app.get('/approvals/enrol', async (_request, reply) => asset(reply, 'text/html; charset=utf-8', ENROL_HTML))
    app.get<{ Params: { id: string } }>('/approvals/:id', async (request, reply) => {
      if (!/^apr_[A-Za-z0-9_-]{22}$/.test(request.params.id)) throw new AgentIdError('ERR_NOT_FOUND', 'approval request not found')
      return asset(reply, 'text/html; charset=utf-8', APPROVE_HTML)
    })
    app.get('/approvals/assets/webauthn.js', async (_request, reply) => asset(reply, 'text/javascript; charset=utf-8', webauthnBrowserBundle()))
    app.get('/approvals/assets/enrol.js', async (_request, reply) => asset(reply, 'text/javascript; charset=utf-8', ENROL_JS))
    app.get('/approvals/assets/approve.js', async (_request, reply) => asset(reply, 'text/javascript; charset=utf-8', APPROVE_JS))
    app.get('/approvals/assets/style.css', async (_request, reply) => asset(reply, 'text/css; charset=utf-8', STYLE_CSS))

    // Approvers (admin).
    app.post('/v1/approvers', async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await approvals.addApprover(await admin(request), request.body)))
    app.get('/v1/approvers', async (request) => ({ approvers: await approvals.listApprovers(await admin(request)) }))
    app.get<{ Params: { id: string } }>('/v1/approvers/:id', async (request) => await approvals.getApprover(await admin(request), request.params.id))
    app.post<{ Params: { id: string } }>('/v1/approvers/:id/revoke', async (request) => {
      const a = await admin(request)
      return await approvals.revokeApprover(a, request.params.id, deps.parseReason(request.body))
    })

    // Enrolment (the one-time token is the credential).
    app.post('/v1/enrolments/info', async (request, reply) => reply.header('cache-control', 'no-store').send(await approvals.enrolment(request.body)))
    app.post('/v1/enrolments/options', async (request, reply) => reply.header('cache-control', 'no-store').send(await approvals.enrolmentOptions(request.body)))
    app.post('/v1/enrolments/verify', async (request, reply) => reply.code(201).header('cache-control', 'no-store').send(await approvals.enrol(request.body)))

    // Approval requests.
    app.post('/v1/approvals', async (request, reply) => {
      const a = await actor(request)
      return reply.code(201).header('cache-control', 'no-store').send(await approvals.createRequest(a, request.body))
    })
    app.get('/v1/approvals', async (request) => await approvals.listRequests(await admin(request), request.query))
    app.get<{ Params: { id: string } }>('/v1/approvals/:id', async (request, reply) => {
      const wait = waitOf(request.query)
      return reply.header('cache-control', 'no-store').send(await approvals.getRequest(request.params.id, wait))
    })
    app.post<{ Params: { id: string } }>('/v1/approvals/:id/options', async (request, reply) => reply.header('cache-control', 'no-store').send(await approvals.decisionOptions(request.params.id)))
    app.post<{ Params: { id: string } }>('/v1/approvals/:id/decision', async (request, reply) => reply.header('cache-control', 'no-store').send(await approvals.decide(request.params.id, request.body)))
  }
}
