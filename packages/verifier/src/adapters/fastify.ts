import type { VerifiedRequest } from '../request.js'
import type { Verifier } from '../verifier.js'
import { dpopChallenge } from './challenge.js'
import { hostAuthority, originForm, type AgentidHttpOptions } from './node.js'
import { lineageOptionsOf, lineageRefusal, verifyHttpLineage } from './lineage.js'
import type { VerifiedLineage } from '../lineage.js'
import type { VerifiedApproval } from '../approval.js'
import { checkHttpApprovalOptions, decideHttpApproval } from './approval.js'

/** The part of a Fastify request the plugin reads. */
interface FastifyRequestLike {
  method: string
  url: string
  protocol?: string
  host?: string
  hostname?: string
  headers: Record<string, string | string[] | undefined>
  raw: { headersDistinct?: Record<string, string[]> }
  agentid?: VerifiedRequest | null
  agentidLineage?: VerifiedLineage | null
  agentidApproval?: VerifiedApproval | null
  body?: unknown
}

interface FastifyReplyLike {
  code(status: number): FastifyReplyLike
  header(name: string, value: string): FastifyReplyLike
  send(body: unknown): FastifyReplyLike
}

/** The part of a Fastify instance the plugin uses. */
export interface FastifyLike {
  decorateRequest(name: string, value: unknown): unknown
  addHook(name: 'preHandler', hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>): unknown
}

export interface AgentidFastifyOptions extends AgentidHttpOptions {
  verifier: Verifier
}

/**
 * Fastify plugin (no runtime dependency on fastify): a preHandler that verifies the DPoP-bound
 * access token and proof, sets `request.agentid`, or answers 401/400 like {@link agentidMiddleware}.
 * With `lineage`, verifies the call's lineage (`request.agentidLineage`); with `approval`, a request for
 * which `approval.requires` answers `{ group }` goes on only with an approver's receipt for exactly this
 * request (`Agentid-Approval` header, verified and spent: `request.agentidApproval`), else 403
 * `ERR_APPROVAL_REQUIRED` with the id of an approval request made at the issuer, as the Node middleware.
 * Registered in the caller's scope (it skips encapsulation, like fastify-plugin).
 * @example
 * await app.register(agentidFastify, { verifier, audience: 'https://erp.example', origin: 'https://erp.example' })
 */
export function agentidFastify(fastify: FastifyLike, opts: AgentidFastifyOptions, done: (error?: Error) => void): void {
  const { verifier, origin, lineage, approval, maxBodyBytes: _unused, ...verifyOptions } = opts ?? ({} as AgentidFastifyOptions)
  if (!verifier || typeof verifier.verifyRequest !== 'function') return done(new TypeError('agentidFastify: options.verifier is required'))
  let lineageOptions
  let approvalOptions
  try {
    lineageOptions = lineageOptionsOf(lineage)
    approvalOptions = checkHttpApprovalOptions(approval)
  } catch (error) {
    return done(error as Error)
  }
  fastify.decorateRequest('agentid', null)
  fastify.decorateRequest('agentidLineage', null)
  fastify.decorateRequest('agentidApproval', null)
  fastify.addHook('preHandler', async (request, reply) => {
    let dpopDone = false
    try {
      // The scheme and host from origin (else the request's); from request.url only its path and query.
      const base = origin !== undefined ? new URL(origin).origin : `${request.protocol ?? 'http'}://${hostAuthority(request.host ?? request.hostname)}`
      const url = `${base}${originForm(request.url)}`
      const headers = request.raw.headersDistinct ?? request.headers
      const verified = await verifier.verifyRequest({ method: request.method, url, headers }, verifyOptions)
      request.agentid = verified
      dpopDone = true
      // preHandler runs after Fastify parsed the body: the lineage's arguments are checked on it. A string
      // under a JSON media type is a JSON string Fastify parsed, not text: given as the JSON text of that
      // string, else httpArgs would parse the string's content as JSON again (two bodies, one digest).
      const body = typeof request.body === 'string' && isJsonMediaType(request.headers['content-type']) ? JSON.stringify(request.body) : request.body
      if (lineageOptions) request.agentidLineage = await verifyHttpLineage(verifier, { method: request.method, url, headers, body }, { ...lineageOptions, defaultAudience: verifyOptions.audience ?? verified.audience, caller: verified.agent, user: verified.user })
      if (approvalOptions) {
        // The approved call's arguments are `httpArgs(url, body)` of the parsed body, as for the lineage.
        const outcome = await decideHttpApproval(verifier, approvalOptions, { method: request.method, url, headers, body, target: verifyOptions.audience ?? verified.audience }, verified)
        if (!outcome.ok) {
          request.agentid = null
          reply.code(outcome.status)
          reply.header('content-type', 'application/json')
          reply.header('cache-control', 'no-store')
          return reply.send(outcome.body)
        }
        request.agentidApproval = outcome.approval
      }
    } catch (error) {
      const refusal = dpopDone ? lineageRefusal(error) : undefined
      if (refusal) {
        reply.code(refusal.status)
        reply.header('cache-control', 'no-store')
        return reply.send(refusal.body)
      }
      const challenge = dpopChallenge(error)
      if (!challenge) throw error
      reply.code(challenge.status)
      for (const [name, value] of Object.entries(challenge.headers)) reply.header(name, value)
      return reply.send(challenge.body)
    }
    return undefined
  })
  done()
}
Object.assign(agentidFastify, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'agentid' })

// application/json, or any type/subtype+json (RFC 6839), parameters ignored.
function isJsonMediaType(value: string | string[] | undefined): boolean {
  const type = (Array.isArray(value) ? value[0] : value)?.split(';')[0]?.trim().toLowerCase()
  return type !== undefined && (type === 'application/json' || /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(type))
}
