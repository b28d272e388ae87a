// The agent's side of an RFC 8693 token exchange: it signs, with its own key and on request of the
// orchestrator that holds the user's token, only the three JWTs an exchange needs. The requests name
// no user token, and the key never leaves the agent: only signed JWTs go back.
import { AgentIdError, isAgentDid, jwkThumbprint, publicJwkFromDid, signerFromJwk, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import { signAgentJwt, signDpopProof } from './agent-jwts.js'

/**
 * What an orchestrator may ask the agent to sign for one token exchange at the token endpoint:
 * the client assertion (RFC 7523), the actor token (RFC 8693 `actor_token`), a DPoP proof (RFC 9449,
 * `POST` to the token endpoint, with the server's nonce when it gave one). Plain JSON, so it can
 * cross a process boundary as is.
 */
export type ExchangeSigningRequest =
  | { readonly type: 'client_assertion'; readonly audience: string }
  | { readonly type: 'actor_token'; readonly audience: string }
  | { readonly type: 'dpop'; readonly htm: 'POST'; readonly htu: string; readonly nonce?: string }

/** The agent as the orchestrator sees it in an exchange: its DID and a callback that signs requests. */
export interface ExchangeSigner {
  /** The agent's did:key. */
  readonly did: string
  /** Signs one request; refuses (AgentIdError `ERR_FORBIDDEN`) anything but the token endpoint's three JWTs. */
  sign(request: ExchangeSigningRequest): Promise<string>
}

export interface ExchangeSignerOptions {
  /** The agent's Ed25519 private key. Give this or `signer`. */
  privateJwk?: Ed25519PrivateJwk
  /** A signer over the agent's did:key (a key in a KMS, a WebCrypto key, …). Give this or `privateJwk`. */
  signer?: Signer
  /** The issuer's base URL: the token endpoint is `${issuerUrl}/v1/token`. Give this or `tokenEndpoint`. */
  issuerUrl?: string
  /** The token endpoint's URL. */
  tokenEndpoint?: string
  /** Current time in milliseconds. Default: Date.now. */
  clock?: () => number
}

/** RFC 9449 nonces are NQCHAR strings; a bound keeps a hostile one small. */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]{1,1024}$/

/** The token endpoint named by `issuerUrl` or `tokenEndpoint` (exactly one), as an absolute http(s) URL. */
export function tokenEndpointOf(o: { issuerUrl?: string | undefined; tokenEndpoint?: string | undefined }, who: string): string {
  if ((o.issuerUrl === undefined) === (o.tokenEndpoint === undefined)) throw new TypeError(`${who}: give exactly one of issuerUrl and tokenEndpoint`)
  const endpoint = o.tokenEndpoint ?? `${o.issuerUrl!.replace(/\/+$/, '')}/v1/token`
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new TypeError(`${who}: the token endpoint must be an absolute URL`)
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.search !== '' || url.hash !== '') {
    throw new TypeError(`${who}: the token endpoint must be an http(s) URL without query or fragment`)
  }
  return url.href
}

const refuse = (message: string): never => {
  throw new AgentIdError('ERR_FORBIDDEN', `exchange signer: ${message}`)
}

/**
 * The agent's signer for token exchanges an orchestrator performs on its behalf. It signs only a
 * client assertion or an actor token for the configured token endpoint (`iss` = `sub` = the agent,
 * a 60 s lifetime, a fresh `jti`, and `cnf.jkt` = the thumbprint of the agent's own key, all chosen
 * here: the issuer refuses them with a DPoP proof by any other key) and DPoP proofs for `POST` to that endpoint. It
 * never signs a proof with `ath`: a token obtained this way is usable at a resource only by the
 * agent itself (createAgentFetch with a `token` source), not by the orchestrator that received it.
 * @example
 * // in the agent
 * const exchangeSigner = createExchangeSigner({ privateJwk, issuerUrl: 'https://agentid.example' })
 * // the orchestrator gets { did, sign } — over IPC, only requests and signed JWTs cross
 * const jwt = await exchangeSigner.sign({ type: 'actor_token', audience: 'https://agentid.example/v1/token' })
 */
export function createExchangeSigner(options: ExchangeSignerOptions): ExchangeSigner {
  if ((options.privateJwk === undefined) === (options.signer === undefined)) throw new TypeError('createExchangeSigner: give exactly one of privateJwk and signer')
  const signer = options.signer ?? signerFromJwk(options.privateJwk)
  if (!isAgentDid(signer.did)) throw new TypeError('createExchangeSigner: the signer must be an Ed25519 did:key')
  const publicJwk = publicJwkFromDid(signer.did)
  // The assertions it signs are bound to its own DPoP key: an orchestrator cannot spend them with a proof of its own.
  const jkt = jwkThumbprint(publicJwk)
  const tokenEndpoint = tokenEndpointOf(options, 'createExchangeSigner')
  const clock = options.clock ?? Date.now

  async function sign(request: ExchangeSigningRequest): Promise<string> {
    if (request === null || typeof request !== 'object' || Array.isArray(request)) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'exchange signer: a request is an object')
    }
    const r = request as unknown as Record<string, unknown>
    const allowed = r.type === 'dpop' ? ['type', 'htm', 'htu', 'nonce'] : ['type', 'audience']
    const extra = Object.keys(r).find((k) => !allowed.includes(k))
    if (extra !== undefined) refuse(`unexpected member ${JSON.stringify(extra.slice(0, 64))}`)
    const nowSec = Math.floor(clock() / 1000)
    switch (r.type) {
      case 'client_assertion':
      case 'actor_token':
        if (r.audience !== tokenEndpoint) refuse(`${r.type} only for ${tokenEndpoint}`)
        return signAgentJwt(signer, tokenEndpoint, nowSec, jkt)
      case 'dpop':
        if (r.htm !== 'POST' || r.htu !== tokenEndpoint) refuse(`DPoP proofs only for POST ${tokenEndpoint}`)
        if (r.nonce !== undefined && (typeof r.nonce !== 'string' || !NONCE.test(r.nonce))) {
          throw new AgentIdError('ERR_INVALID_INPUT', 'exchange signer: a DPoP nonce is 1 to 1024 NQCHAR characters')
        }
        return signDpopProof(signer, publicJwk, { htm: 'POST', htu: tokenEndpoint, nowSec, nonce: r.nonce as string | undefined })
      default:
        return refuse(`cannot sign a request of type ${JSON.stringify(String(r.type).slice(0, 64))}`)
    }
  }
  return Object.freeze({ did: signer.did, sign })
}
