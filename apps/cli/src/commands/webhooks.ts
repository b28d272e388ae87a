import type { Command } from 'commander'
import { emit, withClient, withTarget, type Context, type TargetOptions } from '../context.js'
import { clean, fields, json, table } from '../output.js'

/** `agentid webhooks list|show|redeliver`: the approval webhook's deliveries (admin). */
export function registerWebhooks(program: Command, ctx: Context): void {
  const webhooks = program.command('webhooks').description("the approval webhook's deliveries: list, show (with every attempt), redeliver")

  withTarget(webhooks.command('list'))
    .description('list webhook events, newest first')
    .option('--status <status>', 'pending, delivered or abandoned')
    .option('--limit <n>', 'at most this many (1 to 500, default 50)')
    .option('--cursor <cursor>', 'the next page: the cursor a previous list printed')
    .action(async (options: TargetOptions & { status?: string; limit?: string; cursor?: string }) => {
      const query = { ...(options.status ? { status: options.status } : {}), ...(options.limit ? { limit: options.limit } : {}), ...(options.cursor ? { cursor: options.cursor } : {}) }
      const page = await withClient(ctx, options, (client) => client.listWebhookEvents(query))
      emit(ctx, options, page, () =>
        (page.events.length === 0 ? 'no webhook events\n' : table(['ID', 'TYPE', 'STATUS', 'ATTEMPTS', 'LAST ERROR', 'APPROVAL', 'CREATED'], page.events.map((e) => [e.id, e.type, e.status, e.attempts, e.lastError, e.approval, e.createdAt])))
        + (page.nextCursor ? `\nmore: --cursor ${clean(page.nextCursor)}\n` : ''),
      )
    })

  withTarget(webhooks.command('show').argument('<id>', 'the event id (evt_…), its webhook-id header'))
    .description('show one webhook event: what was sent and every attempt (time, duration, HTTP status or kind of failure)')
    .action(async (id: string, options: TargetOptions) => {
      const e = await withClient(ctx, options, (client) => client.getWebhookEvent(id))
      emit(ctx, options, e, () =>
        fields([
          ['id', e.id],
          ['type', e.type],
          ['status', e.status],
          ['approval', e.approval],
          ['created', e.createdAt],
          ['next attempt', e.nextAttemptAt],
          ['done', e.doneAt],
          ['attempts', e.attempts],
          ['last error', e.lastError],
        ])
        + (e.attemptLog.length === 0 ? '\nno attempts yet\n' : `\n${table(['#', 'AT', 'DURATION MS', 'STATUS', 'ERROR'], e.attemptLog.map((a) => [a.attempt, a.at, a.durationMs, a.status, a.error]))}`)
        + `\npayload:\n${clean(json(e.payload))}`,
      )
    })

  withTarget(webhooks.command('redeliver').argument('<id>', 'the event id (evt_…)'))
    .description('deliver a delivered or abandoned event again now, with the same webhook-id (receivers dedupe on it); audited')
    .action(async (id: string, options: TargetOptions) => {
      const e = await withClient(ctx, options, (client) => client.redeliverWebhookEvent(id))
      emit(ctx, options, { event: e }, () => `webhook event ${clean(e.id)} is due again now (attempt ${e.attempts + 1})\n`)
    })
}
