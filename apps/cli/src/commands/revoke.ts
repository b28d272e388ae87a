import type { Command } from 'commander'
import { AgentIdError } from '@agentid/core'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { clean } from '../output.js'

/** `agentid revoke <credential-id|delegation-id|agent-did> --reason …`. */
export function registerRevoke(program: Command, ctx: Context): void {
  withTarget(
    program
      .command('revoke')
      .argument(
        '<credential-id|delegation-id|agent-did>',
        'a did:key (the agent, all its credentials and delegations), or a urn:uuid: credential id (that credential only) or delegation id (that link and every link below it)',
      ),
  )
    .description('revoke an agent with all its credentials and delegations, one credential, or one delegation with the links below it')
    .requiredOption('--reason <text>', 'why, for the audit log (at most 512 characters, no control characters)')
    .action(async (target: string, options: TargetOptions & { reason: string }) => {
      if (target.startsWith('did:')) {
        const result = await withClient(ctx, options, (client) => client.revokeAgent(target, options.reason))
        const links = result.revokedDelegations ?? []
        emit(ctx, options, result, () =>
          result.alreadyRevoked
            ? `agent ${clean(result.did)} was already revoked; nothing changed\n`
            : `revoked agent ${clean(result.did)}, ${result.revokedCredentials.length} credential(s) and ${links.length} delegation(s)\n` +
              [...result.revokedCredentials, ...links].map((id) => `  ${clean(id)}\n`).join(''),
        )
      } else if (target.startsWith('urn:uuid:')) {
        // Both kinds of id are urn:uuid: the issuer tells which it is: a credential first, then a delegation.
        const result = await withClient(ctx, options, async (client) => {
          try {
            return { credential: await client.revokeCredential(target, options.reason) }
          } catch (error) {
            if (!(error instanceof AgentIdError) || error.code !== 'ERR_NOT_FOUND') throw error
          }
          try {
            return { delegation: await client.revokeDelegation(target, options.reason) }
          } catch (error) {
            if (error instanceof AgentIdError && error.code === 'ERR_NOT_FOUND') throw new AgentIdError('ERR_NOT_FOUND', 'no credential or delegation has this id')
            throw error
          }
        })
        const c = result.credential
        if (c) {
          emit(ctx, options, c, () =>
            c.alreadyRevoked ? `credential ${clean(c.id)} was already revoked; nothing changed\n` : `revoked credential ${clean(c.id)} of agent ${clean(c.agent)}\n`,
          )
        } else {
          const d = result.delegation!
          emit(ctx, options, d, () =>
            d.alreadyRevoked
              ? `delegation ${clean(d.id)} was already revoked; nothing changed\n`
              : `revoked delegation ${clean(d.id)} and ${d.revokedDelegations.length - 1} link(s) below it\n` +
                d.revokedDelegations.map((id) => `  ${clean(id)}\n`).join(''),
          )
        }
      } else {
        throw new UsageError(`${JSON.stringify(clean(target))} is neither an agent DID (did:key:…) nor a credential or delegation id (urn:uuid:…)`)
      }
    })
}
