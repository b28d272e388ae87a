import { AgentIdError, parseTrustDomain } from '@agentid/core'
import { attestationFromEnv, type AttestationConfigInput } from './attestation/index.js'
import { trustedIdpsFromEnv, type TrustedIdpConfig } from './oauth/trusted-idps.js'
import { parseWitnesses, type WitnessConfig } from './log/log.js'
import { webhookFromEnv, type WebhookConfig } from './webhooks/config.js'

/** How the issuer runs, from the environment (and CLI flags that override it). */
export interface IssuerConfig {
  dataDir: string
  dbFile: string | undefined
  host: string
  port: number
  /** Public base URL; undefined: http://host:port of the listening socket. */
  baseUrl: string | undefined
  didWebDomain: string | undefined
  adminKey: string | undefined
  logLevel: string
  /** Identity providers whose users' tokens are exchanged (RFC 8693); empty: no token exchange. */
  trustedIdps?: TrustedIdpConfig[]
  /** SPIFFE trust domain of the agents' SPIFFE IDs and SVIDs; undefined: no SPIFFE IDs, no SVIDs. */
  trustDomain?: string | undefined
  /** Trust anchors of attestation evidence (`AGENTID_ATTESTATION`); undefined: evidence is refused. */
  attestation?: AttestationConfigInput | undefined
  /** Redis for the event bus between issuer instances (AGENTID_REDIS_URL); undefined: in-process only. */
  redisUrl?: string | undefined
  /**
   * The Redis pub/sub channel of the event bus (AGENTID_REDIS_CHANNEL: 1–128 printable ASCII characters,
   * no space; default `agentid:events`): issuer groups of different databases sharing one Redis each use their own.
   */
  redisChannel?: string | undefined
  /** PostgreSQL instead of the SQLite file (AGENTID_DATABASE_URL, postgres://…); undefined: SQLite. */
  databaseUrl?: string | undefined
  /** How often the event stream reads the database for events of other processes, ms (AGENTID_EVENTS_POLL_MS, default 1,000). */
  eventsPollMs?: number | undefined
  /** Most open event streams per client address (AGENTID_EVENTS_MAX_PER_CLIENT, 1–1,024, default 16). */
  eventsMaxPerClient?: number | undefined
  /** Witnesses the issuer log submits its checkpoints to (`AGENTID_LOG_WITNESSES`, JSON `[{ url, vkey }]`). */
  logWitnesses?: WitnessConfig[]
  /** The operator console's folder (AGENTID_CONSOLE_DIR; `off`: null, not served; default: the built @agentid/console). */
  consoleDir?: string | null | undefined
  /** Console session idle timeout, seconds (AGENTID_CONSOLE_IDLE_SEC, default 900). */
  consoleIdleSec?: number | undefined
  /**
   * `AGENTID_LOG_SEQUENCER=off`: for measuring the log's cost only (bench/tlog.mjs). Events still get
   * their log index in their own transaction, but no tree, tiles or checkpoints are made or served.
   */
  logSequencer?: boolean
  /**
   * The approval webhook (AGENTID_APPROVALS_WEBHOOK_URL with AGENTID_APPROVALS_WEBHOOK_SECRET, a
   * Standard Webhooks `whsec_` secret, or AGENTID_APPROVALS_WEBHOOK_SECRET_FILE, a file holding it; tunables `…_RETRY_MS`, `…_GIVE_UP_SEC`, `…_TIMEOUT_MS`); undefined: none.
   */
  approvalsWebhook?: WebhookConfig | undefined
}

/**
 * Reads `AGENTID_DATA_DIR` (default `./.agentid`), `AGENTID_DB`, `AGENTID_HOST` (127.0.0.1),
 * `AGENTID_PORT` (8080; 0 picks a free port), `AGENTID_BASE_URL` (default http://host:port as bound),
 * `AGENTID_DID_WEB` (a domain: run as did:web), `AGENTID_ADMIN_KEY`, `AGENTID_LOG_LEVEL` (info),
 * `AGENTID_TRUSTED_IDPS` (a JSON array of `{ issuer, jwks_uri | jwks, audience? }`, inline or the
 * path of a file holding it), `AGENTID_TRUST_DOMAIN` (a SPIFFE trust domain, e.g. `agents.example.com`:
 * agents get SPIFFE IDs and the issuer serves SVIDs), `AGENTID_ATTESTATION` (attestation trust anchors, JSON
 * inline or a file path: see `attestation/index.ts`), `AGENTID_REDIS_URL` and `AGENTID_REDIS_CHANNEL` (the
 * event bus), `AGENTID_EVENTS_POLL_MS` and `AGENTID_EVENTS_MAX_PER_CLIENT` (the event stream),
 * `AGENTID_APPROVALS_WEBHOOK_URL` and `AGENTID_APPROVALS_WEBHOOK_SECRET` or `…_SECRET_FILE` (signed approval
 * webhooks: see `webhooks/config.ts`; a URL without a valid secret stops the start).
 */
export function configFromEnv(env: NodeJS.ProcessEnv, overrides: Partial<IssuerConfig> = {}): IssuerConfig {
  const host = overrides.host ?? env.AGENTID_HOST ?? '127.0.0.1'
  const portText = overrides.port !== undefined ? String(overrides.port) : env.AGENTID_PORT ?? '8080'
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_PORT must be a port number')
  const port = Number(portText)
  const baseUrl = (overrides.baseUrl ?? env.AGENTID_BASE_URL)?.replace(/\/+$/, '')
  if (baseUrl !== undefined && !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(baseUrl)) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_BASE_URL must be an http(s) URL')
  return {
    dataDir: overrides.dataDir ?? env.AGENTID_DATA_DIR ?? '.agentid',
    dbFile: overrides.dbFile ?? env.AGENTID_DB,
    host,
    port,
    baseUrl,
    didWebDomain: overrides.didWebDomain ?? (env.AGENTID_DID_WEB || undefined),
    adminKey: overrides.adminKey ?? (env.AGENTID_ADMIN_KEY || undefined),
    logLevel: overrides.logLevel ?? env.AGENTID_LOG_LEVEL ?? 'info',
    trustedIdps: overrides.trustedIdps ?? trustedIdpsFromEnv(env.AGENTID_TRUSTED_IDPS),
    logWitnesses: overrides.logWitnesses ?? parseWitnesses(env.AGENTID_LOG_WITNESSES),
    logSequencer: overrides.logSequencer ?? logSequencerFrom(env.AGENTID_LOG_SEQUENCER),
    attestation: overrides.attestation ?? attestationFromEnv(env.AGENTID_ATTESTATION),
    trustDomain: overrides.trustDomain ?? (env.AGENTID_TRUST_DOMAIN ? parseTrustDomain(env.AGENTID_TRUST_DOMAIN, { code: 'ERR_INVALID_INPUT' }) : undefined),
    redisUrl: overrides.redisUrl ?? redisUrlFrom(env.AGENTID_REDIS_URL),
    redisChannel: overrides.redisChannel ?? redisChannelFrom(env.AGENTID_REDIS_CHANNEL),
    databaseUrl: overrides.databaseUrl ?? databaseUrlFrom(env.AGENTID_DATABASE_URL),
    eventsPollMs: overrides.eventsPollMs ?? pollMsFrom(env.AGENTID_EVENTS_POLL_MS),
    eventsMaxPerClient: overrides.eventsMaxPerClient ?? maxPerClientFrom(env.AGENTID_EVENTS_MAX_PER_CLIENT),
    consoleDir: overrides.consoleDir !== undefined ? overrides.consoleDir : env.AGENTID_CONSOLE_DIR === 'off' ? null : (env.AGENTID_CONSOLE_DIR || undefined),
    consoleIdleSec: overrides.consoleIdleSec ?? consoleIdleFrom(env.AGENTID_CONSOLE_IDLE_SEC),
    approvalsWebhook: overrides.approvalsWebhook ?? webhookFromEnv(env),
  }
}

function databaseUrlFrom(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^postgres(ql)?:\/\/[^\s]+$/.test(value)) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_DATABASE_URL must be a postgres:// or postgresql:// URL')
  return value
}

function redisUrlFrom(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^rediss?:\/\/[^\s]+$/.test(value)) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_REDIS_URL must be a redis:// or rediss:// URL')
  return value
}

function redisChannelFrom(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_REDIS_CHANNEL must be 1 to 128 printable ASCII characters without spaces', { details: { field: 'AGENTID_REDIS_CHANNEL' } })
  return value
}

function maxPerClientFrom(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 1024) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_EVENTS_MAX_PER_CLIENT must be a number of streams from 1 to 1,024', { details: { field: 'AGENTID_EVENTS_MAX_PER_CLIENT' } })
  return Number(value)
}

function pollMsFrom(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^[0-9]{2,7}$/.test(value) || Number(value) < 10) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_EVENTS_POLL_MS must be a number of milliseconds from 10 to 9,999,999')
  return Number(value)
}

function consoleIdleFrom(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined
  if (!/^[0-9]{2,5}$/.test(value) || Number(value) < 10 || Number(value) > 86_400) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_CONSOLE_IDLE_SEC must be a number of seconds from 10 to 86,400')
  return Number(value)
}

function logSequencerFrom(text: string | undefined): boolean {
  if (text === undefined || text === '' || text === 'on') return true
  if (text === 'off') return false
  throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_LOG_SEQUENCER must be on or off')
}
