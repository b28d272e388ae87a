// A real OpenID provider for the e2e suite: `oidc-provider` (panva) on 127.0.0.1:0, one registered
// confidential client, in-memory accounts with passwords, and JWT access tokens for resource servers
// (RFC 8707 resource indicators, RFC 9068 `at+jwt` signed by the OP's own keys, published at its jwks_uri).
//
// How a user's token is obtained (`userAccessToken`): the authorization code flow with PKCE, driven over
// HTTP like a browser would: GET /auth (openid-client `buildAuthorizationUrl`, with `resource`) → the OP
// redirects to its interaction URL → our login page (a form) → POST the user's login and password → the
// OP resumes → our consent page → POST consent → the OP redirects to the client's redirect_uri with a
// code → openid-client `authorizationCodeGrant` (client_secret_basic, PKCE verifier, `resource`) → the
// OP's token endpoint returns the access token for that resource.
// Why this grant: it is the one flow in which a real user authenticates at the OP and the OP itself binds
// the token to that user (`sub` = the account), exactly what an agent acting for a user starts from. The
// client_credentials grant has no user; the device flow would work too but needs the same login pages.
// The interaction pages are our own (a small login form that checks a password), not oidc-provider's
// devInteractions, which accept any login without a password.
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual, verify as cryptoVerify, type JsonWebKey } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import * as oidc from 'openid-client'

/**
 * The scope the user grants for the agentid issuer's resource by default. agentid reads the
 * `agentid:<action>` values of a user token's `scope` as the actions an agent may take for the user (a
 * token exchange may ask only for those), so the user grants `agentid:invoke` here.
 */
export const DEFAULT_RESOURCE_SCOPE = 'agentid:invoke'

export interface OpAccount {
  sub: string
  password: string
  email?: string
}

export interface OidcProviderOptions {
  /** Resource indicators (RFC 8707) the OP issues JWT access tokens for; each token's `aud` is its resource. */
  resources: readonly string[]
  /** Accounts that can log in. Default: alice and bob with random passwords. */
  accounts?: readonly OpAccount[]
  /** JWS algorithm of the access tokens. Default RS256 (what most deployed providers use). */
  accessTokenAlg?: 'RS256' | 'ES256' | 'EdDSA'
  /** Access-token lifetime in seconds. Default 600. */
  accessTokenTtlSec?: number
  /** Space-separated scopes of the resource servers. Default DEFAULT_RESOURCE_SCOPE. */
  resourceScope?: string
  /**
   * The issuer identifier this OP claims (in its discovery document and the `iss` of its tokens), when
   * it is not its own URL: an impostor of another OP, with keys of its own. Default: its own origin.
   */
  claimedIssuer?: string
}

export interface UserTokenOptions {
  /** The account that logs in. Default: the first account. */
  user?: string
  /** The resource indicator (the token's audience). Default: the first of `resources`. */
  resource?: string
  /** An RFC 8693 `may_act` claim put into this access token by the OP (extraTokenClaims). */
  mayAct?: Record<string, unknown>
  /** A wrong password for the login (the flow then fails). */
  password?: string
  /** The resource scopes to ask for. Default: all of `resourceScope`. */
  scope?: string
}

export interface UserToken {
  /** The compact JWT access token the OP issued. */
  accessToken: string
  /** Its protected header and claims, decoded (not verified: see `verifyOpJwt`). */
  header: Record<string, unknown>
  claims: Record<string, any>
  /** The ID token of the same flow. */
  idToken: string | undefined
}

export interface OidcProviderFixture {
  /** The OP's issuer identifier (http://127.0.0.1:PORT, or `claimedIssuer`). */
  readonly issuer: string
  /** Where the OP listens (http://127.0.0.1:PORT). */
  readonly origin: string
  /** The OP's JWKS URL (from its discovery document). */
  readonly jwksUri: string
  readonly clientId: string
  readonly accounts: readonly OpAccount[]
  /** The `AGENTID_TRUSTED_IDPS` entry for this OP. */
  trustedIdp(audience?: string): { issuer: string; jwks_uri: string; audience?: string }
  /** Logs a user in through the real authorization code flow and returns the OP's JWT access token. */
  userAccessToken(options?: UserTokenOptions): Promise<UserToken>
  close(): Promise<void>
}

const REDIRECT_PATH = '/cb'

/** The decoded JSON of one base64url segment of a compact JWS. */
export function decodeSegment(token: string, index: 0 | 1): Record<string, any> {
  const part = token.split('.')[index]
  if (part === undefined) throw new TypeError('not a compact JWS')
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, any>
}

const JWS_VERIFY: Record<string, { hash: string | null; dsaEncoding?: 'ieee-p1363' }> = {
  RS256: { hash: 'sha256' },
  ES256: { hash: 'sha256', dsaEncoding: 'ieee-p1363' },
  EdDSA: { hash: null },
}

/**
 * Verifies a compact JWS from an OP with node:crypto against the key of its `kid` in the JWKS at
 * `jwksUri` (RS256, ES256, EdDSA); returns the claims. Throws when the signature does not verify.
 */
export async function verifyOpJwt(token: string, jwksUri: string): Promise<Record<string, any>> {
  const header = decodeSegment(token, 0)
  const { keys } = (await (await fetch(jwksUri)).json()) as { keys: (JsonWebKey & { kid?: string; alg?: string })[] }
  const jwk = keys.find((k) => k.kid === header.kid)
  const how = JWS_VERIFY[String(header.alg)]
  if (!jwk || !how || (jwk.alg !== undefined && jwk.alg !== header.alg)) throw new Error(`no key for kid ${String(header.kid)} and alg ${String(header.alg)}`)
  const [h, p, s] = token.split('.')
  const key = createPublicKey({ key: jwk, format: 'jwk' })
  const ok = cryptoVerify(how.hash, Buffer.from(`${h}.${p}`, 'ascii'), how.dsaEncoding ? { key, dsaEncoding: how.dsaEncoding } : key, Buffer.from(s!, 'base64url'))
  if (!ok) throw new Error('the signature does not verify')
  return decodeSegment(token, 1)
}

function secretDigest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

function passwordMatches(expected: string, given: string): boolean {
  return timingSafeEqual(secretDigest(expected), secretDigest(given))
}

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
      if (body.length > 16 * 1024) reject(new Error('form too large'))
    })
    req.on('end', () => resolve(new URLSearchParams(body)))
    req.on('error', reject)
  })
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page(res: ServerResponse, status: number, title: string, action: string, fields: string): void {
  res.statusCode = status
  res.setHeader('content-type', 'text/html; charset=utf-8')
  res.setHeader('cache-control', 'no-store')
  res.end(`<!doctype html><title>${escapeHtml(title)}</title><form method="post" action="${escapeHtml(action)}">${fields}<button>Continue</button></form>`)
}

function signingKeys(): Record<string, unknown>[] {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' })
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  const ed = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })
  return [
    { ...rsa, kid: `rsa-${randomUUID()}`, use: 'sig', alg: 'RS256' },
    { ...ec, kid: `ec-${randomUUID()}`, use: 'sig', alg: 'ES256' },
    { ...ed, kid: `ed-${randomUUID()}`, use: 'sig', alg: 'EdDSA' },
  ]
}

/** A cookie jar of one user agent (name → value; the OP's cookies are all host-only on one origin). */
class CookieJar {
  private readonly cookies = new Map<string, string>()
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      if (eq <= 0) continue
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      if (/;\s*(max-age=0|expires=thu, 01 jan 1970)/i.test(line) || value === '') this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
  }
}

/** Starts oidc-provider on 127.0.0.1 with a free port. Close it with `close()`. */
export async function startOidcProvider(options: OidcProviderOptions): Promise<OidcProviderFixture> {
  if (options.resources.length === 0) throw new TypeError('startOidcProvider: at least one resource')
  const accounts: OpAccount[] = [...(options.accounts ?? [
    { sub: `alice-${randomUUID()}`, password: randomBytes(12).toString('base64url'), email: 'alice@example.com' },
    { sub: `bob-${randomUUID()}`, password: randomBytes(12).toString('base64url'), email: 'bob@example.com' },
  ])]
  const accountsBySub = new Map(accounts.map((a) => [a.sub, a]))
  const accessTokenAlg = options.accessTokenAlg ?? 'RS256'
  const clientId = `agentid-e2e-${randomUUID()}`
  const clientSecret = randomBytes(32).toString('base64url')
  /** may_act for the next access token of an account (consumed by extraTokenClaims). */
  const pendingMayAct = new Map<string, Record<string, unknown>>()

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined
  const server: Server = createServer((req, res) => handler!(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const redirectUri = `${origin}${REDIRECT_PATH}`

  const issuer = options.claimedIssuer ?? origin
  const resourceScope = options.resourceScope ?? DEFAULT_RESOURCE_SCOPE
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: signingKeys() },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    scopes: ['openid', 'email'],
    claims: { openid: ['sub'], email: ['email'] },
    ttl: { AccessToken: options.accessTokenTtlSec ?? 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accountsBySub.get(sub)
      if (!account) return undefined
      return { accountId: sub, claims: async () => ({ sub, ...(account.email ? { email: account.email } : {}) }) }
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          if (!options.resources.includes(resource)) throw new Error(`unknown resource ${resource}`)
          return { scope: resourceScope, audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: accessTokenAlg } } }
        },
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: { kind: string; accountId?: string }) => {
      if (token.kind !== 'AccessToken' || token.accountId === undefined) return undefined
      const mayAct = pendingMayAct.get(token.accountId)
      if (!mayAct) return undefined
      pendingMayAct.delete(token.accountId)
      return { may_act: mayAct }
    },
  })
  // The OP logs every server_error; the suite wants them on stderr only when they happen.
  provider.on('server_error', (_ctx: unknown, error: unknown) => console.error('oidc-provider server_error', error))
  const providerCallback = provider.callback()

  // Our interaction pages: login (password checked) then consent for what the client asked.
  async function interaction(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const details = await provider.interactionDetails(req, res)
    const uid = details.uid
    if (req.method === 'GET' && path === `/interaction/${uid}`) {
      if (details.prompt.name === 'login') {
        return page(res, 200, 'Sign in', `/interaction/${uid}/login`, '<input name="login"><input name="password" type="password">')
      }
      return page(res, 200, 'Authorize', `/interaction/${uid}/confirm`, `<p>${escapeHtml(String(details.params.client_id))} asks for ${escapeHtml(String(details.params.scope))}</p>`)
    }
    if (req.method === 'POST' && path === `/interaction/${uid}/login` && details.prompt.name === 'login') {
      const form = await readForm(req)
      const account = accountsBySub.get(form.get('login') ?? '')
      if (!account || !passwordMatches(account.password, form.get('password') ?? '')) {
        return page(res, 401, 'Sign in', `/interaction/${uid}/login`, '<p>wrong login or password</p><input name="login"><input name="password" type="password">')
      }
      return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false })
    }
    if (req.method === 'POST' && path === `/interaction/${uid}/confirm` && details.prompt.name === 'consent') {
      await readForm(req)
      const { session, params, grantId } = details
      const grant = (grantId ? await provider.Grant.find(grantId) : undefined) ?? new provider.Grant({ accountId: session!.accountId, clientId: String(params.client_id) })
      const missing = details.prompt.details
      if (missing.missingOIDCScope) grant.addOIDCScope((missing.missingOIDCScope as string[]).join(' '))
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims as string[])
      for (const [indicator, scopes] of Object.entries((missing.missingResourceScopes ?? {}) as Record<string, string[]>)) {
        grant.addResourceScope(indicator, scopes.join(' '))
      }
      return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true })
    }
    res.statusCode = 404
    res.end()
  }

  handler = (req, res) => {
    const path = new URL(req.url ?? '/', origin).pathname
    if (path.startsWith('/interaction/')) {
      interaction(req, res, path).catch((error: unknown) => {
        if (!res.headersSent) res.statusCode = 400
        res.end(String(error))
      })
      return
    }
    providerCallback(req, res)
  }

  // Discovery by the well-known URL itself when the OP claims another issuer (openid-client then skips
  // its issuer comparison; the ID token's iss is still checked against the claimed one).
  const discoveryUrl = new URL(issuer === origin ? origin : `${origin}/.well-known/openid-configuration`)
  const config = await oidc.discovery(discoveryUrl, clientId, { redirect_uris: [redirectUri] }, oidc.ClientSecretBasic(clientSecret), {
    execute: [oidc.allowInsecureRequests],
  })
  const jwksUri = config.serverMetadata().jwks_uri!

  async function userAccessToken(o: UserTokenOptions = {}): Promise<UserToken> {
    const account = o.user === undefined ? accounts[0]! : accountsBySub.get(o.user)
    if (!account) throw new TypeError(`unknown account ${o.user}`)
    const resource = o.resource ?? options.resources[0]!
    if (o.mayAct) pendingMayAct.set(account.sub, o.mayAct)
    else pendingMayAct.delete(account.sub)

    const codeVerifier = oidc.randomPKCECodeVerifier()
    const state = oidc.randomState()
    const authorizationUrl = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: `openid email ${o.scope ?? resourceScope}`,
      resource,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
    })

    // The browser: follow redirects, show up at our login and consent pages, post their forms.
    const jar = new CookieJar()
    const go = async (url: string, init: RequestInit = {}): Promise<Response> => {
      const headers = new Headers(init.headers)
      const cookie = jar.header()
      if (cookie) headers.set('cookie', cookie)
      const r = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) })
      jar.store(r)
      return r
    }
    let url = authorizationUrl.href
    let response = await go(url)
    for (let step = 0; step < 20; step++) {
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel()
        url = new URL(response.headers.get('location')!, url).href
        if (url.startsWith(`${redirectUri}?`)) {
          const tokens = await oidc.authorizationCodeGrant(config, new URL(url), { pkceCodeVerifier: codeVerifier, expectedState: state }, { resource })
          return {
            accessToken: tokens.access_token,
            header: decodeSegment(tokens.access_token, 0),
            claims: decodeSegment(tokens.access_token, 1),
            idToken: tokens.id_token,
          }
        }
        response = await go(url)
        continue
      }
      const html = await response.text()
      if (response.status !== 200) throw new Error(`the OP answered ${response.status} at ${url}: ${html.slice(0, 300)}`)
      const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1]
      if (!action) throw new Error(`no form at ${url}: ${html.slice(0, 300)}`)
      const form = new URLSearchParams()
      if (/name="login"/.test(html)) {
        form.set('login', account.sub)
        form.set('password', o.password ?? account.password)
      }
      url = new URL(action.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))), url).href
      response = await go(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
    }
    throw new Error('the authorization flow did not finish in 20 steps')
  }

  return {
    issuer,
    origin,
    jwksUri,
    clientId,
    accounts,
    trustedIdp: (audience) => ({ issuer, jwks_uri: jwksUri, ...(audience === undefined ? {} : { audience }) }),
    userAccessToken,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}
