import { randomUUID } from 'node:crypto'
import { decodeJwt, signerFromJwk, signJwt, type Ed25519PrivateJwk, type Signer } from '@agentid/core'

/** `typ` of a presentation (the same constant as `@agentid/verifier`'s PRESENTATION_TYP). */
export const PRESENTATION_TYP = 'agentid-vp+jwt'
const MAX_LIFETIME_SEC = 300

export interface CreatePresentationOptions {
  /** The agent's signer; or give `privateJwk`. */
  signer?: Signer
  /** The agent's private key, when no `signer` is given. */
  privateJwk?: Ed25519PrivateJwk
  /** The agent's identity credential (compact JWT VC); its subject must be the signer's DID. */
  credential: string
  /** The service the presentation is for (its `aud`). */
  audience: string
  /** The challenge the service handed out, if it uses one. */
  nonce?: string
  /** The agent's delegation chain (link JWTs, root first), if it acts on delegated capabilities. */
  delegationChain?: readonly string[]
  /**
   * The credential's C2SP tlog-proof (`GET <issuer>/v1/log/proof?credential=<id>`), stapled for services
   * that accept only logged credentials (`transparency` in `@agentid/verifier`), so they need not fetch it.
   */
  tlogProof?: string
  /** Lifetime in seconds (default 60, at most 300). Services accept a presentation only shortly after its `iat`. */
  ttlSec?: number
  /** Clock in milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * Builds a presentation: a JWT signed by the agent's own key for one service, carrying its identity
 * credential and, optionally, its delegation chain. Make a fresh one per request: each is accepted once.
 * @example
 * const vp = await createPresentation({ privateJwk, credential, audience: 'https://erp.example', nonce })
 * await fetch(url, { headers: { authorization: `AgentID ${vp}` } })
 */
export async function createPresentation(options: CreatePresentationOptions): Promise<string> {
  if (!options || typeof options !== 'object') throw new TypeError('createPresentation: options are required')
  const signer = options.signer ?? (options.privateJwk === undefined ? undefined : signerFromJwk(options.privateJwk))
  if (!signer) throw new TypeError('createPresentation: signer or privateJwk is required')
  const { credential, audience, nonce, delegationChain, tlogProof } = options
  if (typeof audience !== 'string' || audience === '') throw new TypeError('createPresentation: audience is required')
  if (nonce !== undefined && (typeof nonce !== 'string' || nonce === '' || nonce.length > 256)) throw new TypeError('createPresentation: nonce must be a short non-empty string')
  const ttl = options.ttlSec ?? 60
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_LIFETIME_SEC) throw new TypeError(`createPresentation: ttlSec must be an integer from 1 to ${MAX_LIFETIME_SEC}`)
  // Not verified here (the service does that); only a cheap guard against presenting someone else's credential.
  let sub: unknown
  try {
    sub = decodeJwt(credential).payload.sub
  } catch (cause) {
    throw new TypeError('createPresentation: credential is not a compact JWT', { cause })
  }
  if (sub !== signer.did) throw new TypeError('createPresentation: the credential names another agent than the signer')
  if (delegationChain !== undefined && (!Array.isArray(delegationChain) || delegationChain.length === 0 || !delegationChain.every((l) => typeof l === 'string'))) {
    throw new TypeError('createPresentation: delegationChain must be a non-empty list of link JWTs')
  }
  if (tlogProof !== undefined && (typeof tlogProof !== 'string' || !tlogProof.startsWith('c2sp.org/tlog-proof@v1\n'))) {
    throw new TypeError('createPresentation: tlogProof must be a C2SP tlog-proof (GET <issuer>/v1/log/proof?credential=<id>)')
  }
  const iat = Math.floor((options.clock ?? Date.now)() / 1000)
  return signJwt({ typ: PRESENTATION_TYP, kid: signer.keyId }, {
    iss: signer.did,
    aud: audience,
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    ...(nonce === undefined ? {} : { nonce }),
    vp: {
      type: ['VerifiablePresentation'],
      verifiableCredential: [credential],
      ...(delegationChain === undefined ? {} : { delegationChain: [...delegationChain] }),
      ...(tlogProof === undefined ? {} : { tlogProof }),
    },
  }, signer)
}
