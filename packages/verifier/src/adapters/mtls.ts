import { X509Certificate } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { VerificationError } from '@agentid/core'
import type { VerifiedSvidAgent } from '../svid/mtls.js'
import type { Verifier } from '../verifier.js'

/** The part of a TLS socket the adapters read (node:tls `TLSSocket`). */
interface PeerSocketLike {
  encrypted?: boolean
  getPeerX509Certificate?: () => X509Certificate | undefined
  getPeerCertificate?: (detailed: true) => { raw?: Buffer; issuerCertificate?: unknown } | null
}

/**
 * The certificate chain the TLS client presented, leaf first (at most 5), or null when the connection
 * is not TLS or the client sent no certificate. Read from the socket: the server must ask for it
 * (`requestCert: true`); it may leave the check to the verifier (`rejectUnauthorized: false`) or also
 * make the TLS stack check it (`ca`: the bundle's X.509 authorities).
 * @example
 * const chain = peerCertificateChain(req.socket)
 */
export function peerCertificateChain(socket: unknown): X509Certificate[] | null {
  const s = socket as PeerSocketLike | null | undefined
  if (!s || typeof s.getPeerCertificate !== 'function') return null
  const detailed = s.getPeerCertificate(true)
  if (!detailed || !Buffer.isBuffer(detailed.raw) || detailed.raw.length === 0) return null
  const chain: X509Certificate[] = []
  const seen = new Set<unknown>()
  let current: { raw?: Buffer; issuerCertificate?: unknown } | undefined = detailed
  while (current && Buffer.isBuffer(current.raw) && !seen.has(current) && chain.length < 5) {
    seen.add(current)
    chain.push(new X509Certificate(current.raw))
    const next = current.issuerCertificate as { raw?: Buffer } | undefined
    if (!next || next === current || (Buffer.isBuffer(next.raw) && next.raw.equals(current.raw))) break
    current = next
  }
  return chain
}

function refusal(error: unknown): { status: number; body: { error: { code: string; message: string } } } | null {
  if (!(error instanceof VerificationError)) return null
  const status = error.code === 'ERR_STATUS_UNAVAILABLE' ? 503 : error.code === 'ERR_REVOKED' ? 403 : 401
  return { status, body: { error: { code: error.code, message: error.message } } }
}

type Next = (error?: unknown) => void
type MtlsRequest = IncomingMessage & { agentidSvid?: VerifiedSvidAgent }

/**
 * Node `https` / Express / Connect middleware for mutual TLS: authenticates the client certificate as
 * an agent's X.509-SVID (`verifier.verifyX509Svid`, which needs createVerifier's `spiffe` option), sets
 * `req.agentidSvid` (`{ agent, spiffeId, certificateThumbprint, expiresAt }`) and calls `next()`; refuses
 * with 401 (no certificate, or one that does not verify), 403 (`ERR_REVOKED`) or 503
 * (`ERR_STATUS_UNAVAILABLE`), body `{ error: { code, message } }`. Other failures go to `next(error)`.
 * @example
 * https.createServer({ key, cert, requestCert: true, rejectUnauthorized: false }, app)
 * app.use(agentidMtlsMiddleware(verifier))
 */
export function agentidMtlsMiddleware(verifier: Verifier) {
  if (!verifier || typeof verifier.verifyX509Svid !== 'function') throw new TypeError('agentidMtlsMiddleware: a verifier is required')
  return function agentidMtls(req: MtlsRequest, res: ServerResponse, next?: Next): void {
    new Promise<VerifiedSvidAgent>((resolve) => {
      const chain = peerCertificateChain(req.socket)
      if (chain === null) throw new VerificationError('ERR_MALFORMED', 'no TLS client certificate')
      resolve(verifier.verifyX509Svid(chain))
    }).then(
      (verified) => {
        req.agentidSvid = verified
        if (next) next()
      },
      (error: unknown) => {
        const r = refusal(error)
        if (!r) {
          if (next) return next(error)
          res.statusCode = 500
          res.end()
          return
        }
        res.statusCode = r.status
        res.setHeader('content-type', 'application/json')
        res.setHeader('cache-control', 'no-store')
        res.end(JSON.stringify(r.body))
      },
    )
  }
}

interface FastifyMtlsRequest { raw: { socket: unknown }; agentidSvid?: VerifiedSvidAgent | null }
interface FastifyMtlsReply { code(status: number): FastifyMtlsReply; header(name: string, value: string): FastifyMtlsReply; send(body: unknown): FastifyMtlsReply }
interface FastifyMtlsLike {
  decorateRequest(name: string, value: unknown): unknown
  addHook(name: 'preHandler', hook: (request: FastifyMtlsRequest, reply: FastifyMtlsReply) => Promise<unknown>): unknown
}

/**
 * Fastify plugin (no runtime dependency on fastify): a preHandler that authenticates the TLS client
 * certificate like {@link agentidMtlsMiddleware} and sets `request.agentidSvid`. Start Fastify with
 * `https: { requestCert: true, rejectUnauthorized: false, ... }`.
 * @example
 * await app.register(agentidMtlsFastify, { verifier })
 */
export function agentidMtlsFastify(fastify: FastifyMtlsLike, opts: { verifier: Verifier }, done: (error?: Error) => void): void {
  const verifier = opts?.verifier
  if (!verifier || typeof verifier.verifyX509Svid !== 'function') return done(new TypeError('agentidMtlsFastify: options.verifier is required'))
  fastify.decorateRequest('agentidSvid', null)
  fastify.addHook('preHandler', async (request, reply) => {
    try {
      const chain = peerCertificateChain(request.raw.socket)
      if (chain === null) throw new VerificationError('ERR_MALFORMED', 'no TLS client certificate')
      request.agentidSvid = await verifier.verifyX509Svid(chain)
    } catch (error) {
      const r = refusal(error)
      if (!r) throw error
      return reply.code(r.status).header('cache-control', 'no-store').send(r.body)
    }
    return undefined
  })
  done()
}
Object.assign(agentidMtlsFastify, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'agentid-mtls' })
