import type { Command } from 'commander'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { clean, fields, table } from '../output.js'

/** `agentid orchestrators add|list|remove`. */
export function registerOrchestrators(program: Command, ctx: Context): void {
  const group = program
    .command('orchestrators')
    .description('register, list and remove orchestrators (the services that spawn agents)')

  withTarget(group.command('add').argument('<name>', 'a unique name: letters, digits, dots, dashes, underscores (at most 64)'))
    .description("register an orchestrator and print its API key (shown once)")
    .action(async (name: string, options: TargetOptions) => {
      const added = await withClient(ctx, options, (client) => client.addOrchestrator(name))
      emit(ctx, options, added, () =>
        fields([
          ['id', added.id],
          ['name', added.name],
          ['created', added.createdAt],
        ]) + `\nAPI key, shown this once; the orchestrator sends it as "Authorization: Bearer <key>":\n\n  ${clean(added.apiKey)}\n`,
      )
    })

  withTarget(group.command('list'))
    .description('list orchestrators, removed ones included')
    .action(async (options: TargetOptions) => {
      const orchestrators = await withClient(ctx, options, (client) => client.listOrchestrators())
      emit(ctx, options, { orchestrators }, () =>
        orchestrators.length === 0
          ? 'no orchestrators\n'
          : table(
              ['ID', 'NAME', 'CREATED', 'REMOVED', 'ACTIVE AGENTS'],
              orchestrators.map((o) => [o.id, o.name, o.createdAt, o.removedAt, o.activeAgents ?? null]),
            ),
      )
    })

  withTarget(group.command('remove').argument('<id|name>', 'the orchestrator id (orch_…) or name'))
    .description("disable an orchestrator's API key; its agents stay active (revoke them with `agentid revoke`)")
    .action(async (idOrName: string, options: TargetOptions) => {
      const removed = await withClient(ctx, options, (client) => client.removeOrchestrator(idOrName))
      emit(ctx, options, removed, () => `removed orchestrator ${clean(removed.name)} (${clean(removed.id)}); its agents stay active\n`)
    })
}
