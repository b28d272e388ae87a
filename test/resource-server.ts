// A resource server for end-to-end tests: Node http behind @agentid/verifier's middleware, answering
// what verifyRequest established. Under /nonce it also requires a DPoP nonce of its own (RFC 9449 §9).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { agentidMiddleware, createVerifier, type VerifiedRequest } from '@agentid/verifier'
import { freePort } from './harness.js'

export interface ResourceServer {
  /** The server's origin, also the audience its tokens must name. */
  url: string
  close(): Promise<void>
}

/** What the resource answers for an accepted request. */
export interface ResourceAnswer {
  agent: string
  user: string | null
  userIssuer: string | null
  act: { sub: string } | null
  details: { type: string; actions: string[]; locations: string[] }[]
  claims: Record<string, unknown>
}

export async function startResourceServer(o: { trustedIssuers: string[]; nonce?: string }): Promise<ResourceServer> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const verifier = createVerifier({ trustedIssuers: o.trustedIssuers })
  const plain = agentidMiddleware(verifier, { audience: url, origin: url })
  const withNonce = o.nonce === undefined ? plain : agentidMiddleware(verifier, { audience: url, origin: url, nonce: o.nonce })
  const server: Server = createServer((req: IncomingMessage & { agentid?: VerifiedRequest }, res: ServerResponse) => {
    const guard = req.url?.startsWith('/nonce') ? withNonce : plain
    guard(req, res, (error?: unknown) => {
      res.setHeader('content-type', 'application/json')
      if (error) {
        res.statusCode = 500
        res.end(JSON.stringify({ error: String(error) }))
        return
      }
      const v = req.agentid!
      res.statusCode = 200
      res.end(JSON.stringify({ agent: v.agent, user: v.user, userIssuer: v.userIssuer, act: v.act, details: v.authorizationDetails, claims: v.claims }))
    })
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}
