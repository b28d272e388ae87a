import type { Command } from 'commander'
import type { AgentView } from '@agentid/issuer'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import type { AgentQuery } from '../issuer-client.js'
import { clean, fields, table } from '../output.js'

interface ListOptions extends TargetOptions, AgentQuery {}

/** `agentid agents list|show`. */
export function registerAgents(program: Command, ctx: Context): void {
  const group = program.command('agents').description('list and inspect agents')

  withTarget(group.command('list'))
    .description('list agents, newest first, a page at a time')
    .option('--status <status>', 'active or revoked')
    .option('--controller <controller>', 'only agents with this controller')
    .option('--purpose <purpose>', 'only agents with this purpose')
    .option('--orchestrator <id|name>', 'only agents of this orchestrator')
    .option('--limit <n>', 'page size, 1 to 500 (default 50)')
    .option('--cursor <cursor>', 'the next page, from the previous page')
    .action(async (options: ListOptions) => {
      const query: AgentQuery = {}
      for (const key of ['status', 'controller', 'purpose', 'orchestrator', 'limit', 'cursor'] as const) {
        if (options[key] !== undefined) query[key] = options[key]
      }
      const page = await withClient(ctx, options, (client) => client.listAgents(query))
      emit(ctx, options, page, () => {
        if (page.agents.length === 0) return 'no agents\n'
        const rows = table(
          ['DID', 'STATUS', 'ORCHESTRATOR', 'CONTROLLER', 'PURPOSE', 'CREATED'],
          page.agents.map((a) => [a.did, a.status, a.orchestrator, a.claims.controller, a.claims.purpose, a.createdAt]),
        )
        return page.nextCursor ? `${rows}\nmore: --cursor ${clean(page.nextCursor)}\n` : rows
      })
    })

  withTarget(group.command('show').argument('<did>', "the agent's did:key"))
    .description('show an agent, its claims and its credentials')
    .action(async (did: string, options: TargetOptions) => {
      const agent = await withClient(ctx, options, (client) => client.getAgent(did))
      emit(ctx, options, agent, () => renderAgent(agent))
    })
}

/** An agent record: its fields, its claims, then a table of its credentials. */
export function renderAgent(agent: AgentView): string {
  const { purpose, controller, ...rest } = agent.claims
  const claims = Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as const)
  const head = fields([
    ['did', agent.did],
    ['status', agent.status],
    ...(agent.revokedAt ? ([['revoked', `${agent.revokedAt} (${agent.revocationReason ?? 'no reason'})`]] as const) : []),
    ['orchestrator', agent.orchestrator],
    ['key custody', agent.keyCustody],
    ['created', agent.createdAt],
    ['purpose', purpose],
    ['controller', controller],
    ...claims,
  ])
  return `${head}\n${renderCredentials(agent)}`
}

export function renderCredentials(agent: AgentView): string {
  if (agent.credentials.length === 0) return 'no credentials\n'
  return table(
    ['CREDENTIAL', 'STATUS', 'ISSUED', 'EXPIRES', 'REVOKED', 'REASON'],
    agent.credentials.map((c) => [c.id, c.status, c.issuedAt, c.expiresAt, c.revokedAt, c.revocationReason]),
  )
}
