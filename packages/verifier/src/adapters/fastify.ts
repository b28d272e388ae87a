import type { VerifiedRequest } from '../request.js'
import type { Verifier } from '../verifier.js'
import { dpopChallenge } from './challenge.js'
import { hostAuthority, originForm, type AgentidHttpOptions } from './node.js'

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
 * Registered in the caller's scope (it skips encapsulation, like fastify-plugin).
 * @example
 * await app.register(agentidFastify, { verifier, audience: 'https://erp.example', origin: 'https://erp.example' })
 */
export function agentidFastify(fastify: FastifyLike, opts: AgentidFastifyOptions, done: (error?: Error) => void): void {
  const { verifier, origin, ...verifyOptions } = opts ?? ({} as AgentidFastifyOptions)
  if (!verifier || typeof verifier.verifyRequest !== 'function') return done(new TypeError('agentidFastify: options.verifier is required'))
  fastify.decorateRequest('agentid', null)
  fastify.addHook('preHandler', async (request, reply) => {
    try {
      // The scheme and host from origin (else the request's); from request.url only its path and query.
      const base = origin !== undefined ? new URL(origin).origin : `${request.protocol ?? 'http'}://${hostAuthority(request.host ?? request.hostname)}`
      const url = `${base}${originForm(request.url)}`
      request.agentid = await verifier.verifyRequest({ method: request.method, url, headers: request.raw.headersDistinct ?? request.headers }, verifyOptions)
    } catch (error) {
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
