import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { VerifiedRequest, VerifyRequestOptions } from '../request.js'
import type { Verifier } from '../verifier.js'
import { lingerAfterAnswer, VerificationError } from '@agentid/core'
import { dpopFail } from '../dpop.js'
import { dpopChallenge } from './challenge.js'
import { lineageOptionsOf, lineageRefusal, verifyHttpLineage, type AdapterLineageOptions } from './lineage.js'
import type { VerifiedLineage } from '../lineage.js'
import { checkHttpApprovalOptions, decideHttpApproval, type HttpApprovalOptions, type HttpApprovalOutcome } from './approval.js'
import type { VerifiedApproval } from '../approval.js'

/** Options of {@link agentidMiddleware} and the Fastify plugin. */
export interface AgentidHttpOptions extends VerifyRequestOptions {
  /**
   * This server's public origin (`https://erp.example`), the scheme and host of the `htu` DPoP proofs
   * must name. Set it: the default trusts the `Host` header and the socket's TLS state.
   */
  origin?: string
  /**
   * Also verify the call's lineage (`Agentid-Lineage`, with `Agentid-Credentials`) after the DPoP check:
   * the last hop for this service, `METHOD /path` and `httpArgs(url, body)`. The verified lineage is
   * `req.agentidLineage` (`request.agentidLineage` on Fastify). Refused: 401 `ERR_LINEAGE_CREDENTIAL_MISSING`, else 403.
   */
  lineage?: boolean | AdapterLineageOptions
  /** Largest body the Node middleware reads itself to check a lineage's arguments when no body parser ran. Default 1 MiB. */
  maxBodyBytes?: number
  /**
   * Human approval (Node middleware): requests for which `requires` answers `{ group }` run only with an
   * approver's receipt for exactly this request (`Agentid-Approval` header), set as `req.agentidApproval`;
   * without one the middleware asks the issuer for an approval and answers 403
   * `{ error: { code: 'ERR_APPROVAL_REQUIRED', approvalId, approvalUrl, expiresAt } }`.
   */
  approval?: HttpApprovalOptions
}

// A refusal decided by the approval step, carried to the middleware's error path.
class ApprovalRefusal extends Error {
  constructor(readonly outcome: Extract<HttpApprovalOutcome, { ok: false }>) {
    super('approval refused')
  }
}

/**
 * The path and query of a request target, never its scheme or host: an absolute-form target
 * (`http://other.example/x`) gives `/x`; an origin-form one is kept as is, `//other.example/x` included
 * (a path, not a host: it is appended to the origin, not resolved against it).
 */
export function originForm(target: string): string {
  if (target.startsWith('/')) return target
  try {
    const url = new URL(target)
    if (url.protocol === 'https:' || url.protocol === 'http:') return `${url.pathname}${url.search}`
  } catch {
    // not an absolute URL either
  }
  return `/${target}`
}

// RFC 9110 §7.2 Host: a reg-name or IPv4 address, or an IP literal, and an optional port; nothing else.
const HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

/**
 * A Host header value as the authority of the rebuilt URL; refused (VerificationError ERR_MALFORMED,
 * `invalid_request`) when it holds more than a host and port: a Host "erp.example/a?" would move the
 * request's own path into the query, which `htu` ignores.
 */
export function hostAuthority(host: string | undefined): string {
  if (host === undefined) return 'localhost'
  if (!HOST.test(host)) dpopFail('ERR_MALFORMED', 'invalid_request', 'the Host header is not a host and port')
  return host
}

/** The request URL the client called: `origin` + path, else rebuilt from the socket and `Host`. */
export function requestUrl(path: string, headers: IncomingHttpHeaders, encrypted: boolean, origin?: string): string {
  if (origin !== undefined) return `${new URL(origin).origin}${originForm(path)}`
  return `${encrypted ? 'https' : 'http'}://${hostAuthority(headers.host)}${originForm(path)}`
}

type Next = (error?: unknown) => void
type AgentidRequest = IncomingMessage & { agentid?: VerifiedRequest; agentidLineage?: VerifiedLineage | null; agentidApproval?: VerifiedApproval | null; originalUrl?: string; body?: unknown; _body?: boolean }

// The request body, for a lineage's arguments: `req.body` when a body parser ran, else read here (at
// most maxBytes) and left as `req.body` (parsed JSON, else a Buffer) with body-parser's `_body` mark,
// so a later express.json() does not wait for a stream already read.
// The bytes of the bodies the middleware read itself: the lineage's and the approval's arguments are
// digested from them (httpArgs of the text, as the caller did), never from the value parsed for req.body
// (a JSON string body parsed to its text would be read as JSON text again: two bodies, one digest).
const rawBodies = new WeakMap<object, Buffer>()

/** The body the arguments are digested from: the bytes when the middleware read them, else `req.body` as a body parser left it. */
async function argsBodyOf(req: AgentidRequest, maxBytes: number): Promise<unknown> {
  const body = await bodyOf(req, maxBytes)
  return rawBodies.get(req) ?? body
}

async function bodyOf(req: AgentidRequest, maxBytes: number): Promise<unknown> {
  if (req._body === true) return req.body
  // A req.body some parser made from the stream it read (or set on a request that is no stream). One set
  // while the stream is unread is none: Express 4's body-parser sets {} on every request and leaves a body
  // of a media type it does not parse unread; its bytes are read (and digested) here, or there are none.
  if (req.body !== undefined && req.readableEnded !== false) return req.body
  const length = req.headers['content-length']
  if (req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) return undefined
  // Read with listeners, not `for await`: leaving that loop early destroys the request, and with it the
  // socket, so a client still uploading would lose the refusal (EPIPE). Past the limit the rest is
  // dropped, and the answer closes the connection lingering (lingerAfterAnswer, in the refusal path).
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) return void chunks.push(chunk)
      req.off('data', onData)
      req.off('end', onEnd)
      chunks.length = 0
      reject(new VerificationError('ERR_MALFORMED', 'the body is too large to check the lineage\'s arguments', { details: { hop: null, reason: 'body-too-large' } }))
    }
    const onEnd = () => resolve(Buffer.concat(chunks))
    req.on('data', onData)
    req.once('end', onEnd)
    req.once('error', reject)
  })
  rawBodies.set(req, raw)
  let body: unknown = raw
  try {
    body = JSON.parse(raw.toString('utf8'))
  } catch {
    // not JSON: the bytes
  }
  req.body = body
  req._body = true
  return body
}

/**
 * Node `http` / Express / Connect middleware: verifies `Authorization: DPoP` and the DPoP proof, sets
 * `req.agentid` (a VerifiedRequest) and calls `next()`; refuses with 401 (`WWW-Authenticate: DPoP
 * error="..."`, `DPoP-Nonce` when one is required) or 400. Other failures go to `next(error)`.
 * @example
 * app.use(agentidMiddleware(verifier, { audience: 'https://erp.example', origin: 'https://erp.example' }))
 */
export function agentidMiddleware(verifier: Verifier, options: AgentidHttpOptions = {}) {
  const { origin, lineage, maxBodyBytes, approval, ...verifyOptions } = options
  const lineageOptions = lineageOptionsOf(lineage)
  const approvalOptions = checkHttpApprovalOptions(approval)
  const maxBody = maxBodyBytes ?? 1024 * 1024
  return function agentid(req: AgentidRequest, res: ServerResponse, next?: Next): void {
    const path = req.originalUrl ?? req.url ?? '/'
    // headersDistinct keeps repeated headers apart (Node keeps only the first Authorization in headers).
    const headers = (req as { headersDistinct?: Record<string, string[] | undefined> }).headersDistinct ?? req.headers
    let dpopDone = false
    new Promise<string>((resolve) => resolve(requestUrl(path, req.headers, Boolean((req.socket as { encrypted?: boolean } | undefined)?.encrypted), origin)))
      .then(async (url) => {
        const verified = await verifier.verifyRequest({ method: req.method ?? 'GET', url, headers }, verifyOptions)
        dpopDone = true
        if (lineageOptions) {
          const body = await argsBodyOf(req, maxBody)
          req.agentidLineage = await verifyHttpLineage(verifier, { method: req.method ?? 'GET', url, headers, body }, { ...lineageOptions, defaultAudience: verifyOptions.audience ?? verified.audience, caller: verified.agent, user: verified.user })
        }
        if (approvalOptions) {
          const body = await argsBodyOf(req, maxBody)
          const outcome = await decideHttpApproval(verifier, approvalOptions, { method: req.method ?? 'GET', url, headers, body, target: verifyOptions.audience ?? verified.audience }, verified)
          if (!outcome.ok) throw new ApprovalRefusal(outcome)
          req.agentidApproval = outcome.approval
        }
        return verified
      })
      .then(
      (verified) => {
        req.agentid = verified
        if (next) next()
      },
      (error: unknown) => {
        // A refusal may come before the body is read (or past its limit): close lingering, not at once.
        lingerAfterAnswer(res)
        if (error instanceof ApprovalRefusal) {
          res.statusCode = error.outcome.status
          res.setHeader('content-type', 'application/json')
          res.setHeader('cache-control', 'no-store')
          res.end(JSON.stringify(error.outcome.body))
          return
        }
        const refusal = dpopDone ? lineageRefusal(error) : undefined
        if (refusal) {
          res.statusCode = refusal.status
          res.setHeader('content-type', 'application/json')
          res.setHeader('cache-control', 'no-store')
          res.end(JSON.stringify(refusal.body))
          return
        }
        const challenge = dpopChallenge(error)
        if (!challenge) {
          if (next) return next(error)
          res.statusCode = 500
          res.end()
          return
        }
        res.statusCode = challenge.status
        for (const [name, value] of Object.entries(challenge.headers)) res.setHeader(name, value)
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(challenge.body))
      },
    )
  }
}
