// One connection per upstream MCP server (SDK Client over stdio or Streamable HTTP), its credentials
// resolved from the secret stores when it connects, and reconnected on the next call after it closes.
import { PassThrough } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ServerCapabilities } from '@modelcontextprotocol/sdk/types.js'
import { AgentIdError } from '@agentid/core'
import type { ConfigValue, UpstreamConfig } from './config.js'
import type { Logger } from './logger.js'
import type { Redactor } from './redact.js'
import { createNodeFetch } from './node-fetch.js'
import type { HttpLink } from './raw-call.js'
import type { SecretResolver } from './secrets.js'
import { onStderrLines } from './stderr-lines.js'

/** A connected upstream MCP server. */
export interface Upstream {
  readonly id: string
  readonly config: UpstreamConfig
  /** The connected SDK client; connects again (secrets read again) when the last connection closed. */
  client(): Promise<Client>
  /** Closes `client` if it is still the current connection, so that the next call connects again. */
  reset(client: Client): Promise<void>
  /** For an HTTP upstream, what a raw request over `client`'s connection needs (see rawRequest); null for stdio. Optional: without it every call goes through the SDK Client. */
  httpLink?(client: Client): HttpLink | null
  /** What the upstream said it supports when it last connected. */
  readonly capabilities: ServerCapabilities | undefined
  close(): Promise<void>
}

export interface UpstreamDeps {
  secrets: SecretResolver
  redactor: Redactor
  logger: Logger
  /** Name and version the gateway announces to upstreams. */
  clientInfo?: { name: string; version: string }
}

/** Resolves a map of config values; a missing secret names the upstream and the field, never a value. */
async function resolveValues(upstream: UpstreamConfig, field: string, values: Readonly<Record<string, ConfigValue>>, deps: UpstreamDeps): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(values)) {
    if (typeof value === 'string') {
      out[name] = value
      continue
    }
    try {
      out[name] = await deps.secrets.resolve(value, (secret) => deps.redactor.add(secret))
    } catch (error) {
      const e = error as AgentIdError
      const code = e instanceof AgentIdError ? e.code : 'ERR_UNAVAILABLE'
      throw new AgentIdError(code, `upstream "${upstream.id}": ${field}.${name}: ${deps.redactor.redact(e.message)}`, {
        cause: error,
        details: { ...(e instanceof AgentIdError ? e.details : {}), upstream: upstream.id, field: `${field}.${name}` },
      })
    }
  }
  return out
}

async function makeTransport(config: UpstreamConfig, deps: UpstreamDeps): Promise<{ transport: Transport; dispose: () => void; link?: Omit<HttpLink, 'client'> }> {
  if (config.transport === 'stdio') {
    const env = await resolveValues(config, 'env', config.env, deps)
    // Only the SDK's safe default variables (PATH, HOME, ...) plus `env`: the gateway's own environment,
    // where other upstreams' secrets may live, is not passed on.
    const transport = new StdioClientTransport({ command: config.command, args: [...config.args], env, cwd: config.cwd, stderr: 'pipe' })
    const stderr = transport.stderr
    if (stderr instanceof PassThrough) {
      // Redacted before it is cut: a cut through a secret would leave its first characters unmatched.
      onStderrLines(stderr, (line, cut) => deps.logger.warn({ upstream: config.id, stderr: deps.redactor.redact(line).slice(0, 4096), ...(cut ? { cut: true } : {}) }, 'upstream stderr'))
    }
    return { transport, dispose: () => undefined }
  }
  const headers = await resolveValues(config, 'headers', config.headers, deps)
  const fetch = createNodeFetch()
  const transport = new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers }, fetch })
  return { transport, dispose: () => fetch.destroy(), link: { url: config.url, headers: Object.freeze({ ...headers }), transport, fetch } }
}

/**
 * Connects to an upstream (stdio: starts its process; http: initializes an MCP session) and returns a handle.
 * Throws `AgentIdError`: `ERR_UNAVAILABLE` (`details.reason` `'secret-unavailable'` with `upstream`,
 * `field` and `secret`; or `'upstream-unavailable'` when it cannot be reached), `ERR_INVALID_INPUT` (secret too short).
 * @example
 * const github = await connectUpstream(config.upstreams[0], { secrets, redactor, logger })
 * const { tools } = await (await github.client()).listTools()
 */
export async function connectUpstream(config: UpstreamConfig, deps: UpstreamDeps): Promise<Upstream> {
  let current: Promise<Client> | null = null
  /** The client `current` resolved to. */
  let live: Client | null = null
  let capabilities: ServerCapabilities | undefined
  let closed = false
  const links = new WeakMap<Client, HttpLink>()

  const connect = async (): Promise<Client> => {
    const { transport, dispose, link } = await makeTransport(config, deps)
    const client = new Client(deps.clientInfo ?? { name: 'agentid-gateway', version: '0.1.0' }, { capabilities: {} })
    if (link !== undefined) links.set(client, Object.freeze({ ...link, client }))
    client.onerror = (error) => deps.logger.warn({ upstream: config.id, err: error }, 'upstream transport error')
    client.onclose = () => {
      dispose()
      if (live !== client) return
      if (!closed) deps.logger.warn({ upstream: config.id }, 'upstream connection closed; reconnecting on the next call')
      live = null
      current = null
    }
    try {
      await client.connect(transport)
    } catch (error) {
      await client.close().catch(() => undefined)
      throw new AgentIdError('ERR_UNAVAILABLE', `upstream "${config.id}": cannot connect: ${deps.redactor.redact((error as Error).message ?? String(error))}`, {
        details: { reason: 'upstream-unavailable', upstream: config.id },
      })
    }
    live = client
    capabilities = client.getServerCapabilities()
    deps.logger.info({ upstream: config.id, transport: config.transport, server: client.getServerVersion() }, 'upstream connected')
    return client
  }

  const client = (): Promise<Client> => {
    if (closed) return Promise.reject(new AgentIdError('ERR_UNAVAILABLE', `upstream "${config.id}" is closed`, { details: { reason: 'upstream-unavailable', upstream: config.id } }))
    if (!current) {
      const attempt = connect()
      current = attempt
      attempt.catch(() => {
        if (current === attempt) current = null
      })
    }
    return current
  }

  await client()
  return {
    id: config.id,
    config,
    client,
    httpLink: (c) => links.get(c) ?? null,
    async reset(stale) {
      if (live !== stale) return
      live = null
      current = null
      await stale.close().catch(() => undefined)
    },
    get capabilities() {
      return capabilities
    },
    async close() {
      closed = true
      const c = current
      current = null
      if (c) await (await c.catch(() => null))?.close().catch(() => undefined)
    },
  }
}
