// Orchestrators: registered with an API key (returned once, stored as a hash), listed, removed.
import { randomBytes } from 'node:crypto'
import { AgentIdError } from '@agentid/core'
import { hashApiKey, newApiKey } from './api-keys.js'
import type { ServiceDeps } from './deps.js'
import { parseOrchestratorName } from './input.js'
import { actorName, requireAdmin, type Principal } from './principal.js'
import { notFound, orchestratorView, type OrchestratorView } from './views.js'

type Deps = Pick<ServiceDeps, 'storage' | 'now'>

/** Registers an orchestrator; its API key is returned once and stored only as a hash. */
export async function addOrchestrator(d: Deps, actor: Principal, name: unknown): Promise<OrchestratorView & { apiKey: string }> {
  requireAdmin(actor)
  const valid = parseOrchestratorName(name)
  const apiKey = newApiKey('orch')
  const row = { id: `orch_${randomBytes(9).toString('base64url')}`, name: valid, key_hash: hashApiKey(apiKey), created_at: d.now() }
  await d.storage.transaction(async (tx) => {
    if (await tx.orchestrators.byName(valid)) throw new AgentIdError('ERR_CONFLICT', `an orchestrator named ${valid} exists`)
    await tx.orchestrators.insert(row)
    await tx.audit.append(row.created_at, actorName(actor), 'orchestrator.added', row.id, { name: valid })
  })
  return { ...orchestratorView({ ...row, removed_at: null }), apiKey }
}

export async function listOrchestrators(d: Pick<ServiceDeps, 'storage'>, actor: Principal): Promise<OrchestratorView[]> {
  requireAdmin(actor)
  const rows = await d.storage.orchestrators.list()
  return Promise.all(rows.map(async (row) => ({ ...orchestratorView(row), activeAgents: await d.storage.orchestrators.activeAgentCount(row.id) })))
}

/** Disables an orchestrator's key (by id or name). Its agents stay; revoke them explicitly. */
export async function removeOrchestrator(d: Deps, actor: Principal, idOrName: unknown): Promise<OrchestratorView> {
  requireAdmin(actor)
  if (typeof idOrName !== 'string' || idOrName.length === 0 || idOrName.length > 128) throw new AgentIdError('ERR_INVALID_INPUT', 'an orchestrator id or name is required')
  return d.storage.transaction(async (tx) => {
    const row = (await tx.orchestrators.byId(idOrName)) ?? (await tx.orchestrators.byName(idOrName))
    if (!row || row.removed_at !== null) notFound('orchestrator')
    const at = d.now()
    await tx.orchestrators.remove(row.id, at)
    await tx.audit.append(at, actorName(actor), 'orchestrator.removed', row.id)
    return orchestratorView({ ...row, removed_at: at })
  })
}
