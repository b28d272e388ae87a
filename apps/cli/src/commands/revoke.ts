import type { Command } from 'commander'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { clean } from '../output.js'

/** `agentid revoke <credential-id|agent-did> --reason …`. */
export function registerRevoke(program: Command, ctx: Context): void {
  withTarget(
    program
      .command('revoke')
      .argument('<credential-id|agent-did>', 'a did:key (the agent and all its credentials) or a urn:uuid: credential id (that credential only)'),
  )
    .description('revoke an agent with all its credentials, or one credential')
    .requiredOption('--reason <text>', 'why, for the audit log (at most 512 characters, no control characters)')
    .action(async (target: string, options: TargetOptions & { reason: string }) => {
      if (target.startsWith('did:')) {
        const result = await withClient(ctx, options, (client) => client.revokeAgent(target, options.reason))
        emit(ctx, options, result, () =>
          result.alreadyRevoked
            ? `agent ${clean(result.did)} was already revoked; nothing changed\n`
            : `revoked agent ${clean(result.did)} and ${result.revokedCredentials.length} credential(s)\n` +
              result.revokedCredentials.map((id) => `  ${clean(id)}\n`).join(''),
        )
      } else if (target.startsWith('urn:uuid:')) {
        const result = await withClient(ctx, options, (client) => client.revokeCredential(target, options.reason))
        emit(ctx, options, result, () =>
          result.alreadyRevoked
            ? `credential ${clean(result.id)} was already revoked; nothing changed\n`
            : `revoked credential ${clean(result.id)} of agent ${clean(result.agent)}\n`,
        )
      } else {
        throw new UsageError(`${JSON.stringify(clean(target))} is neither an agent DID (did:key:…) nor a credential id (urn:uuid:…)`)
      }
    })
}
