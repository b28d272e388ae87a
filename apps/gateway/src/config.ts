// The gateway's configuration file: parsed strictly (unknown keys refused), every error naming its field.
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { AgentIdError } from '@agentid/core'
import { z } from 'zod'

/**
 * A value that is either given in the config as is, or read from a secret store when the gateway
 * connects to the upstream. `secret` is `<store>:<name>` (`env:GITHUB_TOKEN`, `file:github`, or the
 * scheme of a store passed to `startGateway`);
 * `template`, when given, must contain `{secret}` once and is what is sent (`"Bearer {secret}"`).
 */
export type ConfigValue = string | SecretRef

/** A reference to a secret, resolved at connect time (see {@link ConfigValue}). */
export interface SecretRef {
  readonly secret: string
  readonly template?: string
}

/** An MCP server the gateway starts as a child process and talks to over stdin/stdout. */
export interface StdioUpstreamConfig {
  readonly id: string
  readonly transport: 'stdio'
  readonly command: string
  readonly args: readonly string[]
  readonly env: Readonly<Record<string, ConfigValue>>
  /** Working directory of the child; default: the config file's directory. */
  readonly cwd: string
  readonly lineage?: UpstreamLineageConfig
}

/** An MCP server the gateway reaches over Streamable HTTP. */
export interface HttpUpstreamConfig {
  readonly id: string
  readonly transport: 'http'
  readonly url: string
  readonly headers: Readonly<Record<string, ConfigValue>>
  readonly lineage?: UpstreamLineageConfig
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig

/** How the gateway names an upstream in its own lineage hop (see the README, "Chain of custody"). */
export interface UpstreamLineageConfig {
  /** The upstream's server id in hop targets (`mcp://<serverId>/<tool>`); default the upstream's `id`. */
  readonly serverId: string
  /** The upstream's own agent DID, when it has one: the callee of the gateway's hop (else the lineage ends there). */
  readonly agent: string | undefined
}

/** The gateway's chain-of-custody settings. */
export interface GatewayLineageConfig {
  /** Refuse calls without a lineage (`requireLineage` of each endpoint's guard). */
  readonly required: boolean
  /**
   * The gateway's own agent identity: its private JWK (JSON, an Ed25519 key; a secret reference) and its
   * identity credential (compact JWT). With it, hops to the gateway must name it as callee, the gateway
   * appends its own hop when it forwards a call and returns signed receipts; without it, it verifies and
   * forwards the lineage unchanged.
   */
  readonly agent: { readonly privateJwk: ConfigValue; readonly credential: ConfigValue } | undefined
}

/** The gateway's configuration, validated, with paths made absolute. */
export interface GatewayConfig {
  readonly listen: { readonly host: string; readonly port: number }
  /** Public base URL of the gateway (no trailing slash); default `http://host:port`. Endpoint URLs (token audiences) derive from it. */
  readonly publicUrl: string | undefined
  readonly agentid: {
    /** agentid issuer base URL(s), named in each endpoint's RFC 9728 metadata. */
    readonly issuerUrls: readonly string[]
    /** DIDs of the issuers whose tokens are accepted. */
    readonly trustedIssuers: readonly string[]
    /** How long a fetched status list is reused (the longest a revoked agent keeps access). */
    readonly statusTtlMs: number
  }
  /** Folder of `.cedar` policies (absolute). */
  readonly policyDir: string
  /** File secret store: a directory of files, or a JSON file of `{ name: value }` (mode 0600). */
  readonly secretFile: string | undefined
  readonly logLevel: LogLevelName
  /**
   * Answer agents' POSTs as SSE streams (true) or one JSON body (false, the default: cheaper per call).
   * Only SSE relays an upstream's progress notifications during a call.
   */
  readonly sseResponses: boolean
  /** Chain of custody (lineage) settings. */
  readonly lineage: GatewayLineageConfig
  readonly upstreams: readonly UpstreamConfig[]
}

export type LogLevelName = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** Upstream ids: used in endpoint paths (`/mcp/<id>`) and as the `McpServer` entity id in policies. */
export const UPSTREAM_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/
/** `<scheme>:<name>`: `env` and `file` ship with the gateway; other schemes name stores given to `startGateway`. */
const SECRET_NAME = /^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9_.\/-]{1,256}$/
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Headers the gateway's MCP transport owns, or that would carry the agent's identity: never configurable. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'connection', 'transfer-encoding', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'dpop'])

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === ''
  } catch {
    return false
  }
}, 'must be an http(s) URL without credentials')

const secretRef = z.strictObject({
  secret: z.string().regex(SECRET_NAME, 'must be "<store>:<name>", e.g. "env:NAME" or "file:name"'),
  template: z.string().refine((t) => t.split('{secret}').length === 2, 'must contain "{secret}" exactly once').optional(),
})
const configValue = z.union([z.string(), secretRef], { error: 'must be a string or { "secret": "env:NAME" | "file:name", "template"?: "...{secret}..." }' })

const upstreamId = z.string().regex(UPSTREAM_ID, 'must match ^[a-z0-9][a-z0-9_-]{0,62}$')

const upstreamLineage = z.strictObject({
  serverId: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1 to 128 characters of [A-Za-z0-9._-]').optional(),
  agent: z.string().regex(/^did:key:z[1-9A-HJ-NP-Za-km-z]+$/, 'must be a did:key').optional(),
}).optional()

const stdioUpstream = z.strictObject({
  id: upstreamId,
  transport: z.literal('stdio'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), configValue).default({}),
  cwd: z.string().min(1).optional(),
  lineage: upstreamLineage,
})

const httpUpstream = z.strictObject({
  id: upstreamId,
  transport: z.literal('http'),
  url: httpUrl,
  headers: z
    .record(
      z.string().regex(HEADER_NAME, 'must be an HTTP header name').refine((h) => !RESERVED_HEADERS.has(h.toLowerCase()), 'is set by the gateway itself'),
      configValue,
    )
    .default({}),
  lineage: upstreamLineage,
})

const schema = z.strictObject({
  listen: z.strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535),
  }),
  publicUrl: httpUrl.optional(),
  agentid: z.strictObject({
    issuerUrls: z.array(httpUrl).min(1),
    trustedIssuers: z.array(z.string().startsWith('did:')).min(1),
    statusTtlMs: z.number().int().min(0).max(3_600_000).default(60_000),
  }),
  policyDir: z.string().min(1),
  secretStores: z.strictObject({ file: z.strictObject({ path: z.string().min(1) }).optional() }).default({}),
  logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  sseResponses: z.boolean().default(false),
  lineage: z.strictObject({
    required: z.boolean().default(false),
    agent: z.strictObject({ privateJwk: configValue, credential: configValue }).optional(),
  }).default({ required: false }),
  upstreams: z.array(z.discriminatedUnion('transport', [stdioUpstream, httpUpstream], { error: 'transport must be "stdio" or "http"' })).min(1),
})

/**
 * Validates a parsed configuration object. `baseDir` makes relative paths (policy folder, secret file,
 * stdio `cwd`) absolute. Throws `AgentIdError` `ERR_INVALID_INPUT` whose message and `details.field`
 * name the first offending field (`details.issues` lists them all).
 * @example
 * const config = parseGatewayConfig(JSON.parse(text), '/etc/agentid-gateway')
 */
export function parseGatewayConfig(input: unknown, baseDir: string): GatewayConfig {
  const result = schema.safeParse(input)
  if (!result.success) {
    const issues = result.error.issues.map((i) => {
      const path = i.path.map(String).join('.')
      const keys = i.code === 'unrecognized_keys' ? i.keys.map((k) => (path ? `${path}.${k}` : k)) : null
      return { field: keys ? keys.join(', ') : path || '(root)', message: keys ? 'unknown field' : i.message }
    })
    const first = issues[0]!
    throw new AgentIdError('ERR_INVALID_INPUT', `gateway config: ${first.field}: ${first.message}`, { details: { field: first.field, issues } })
  }
  const c = result.data
  const seen = new Set<string>()
  c.upstreams.forEach((u, i) => {
    if (seen.has(u.id)) throw new AgentIdError('ERR_INVALID_INPUT', `gateway config: upstreams.${i}.id: duplicate id "${u.id}"`, { details: { field: `upstreams.${i}.id` } })
    seen.add(u.id)
    const values = u.transport === 'stdio' ? u.env : u.headers
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === 'object' && value.secret.startsWith('file:') && !c.secretStores.file) {
        const field = `upstreams.${i}.${u.transport === 'stdio' ? 'env' : 'headers'}.${name}`
        throw new AgentIdError('ERR_INVALID_INPUT', `gateway config: ${field}: "${value.secret}" needs secretStores.file`, { details: { field } })
      }
    }
  })
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p))
  return {
    listen: c.listen,
    publicUrl: c.publicUrl?.replace(/\/+$/, ''),
    agentid: c.agentid,
    policyDir: abs(c.policyDir),
    secretFile: c.secretStores.file ? abs(c.secretStores.file.path) : undefined,
    logLevel: c.logLevel,
    sseResponses: c.sseResponses,
    lineage: { required: c.lineage.required, agent: c.lineage.agent },
    upstreams: c.upstreams.map((u): UpstreamConfig => {
      const lineage = { lineage: { serverId: u.lineage?.serverId ?? u.id, agent: u.lineage?.agent } }
      return u.transport === 'stdio'
        ? { id: u.id, transport: 'stdio', command: u.command, args: u.args, env: u.env, cwd: abs(u.cwd ?? '.'), ...lineage }
        : { id: u.id, transport: 'http', url: u.url, headers: u.headers, ...lineage }
    }),
  }
}

/**
 * Reads and validates a JSON configuration file; relative paths in it are relative to the file.
 * Throws `ERR_INVALID_INPUT` (unreadable file: `details.field` is `(file)`; not JSON: `(json)`).
 * @example
 * const config = await loadGatewayConfig('/etc/agentid-gateway/gateway.json')
 */
export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', `gateway config: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause, details: { field: '(file)' } })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', `gateway config: ${file} is not JSON: ${(cause as Error).message}`, { cause, details: { field: '(json)' } })
  }
  return parseGatewayConfig(json, dirname(resolve(file)))
}
