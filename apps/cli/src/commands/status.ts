import type { Command } from 'commander'
import type { AgentView } from '@agentid/issuer'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { fields } from '../output.js'
import { renderCredentials } from './agents.js'

/** What `status` reports: the agent's status and each credential's. */
export interface AgentStatus {
  did: string
  status: AgentView['status']
  revokedAt: string | null
  revocationReason: string | null
  credentials: Array<Pick<AgentView['credentials'][number], 'id' | 'status' | 'issuedAt' | 'expiresAt' | 'revokedAt' | 'revocationReason'>>
}

/** `agentid status <did>`. */
export function registerStatus(program: Command, ctx: Context): void {
  withTarget(program.command('status').argument('<did>', "the agent's did:key"))
    .description("an agent's status and the status (active, revoked, expired) of each of its credentials")
    .action(async (did: string, options: TargetOptions) => {
      const agent = await withClient(ctx, options, (client) => client.getAgent(did))
      const status: AgentStatus = {
        did: agent.did,
        status: agent.status,
        revokedAt: agent.revokedAt,
        revocationReason: agent.revocationReason,
        credentials: agent.credentials.map(({ id, status, issuedAt, expiresAt, revokedAt, revocationReason }) => ({
          id, status, issuedAt, expiresAt, revokedAt, revocationReason,
        })),
      }
      emit(ctx, options, status, () => {
        const head = fields([
          ['agent', agent.did],
          ['status', agent.status],
          ...(agent.revokedAt ? ([['revoked', `${agent.revokedAt} (${agent.revocationReason ?? 'no reason'})`]] as const) : []),
        ])
        return `${head}\n${renderCredentials(agent)}`
      })
    })
}
