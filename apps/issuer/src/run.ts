import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { IssuerConfig } from './config.js'
import { IssuerService } from './domain/service.js'
import { buildServer } from './http/server.js'
import { IssuerLog } from './log/log.js'
import { loadMasterSecret } from './secret.js'
import { createRedisEventBus } from './events/redis-bus.js'

export interface RunningIssuer {
  service: IssuerService
  server: FastifyInstance
  /** The URL it listens on. */
  url: string
  /** The admin key when it was generated at this start (shown once), else null. */
  generatedAdminKey: string | null
  /** Stops taking connections, finishes in-flight requests, then closes the database. */
  stop(): Promise<void>
}

/**
 * Opens the issuer's state and starts its HTTP API.
 * @example
 * const issuer = await startIssuer(configFromEnv(process.env))
 */
export async function startIssuer(config: IssuerConfig): Promise<RunningIssuer> {
  // Status-list URLs embed the base URL, so the port must be known before the first credential.
  const port = config.port === 0 ? await freePort(config.host) : config.port
  const baseUrl = config.baseUrl ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`
  // Several instances: revocation events announced to every instance's stream through Redis pub/sub.
  // Its failures are logged at most once a minute (a down Redis fails every reconnection).
  let busErrorLoggedAt = 0
  const busError = (e: unknown) => {
    if (Date.now() - busErrorLoggedAt < 60_000) return
    busErrorLoggedAt = Date.now()
    console.error(`agentid issuer: event bus (Redis) failing, revocation events reach other instances at their next database poll: ${(e as Error)?.message ?? String(e)}`)
  }
  const eventBus = config.redisUrl ? createRedisEventBus({ url: config.redisUrl, onError: busError, ...(config.redisChannel ? { channel: config.redisChannel } : {}) }) : undefined
  const service = await IssuerService.open({
    ...(eventBus ? { eventBus } : {}),
    dataDir: config.dataDir,
    baseUrl,
    ...(config.dbFile ? { dbFile: config.dbFile } : {}),
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
    ...(config.didWebDomain ? { didWebDomain: config.didWebDomain } : {}),
    ...(config.trustedIdps ? { trustedIdps: config.trustedIdps } : {}),
    ...(config.trustDomain ? { trustDomain: config.trustDomain } : {}),
    ...(config.attestation ? { attestation: config.attestation } : {}),
    ...(config.approvalsWebhook ? { approvals: { webhook: config.approvalsWebhook } } : {}),
  })
  let server: FastifyInstance | undefined
  let log: IssuerLog | undefined
  try {
    const { generated } = await service.ensureAdminKey(config.adminKey)
    // The issuer log (apps/issuer/src/log): its key sealed with the master secret, like the issuer's keys.
    // On PostgreSQL every instance runs it: one sequences at a time, the others follow (log/log.ts).
    if (config.logSequencer !== false) {
      log = await IssuerLog.open({ storage: service.storage, secret: loadMasterSecret({ dataDir: config.dataDir, mustExist: true }).key, baseUrl, witnesses: config.logWitnesses ?? [] })
      log.start()
    }
    const issuerLog = log
    const consoleOptions = { ...(config.consoleDir !== undefined ? { dir: config.consoleDir } : {}), ...(config.consoleIdleSec !== undefined ? { idleSec: config.consoleIdleSec } : {}) }
    server = buildServer(service, { logger: config.logLevel === 'silent' ? false : { level: config.logLevel }, ...(log ? { log } : {}), console: consoleOptions, events: { ...(config.eventsPollMs ? { pollMs: config.eventsPollMs } : {}), ...(config.eventsMaxPerClient ? { maxConnectionsPerClient: config.eventsMaxPerClient } : {}) } })
    const url = await server.listen({ host: config.host, port })
    let stopping: Promise<void> | undefined
    const srv = server
    return {
      service,
      server: srv,
      url,
      generatedAdminKey: generated,
      // The log integrates what is committed on stop: it goes before the database closes.
      stop: () => (stopping ??= (async () => {
        try {
          await srv.close()
          await issuerLog?.stop()
        } finally {
          await service.close()
          await eventBus?.close()
        }
      })()),
    }
  } catch (error) {
    await log?.stop()
    await server?.close()
    await service.close()
    await eventBus?.close()
    throw error
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}
