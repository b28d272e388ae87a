import { existsSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { AgentIdError } from '@agentid/core'
import { getWebhookEvent, IssuerService, listWebhookEvents, redeliverWebhookEvent, type Principal, type WebhookAdminDeps } from '@agentid/issuer'
import type { IssuerClient } from './issuer-client.js'

export interface LocalOptions {
  /** The issuer's SQLite file; must exist (a typo must not create a new issuer). */
  dbFile: string
  /** Folder of the master secret; default the database file's folder. */
  dataDir?: string
  /** The issuer's public base URL (status-list URLs). */
  baseUrl: string
  /** Run as this did:web domain; default: whatever the database holds. */
  didWebDomain?: string
  /** AGENTID_SECRET is set, so no secret file is needed. */
  secretInEnv: boolean
}

const CLI: Principal = { kind: 'cli' }
// The file name loadMasterSecret uses inside the data directory.
const SECRET_FILE = 'secret.key'

/** Opens an issuer database directly; commands run as the `cli` principal through IssuerService. */
export async function openLocal(options: LocalOptions): Promise<IssuerClient> {
  return localClient(await openIssuerService(options))
}

/**
 * Opens the IssuerService of an existing database, refusing to create one. A did:web issuer's
 * domain is taken from the database when `didWebDomain` is not given.
 */
export async function openIssuerService(options: LocalOptions): Promise<IssuerService> {
  const dbFile = resolve(options.dbFile)
  if (!existsSync(dbFile) || !statSync(dbFile).isFile()) {
    throw new AgentIdError('ERR_NOT_FOUND', `no issuer database at ${dbFile} (\`agentid serve --db ${options.dbFile}\` creates one)`)
  }
  const dataDir = resolve(options.dataDir ?? dirname(dbFile))
  if (!options.secretInEnv && !existsSync(join(dataDir, SECRET_FILE))) {
    // Without this check IssuerService would generate a new secret that cannot open the stored key.
    throw new AgentIdError('ERR_NOT_FOUND', `no master secret at ${join(dataDir, SECRET_FILE)}; pass the issuer's --data-dir or set AGENTID_SECRET`)
  }
  const open = (didWebDomain: string | undefined) =>
    IssuerService.open({ dataDir, dbFile, baseUrl: options.baseUrl, ...(didWebDomain ? { didWebDomain } : {}) })
  let service: IssuerService
  try {
    service = await open(options.didWebDomain)
  } catch (error) {
    // A did:web issuer's database opened without its domain: take the domain from the stored DID.
    const stored = error instanceof AgentIdError && error.details.reason === 'issuer_mismatch' ? error.details.stored : undefined
    if (options.didWebDomain !== undefined || typeof stored !== 'string' || !/^did:web:[^:]+$/.test(stored)) throw error
    service = await open(decodeURIComponent(stored.slice('did:web:'.length)))
  }
  return service
}

function localClient(service: IssuerService): IssuerClient {
  const listPrefix = `${service.engine.baseUrl}/v1/status-lists/`
  // The database's outbox; no sender here (the CLI is not the issuer that delivers): redeliver is refused.
  const webhooks: WebhookAdminDeps = { storage: service.storage, sender: service.approvals.webhooks }
  return {
    issuer: async () => service.issuer,
    didDocument: async () => service.engine.didDocument() as unknown as Record<string, unknown> | null,
    addOrchestrator: async (name) => service.addOrchestrator(CLI, name),
    listOrchestrators: async () => service.listOrchestrators(CLI),
    removeOrchestrator: async (idOrName) => service.removeOrchestrator(CLI, idOrName),
    listAgents: async (query) => service.listAgents(CLI, definedOnly(query)),
    getAgent: async (did) => service.getAgent(CLI, did),
    revokeAgent: async (did, reason) => service.revokeAgent(CLI, did, reason),
    revokeCredential: async (id, reason) => service.revokeCredential(CLI, id, reason),
    revokeDelegation: async (id, reason) => service.revokeDelegation(CLI, id, reason),
    addApprover: async (input) => service.approvals.addApprover(CLI, input),
    listApprovers: async () => service.approvals.listApprovers(CLI),
    revokeApprover: async (id, reason) => service.approvals.revokeApprover(CLI, id, reason),
    listApprovals: async (query) => (await service.approvals.listRequests(CLI, definedOnly(query))).approvals,
    getApproval: async (id) => service.approvals.getRequest(id),
    listWebhookEvents: async (query) => listWebhookEvents(webhooks, CLI, definedOnly(query)),
    getWebhookEvent: async (id) => getWebhookEvent(webhooks, CLI, id),
    redeliverWebhookEvent: async (id) => redeliverWebhookEvent(webhooks, CLI, id),
    async localStatusList(url) {
      if (!url.startsWith(listPrefix)) return undefined
      try {
        return (await service.statusList(url.slice(listPrefix.length))).jwt
      } catch (error) {
        if (error instanceof AgentIdError && error.code === 'ERR_NOT_FOUND') return undefined
        throw error
      }
    },
    close: () => service.close(),
  }
}

// The issuer's query parser refuses keys whose value is not a string.
function definedOnly(query: object): Record<string, string> {
  return Object.fromEntries(Object.entries(query).filter((e): e is [string, string] => typeof e[1] === 'string'))
}
