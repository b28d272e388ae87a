// The gateway: one guarded Streamable HTTP MCP endpoint per upstream (`/mcp/<id>`), each with its
// RFC 9728 metadata, all on one Node http server.
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentIdError, signerFromJwk, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import { createMcpGuard, type AuditEvent, type McpGuard } from '@agentid/mcp'
import { loadPolicyEngine, type PolicyEngine } from '@agentid/policy'
import { createVerifier, type Verifier } from '@agentid/verifier'
import type { ConfigValue, GatewayConfig } from './config.js'
import { createForwardingServer, directToolCalls } from './forward.js'
import { createLogger, type Logger } from './logger.js'
import { createRedactor, type Redactor } from './redact.js'
import { createSecretResolver, envSecretStore, fileSecretStore, type SecretStore } from './secrets.js'
import { connectUpstream, type Upstream } from './upstream.js'

/** Options of {@link startGateway} beyond the config file: injected dependencies. */
export interface GatewayOptions {
  /** The environment the `env:` secret store reads. Default `process.env`. */
  env?: NodeJS.ProcessEnv
  /** More secret stores (a Vault backend, ...), selected by their scheme. */
  secretStores?: readonly SecretStore[]
  /** Where log lines go (already redacted). Default: process.stderr. */
  logWrite?: (line: string) => void
  /** Where audit events go. Default: the log writer, as `{ "level": 30, "msg": "audit", "audit": {...} }`, whatever the log level. */
  audit?: (event: AuditEvent) => void
  /** Passed to the verifier, the guards and the policy engine. Default `Date.now`. */
  clock?: () => number
  /** Status fetches and upstream-independent HTTP (the verifier's `fetch`). Default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/** One upstream as the gateway exposes it. */
export interface GatewayEndpoint {
  readonly id: string
  /** The MCP endpoint URL: what agents connect to, and the audience their access tokens must name. */
  readonly url: string
  /** The endpoint's RFC 9728 Protected Resource Metadata URL. */
  readonly metadataUrl: string
}

/** A running gateway. */
export interface RunningGateway {
  /** The gateway's public base URL. */
  readonly url: string
  readonly endpoints: readonly GatewayEndpoint[]
  readonly logger: Logger
  readonly policy: PolicyEngine
  /** Re-reads the policy folder; on failure the last good set stays in force (and the error is logged). */
  reloadPolicies(): ReturnType<PolicyEngine['reload']>
  /** Stops taking connections, ends open SSE streams, lets calls in flight finish for up to `graceMs` (default 5,000), then closes the upstreams. */
  stop(graceMs?: number): Promise<void>
}

interface Route {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>
}

function json(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return void res.destroy()
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

/**
 * Starts the gateway: loads and validates the policy folder (`ERR_POLICY_INVALID` refuses to start),
 * connects every upstream with its secrets read now (`ERR_UNAVAILABLE` / `ERR_INVALID_INPUT` naming the
 * upstream and field when one is missing), then listens.
 * @example
 * const gateway = await startGateway(await loadGatewayConfig('gateway.json'))
 * gateway.endpoints[0].url   // 'http://127.0.0.1:8090/mcp/github'
 */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  const redactor: Redactor = createRedactor()
  const logger = createLogger({ level: config.logLevel, redactor, ...(options.logWrite ? { write: options.logWrite } : {}), ...(options.clock ? { clock: options.clock } : {}) })
  // Audit events are written whatever the log level: they are the record of every decision, not diagnostics.
  const auditLog = createLogger({ level: 'info', redactor, ...(options.logWrite ? { write: options.logWrite } : {}), ...(options.clock ? { clock: options.clock } : {}) })
  const audit = options.audit ?? ((event: AuditEvent) => auditLog.info({ audit: event }, 'audit'))

  const policy = await loadPolicyEngine({ dir: config.policyDir, logger, ...(options.clock ? { clock: options.clock } : {}) })
  const verifier: Verifier = createVerifier({
    trustedIssuers: config.agentid.trustedIssuers,
    statusTtlMs: config.agentid.statusTtlMs,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  })
  const stores: SecretStore[] = [envSecretStore(options.env ?? process.env)]
  if (config.secretFile) stores.push(fileSecretStore(config.secretFile))
  stores.push(...(options.secretStores ?? []))
  const secrets = createSecretResolver(stores)

  // The gateway's own agent identity (chain of custody), read now: its key is registered for redaction.
  const identity = config.lineage.agent === undefined ? undefined : await gatewayIdentity(config.lineage.agent, (ref, onSecret) => secrets.resolve(ref, onSecret), redactor)

  const upstreams: Upstream[] = []
  const connecting = await Promise.allSettled(config.upstreams.map((u) => connectUpstream(u, { secrets, redactor, logger })))
  for (const r of connecting) if (r.status === 'fulfilled') upstreams.push(r.value)
  const failed = connecting.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.all(upstreams.map((u) => u.close()))
    throw failed.reason
  }

  const routes = new Map<string, Route>()
  const streams = new Set<ServerResponse>()
  const http: HttpServer = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    const route = routes.get(path)
    if (route) {
      if (req.method === 'GET') {
        // A standalone SSE stream: open until the agent leaves. Ended at once on stop.
        streams.add(res)
        res.once('close', () => streams.delete(res))
      }
      route.handler(req, res).catch((error: unknown) => {
        logger.error({ path, err: error }, 'request failed')
        json(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } })
      })
      return
    }
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return json(res, 200, { status: 'ok', upstreams: upstreams.map((u) => u.id) })
    json(res, 404, { error: { code: 'ERR_NOT_FOUND', message: 'not found' } })
  })
  http.keepAliveTimeout = 65_000

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(config.listen.port, config.listen.host, () => {
        http.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    await Promise.all(upstreams.map((u) => u.close()))
    throw new AgentIdError('ERR_UNAVAILABLE', `cannot listen on ${config.listen.host}:${config.listen.port}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error })
  }
  const port = (http.address() as AddressInfo).port
  const host = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host
  const base = config.publicUrl ?? `http://${host}:${port}`

  const endpoints: GatewayEndpoint[] = []
  for (const upstream of upstreams) {
    const url = `${base}/mcp/${upstream.id}`
    const guard: McpGuard = createMcpGuard({
      verifier,
      policy,
      serverId: upstream.id,
      resource: url,
      authorizationServers: config.agentid.issuerUrls,
      audit,
      ...(options.clock ? { clock: options.clock } : {}),
      requireLineage: config.lineage.required,
      ...(identity === undefined ? {} : { lineageAgent: { did: identity.signer.did, signer: identity.signer, credential: identity.credential } }),
    })
    const named = config.upstreams.find((u) => u.id === upstream.id)?.lineage
    const hop = identity === undefined ? undefined : { ...identity, serverId: named?.serverId ?? upstream.id, callee: named?.agent }
    const forwarding = { upstream, redactor, logger, ...(hop === undefined ? {} : { lineage: hop }) }
    const handler = guard.nodeHandler({ createServer: () => createForwardingServer(forwarding), directRequest: directToolCalls(forwarding), enableJsonResponse: !config.sseResponses })
    routes.set(new URL(url).pathname, { handler })
    routes.set(guard.metadataPath, { handler })
    endpoints.push(Object.freeze({ id: upstream.id, url, metadataUrl: guard.metadataUrl }))
  }

  let stopping: Promise<void> | undefined
  return {
    url: base,
    endpoints,
    logger,
    policy,
    reloadPolicies: () => policy.reload(),
    stop: (graceMs = 5_000) =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => http.close(() => resolve()))
        // The agents' SSE streams end now; calls in flight may finish (up to graceMs), and each connection
        // is closed as soon as it is idle.
        for (const res of streams) res.socket?.destroy()
        http.closeIdleConnections()
        const sweep = setInterval(() => http.closeIdleConnections(), 50)
        const timer = setTimeout(() => http.closeAllConnections(), graceMs)
        await closed
        clearInterval(sweep)
        clearTimeout(timer)
        await Promise.all(upstreams.map((u) => u.close()))
      })()),
  }
}

/** The gateway's agent identity from its config: the Ed25519 private JWK (JSON) and the identity credential naming its DID. */
async function gatewayIdentity(
  agent: { privateJwk: ConfigValue; credential: ConfigValue },
  resolve: (ref: Exclude<ConfigValue, string>, onSecret?: (secret: string) => void) => Promise<string>,
  redactor: Redactor,
): Promise<{ signer: Signer; credential: string }> {
  const read = (value: ConfigValue, secret: boolean) => (typeof value === 'string' ? value : resolve(value, secret ? (s) => redactor.add(s) : undefined))
  const invalid = (field: string, message: string) => new AgentIdError('ERR_INVALID_INPUT', `gateway config: lineage.agent.${field}: ${message}`, { details: { field: `lineage.agent.${field}` } })
  let signer: Signer
  try {
    signer = signerFromJwk(JSON.parse(await read(agent.privateJwk, true)) as Ed25519PrivateJwk)
  } catch (cause) {
    if (cause instanceof AgentIdError && cause.code === 'ERR_UNAVAILABLE') throw cause
    throw invalid('privateJwk', 'must be an Ed25519 private JWK (JSON)')
  }
  const credential = (await read(agent.credential, false)).trim()
  let subject: unknown
  try {
    subject = JSON.parse(Buffer.from(credential.split('.')[1] ?? '', 'base64url').toString('utf8')).sub
  } catch {
    throw invalid('credential', 'must be a compact JWT (the identity credential of the gateway\'s agent)')
  }
  if (subject !== signer.did) throw invalid('credential', 'names another agent than privateJwk\'s')
  return { signer, credential }
}
