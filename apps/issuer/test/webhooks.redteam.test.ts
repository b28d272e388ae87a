// Red team: the approval webhook's give-up. Its audit event `webhook.abandoned` is an entry of the issuer
// log, which is public (tiles served to anyone) and append-only: nothing written there can be taken
// back. The attempt's error text is the receiver's to choose (the first 200 characters of its answer)
// or names the receiver's network (an internal host name, an address): neither may reach the log. The
// outbox row and the operator's stderr line keep the full text.
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openStorage, type IssuerStorage } from '../src/storage/index.js'
import { WebhookSender } from '../src/webhooks/sender.js'
import { tempDir } from './engine-helpers.js'
import { approvalLogRef } from '../src/approvals/log-ref.js'

const SECRET = `whsec_${randomBytes(32).toString('base64')}`
const T0 = 1_800_000_000_000
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`
}

async function storage(): Promise<IssuerStorage> {
  const { dir, cleanup } = tempDir()
  closers.push(cleanup)
  const s = await openStorage({ file: join(dir, 'issuer.db') })
  closers.push(() => s.close())
  return s
}

/** Fails the event once, past its give-up time; returns the audit details, the outbox row and the log lines. */
async function giveUp(s: IssuerStorage, url: string) {
  let now = T0
  const lines: Record<string, unknown>[] = []
  const snd = new WebhookSender({ storage: s, clock: () => now, log: (l) => lines.push(l), config: { url, secret: SECRET, retryMs: 100, giveUpSec: 60, timeoutMs: 2000 } })
  closers.push(() => snd.stop())
  const ev = snd.event('approval.requested', 'apr_leak', '{"type":"approval.requested"}')
  await s.transaction((tx) => tx.webhooks.enqueue(ev))
  now = T0 + 59_990 // the next retry falls past the give-up time
  expect(await snd.runOnce()).toBe(1)
  const index = await s.audit.last('webhook.abandoned', ev.id)
  expect(index).toBeDefined()
  const [audit] = await s.audit.range(index!, index! + 1)
  return { details: JSON.parse(audit!.details_json!) as Record<string, unknown>, row: (await s.webhooks.get(ev.id))!, lines }
}

describe('webhook.abandoned in the public issuer log', () => {
  it("carries the HTTP status, never the text of the receiver's answer", async () => {
    const s = await storage()
    const leak = 'db=postgres://svc:hunter2@10.20.30.40/crm stack at /srv/hooks/app.js:42'
    const url = await listen(createServer((_q, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end(leak)))
    const { details, row, lines } = await giveUp(s, url)
    expect(row).toMatchObject({ state: 'failed', last_error: `HTTP 500: ${leak}` })
    expect(JSON.stringify(details)).not.toContain('hunter2')
    expect(details).toEqual({ type: 'approval.requested', approval: approvalLogRef('apr_leak'), attempts: 1, lastError: 'HTTP 500' })
    expect(lines[0]).toMatchObject({ msg: 'approval webhook given up', lastError: `HTTP 500: ${leak}` })
  })

  it('names the kind of a network failure, not the address or host it was', async () => {
    const s = await storage()
    // A port nothing listens on: the refusal's text names the address and port.
    const server = createServer()
    const url = await listen(server)
    await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
    const { details, row } = await giveUp(s, url)
    expect(row.last_error).toContain('ECONNREFUSED')
    expect(JSON.stringify(details)).not.toContain('127.0.0.1')
    expect(details).toEqual({ type: 'approval.requested', approval: approvalLogRef('apr_leak'), attempts: 1, lastError: 'network error' })
  })
})
