import type { Command } from 'commander'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { UsageError } from '../errors.js'
import { clean, fields, json, table } from '../output.js'

/** `--for controller:<id>`, `--for group:<name>` or `--for <controller>` (repeatable). */
export function parseFor(values: readonly string[]): { controllers: string[]; groups: string[] } {
  const controllers: string[] = []
  const groups: string[] = []
  for (const v of values) {
    if (v.startsWith('group:')) groups.push(v.slice('group:'.length))
    else controllers.push(v.startsWith('controller:') ? v.slice('controller:'.length) : v)
  }
  if (controllers.length + groups.length === 0) throw new UsageError('name what the approver may approve: --for <controller> or --for group:<name> (repeatable)')
  return { controllers, groups }
}

const collect = (value: string, previous: string[] = []) => [...previous, value]

/** `agentid approvers add|list|revoke` and `agentid approvals list|show`. */
export function registerApprovals(program: Command, ctx: Context): void {
  const approvers = program.command('approvers').description('people who approve calls with a passkey: add (prints a one-time enrolment link), list, revoke')

  withTarget(approvers.command('add').argument('<name>', 'the approver\'s name, as approvers and auditors will read it'))
    .description('register an approver and print a one-time enrolment link (they open it and create a passkey)')
    .requiredOption('--for <controller|group:name>', 'what they may approve: the calls of agents of this controller, or of permits marked @approvers("name") (repeatable)', collect)
    .option('--user <id>', 'the approver\'s user id at your identity provider (tells self-approval apart)')
    .option('--user-issuer <url>', 'that identity provider\'s issuer URL')
    .action(async (name: string, options: TargetOptions & { for: string[]; user?: string; userIssuer?: string }) => {
      const scope = parseFor(options.for)
      if (options.userIssuer !== undefined && options.user === undefined) throw new UsageError('--user-issuer needs --user')
      const user = options.user === undefined ? undefined : { id: options.user, ...(options.userIssuer === undefined ? {} : { issuer: options.userIssuer }) }
      const added = await withClient(ctx, options, (client) => client.addApprover({ name, ...scope, ...(user ? { user } : {}) }))
      emit(ctx, options, added, () =>
        fields([
          ['id', added.id],
          ['name', added.name],
          ['controllers', added.approves.controllers.join(', ')],
          ['groups', added.approves.groups.join(', ')],
          ['link expires', added.enrolmentExpiresAt],
        ]) + `\nOne-time enrolment link, shown this once; give it to ${clean(added.name)} only:\n\n  ${clean(added.enrolmentUrl)}\n`,
      )
    })

  withTarget(approvers.command('list'))
    .description('list approvers and their state (pending-enrolment, active, revoked)')
    .action(async (options: TargetOptions) => {
      const list = await withClient(ctx, options, (client) => client.listApprovers())
      emit(ctx, options, { approvers: list }, () =>
        list.length === 0 ? 'no approvers\n' : table(['ID', 'NAME', 'STATUS', 'CONTROLLERS', 'GROUPS', 'ENROLLED'], list.map((a) => [a.id, a.name, a.status, a.approves.controllers.join(','), a.approves.groups.join(','), a.enrolledAt])),
      )
    })

  withTarget(approvers.command('revoke').argument('<id>', 'the approver id (apv_…)'))
    .description('revoke an approver: their credential\'s status bit is set, so every verifier refuses their receipts')
    .requiredOption('--reason <text>', 'why, for the audit log')
    .action(async (id: string, options: TargetOptions & { reason: string }) => {
      const result = await withClient(ctx, options, (client) => client.revokeApprover(id, options.reason))
      emit(ctx, options, result, () => (result.alreadyRevoked ? `approver ${clean(result.id)} was already revoked; nothing changed\n` : `revoked approver ${clean(result.id)}\n`))
    })

  const approvals = program.command('approvals').description('approval requests: list, show (with the receipt)')

  withTarget(approvals.command('list'))
    .description('list approval requests, newest first')
    .option('--status <status>', 'pending, approved or denied')
    .option('--limit <n>', 'at most this many (1 to 500, default 50)')
    .action(async (options: TargetOptions & { status?: string; limit?: string }) => {
      const list = await withClient(ctx, options, (client) => client.listApprovals({ ...(options.status ? { status: options.status } : {}), ...(options.limit ? { limit: options.limit } : {}) }))
      emit(ctx, options, { approvals: list }, () =>
        list.length === 0 ? 'no approval requests\n' : table(['ID', 'STATUS', 'COMMAND', 'AGENT', 'APPROVER', 'CREATED'], list.map((a) => [a.id, a.status, a.call.command, a.call.agent, a.approver?.name ?? null, a.createdAt])),
      )
    })

  withTarget(approvals.command('show').argument('<id>', 'the approval request id (apr_…)'))
    .description('show one approval request: the canonical call, its decision and the receipt')
    .action(async (id: string, options: TargetOptions) => {
      const a = await withClient(ctx, options, (client) => client.getApproval(id))
      emit(ctx, options, a, () =>
        fields([
          ['id', a.id],
          ['status', a.status],
          ['command', a.call.command],
          ['target', a.call.target],
          ['agent', a.call.agent],
          ['controller', a.call.controller],
          ['user', a.call.user ? `${a.call.user.id}${a.call.user.issuer ? ` at ${a.call.user.issuer}` : ''}` : null],
          ['group', a.call.group],
          ['transaction', a.call.transactionId],
          ['arguments digest', a.call.argumentsDigest],
          ['created', a.createdAt],
          ['expires', a.expiresAt],
          ['decided', a.decidedAt],
          ['approver', a.approver ? `${a.approver.name} (${a.approver.id})` : null],
          ['page', a.url],
        ]) + `\narguments:\n${clean(json(a.call.arguments))}` + (a.receipt ? `\nreceipt (verify with verifier.verifyApproval; --json prints it whole): ${a.receipt.decision}, passkey ${clean(a.receipt.credentialId)}\n` : ''),
      )
    })
}
