// End to end: `agentid webhooks list|show|redeliver` (the real CLI binary) against a real issuer process
// delivering approval webhooks to a real HTTP receiver: one event delivered, one answered 500 with a
// body that quotes a connection string (never shown by the CLI), a delivered event redelivered under
// the same webhook-id, a pending one refused; hostile ids, cursors, limits and keys; and --db on the
// stopped issuer's database (reads work, redeliver is refused: no sender there).
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { addOrchestratorViaApi, adminCli, api, cleanup, cli, cliErrorCode, freePort, sleep, startIssuer } from './harness.js'

const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

const LEAK = 'postgres://app:hunter2@10.1.2.3:5432/prod'

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe('agentid webhooks, against an issuer process', () => {
  it('lists, shows and redelivers; refuses what it must with the CLI exit codes', async () => {
    // The receiver: 204 for the invoice "ok" events, 500 with a leaky body for "fail".
    const received: { id: string; body: string }[] = []
    const port = await freePort()
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        received.push({ id: String(req.headers['webhook-id']), body })
        if (body.includes('"fail"')) res.writeHead(500, { 'content-type': 'text/plain' }).end(`db down: ${LEAK}`)
        else res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
    const issuer = await startIssuer({ env: {
      AGENTID_APPROVALS_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
      AGENTID_APPROVALS_WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`,
      AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '2000',
    } })
    closers.push(() => issuer.stop())
    const orch = await addOrchestratorViaApi(issuer, 'guard')
    const request = async (invoice: string) => {
      const r = await api(issuer, 'POST', '/v1/approvals', { key: orch.apiKey, json: { agent: 'did:key:z6MkWebhookAgent', controller: 'did:web:acme.example', target: 'https://bank.example/mcp', command: 'tools/call pay', arguments: { invoice } } })
      expect(r.status, r.text).toBe(201)
      return r.body.id as string
    }
    const ok = await request('ok')
    await until('the first delivery', () => received.length >= 1)
    await sleep(20) // a distinct created_ms
    const fail = await request('fail')
    await until('the failing attempt', () => received.length >= 2)

    const listed = await adminCli(issuer, ['webhooks', 'list', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    const events = listed.json().events as { id: string; approval: string; status: string; attempts: number; lastError: string | null }[]
    expect(events.map((e) => e.approval)).toEqual([fail, ok])
    const [failed, delivered] = events
    expect(failed).toMatchObject({ status: 'pending', lastError: 'HTTP 500' })
    expect(delivered!.status).toMatch(/^(delivered|pending)$/)
    expect(listed.json().nextCursor).toBeNull()

    const human = await adminCli(issuer, ['webhooks', 'list'])
    expect(human.stdout).toMatch(/^ID\s+TYPE\s+STATUS\s+ATTEMPTS\s+LAST ERROR/)
    expect(human.stdout).toContain(failed!.id)
    // Paging: --limit 1 prints a cursor; --cursor gives the next (older) event.
    const first = await adminCli(issuer, ['webhooks', 'list', '--limit', '1', '--json'])
    expect(first.json().events.map((e: { id: string }) => e.id)).toEqual([failed!.id])
    expect((await adminCli(issuer, ['webhooks', 'list', '--limit', '1'])).stdout).toContain(`more: --cursor ${first.json().nextCursor}`)
    const second = await adminCli(issuer, ['webhooks', 'list', '--limit', '1', '--cursor', first.json().nextCursor, '--json'])
    expect(second.json().events.map((e: { id: string }) => e.id)).toEqual([delivered!.id])
    expect((await adminCli(issuer, ['webhooks', 'list', '--status', 'pending', '--json'])).json().events.map((e: { id: string }) => e.id)).toContain(failed!.id)

    const shown = await adminCli(issuer, ['webhooks', 'show', failed!.id])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain('HTTP 500')
    expect(shown.stdout).toMatch(/#\s+AT\s+DURATION MS\s+STATUS\s+ERROR/)
    expect(shown.stdout).toContain('"invoice": "fail"')
    const shownJson = await adminCli(issuer, ['webhooks', 'show', failed!.id, '--json'])
    expect(shownJson.json().attemptLog[0]).toMatchObject({ attempt: 1, status: 500, error: 'HTTP 500' })
    for (const out of [listed.stdout, human.stdout, shown.stdout, shownJson.stdout]) {
      expect(out).not.toContain('hunter2')
      expect(out).not.toContain('whsec_')
    }

    // Redeliver the delivered event: the receiver gets it again under the same webhook-id.
    await until('the first event delivered', () => received.filter((r) => r.id === delivered!.id).length === 1)
    for (let i = 0; i < 100; i++) {
      if ((await adminCli(issuer, ['webhooks', 'show', delivered!.id, '--json'])).json().status === 'delivered') break
      await sleep(50)
    }
    const redelivered = await adminCli(issuer, ['webhooks', 'redeliver', delivered!.id])
    expect(redelivered.code, redelivered.stderr).toBe(0)
    expect(redelivered.stdout).toContain(`webhook event ${delivered!.id} is due again now`)
    await until('the redelivery', () => received.filter((r) => r.id === delivered!.id).length === 2)
    const [firstBody, againBody] = received.filter((r) => r.id === delivered!.id).map((r) => r.body)
    expect(againBody).toBe(firstBody)
    // The pending one is refused (exit 1, ERR_CONFLICT).
    const pending = await adminCli(issuer, ['webhooks', 'redeliver', failed!.id])
    expect([pending.code, cliErrorCode(pending)]).toEqual([1, 'ERR_CONFLICT'])

    // Hostile input and wrong keys.
    for (const id of ['evt_x', '../../v1/agents', 'evt_' + 'A'.repeat(300), '']) {
      for (const command of ['show', 'redeliver']) {
        const r = await adminCli(issuer, ['webhooks', command, id])
        expect([r.code, cliErrorCode(r)], `${command} ${id}`).toEqual([1, 'ERR_INVALID_INPUT'])
      }
    }
    const unknown = await adminCli(issuer, ['webhooks', 'show', `evt_${'Z'.repeat(22)}`])
    expect([unknown.code, cliErrorCode(unknown)]).toEqual([1, 'ERR_NOT_FOUND'])
    for (const args of [['--limit', '9999'], ['--limit', '0'], ['--limit', 'many'], ['--status', 'failed'], ['--cursor', 'garbage'], ['--cursor', Buffer.from('[1,"evt_x"]').toString('base64url')]]) {
      const r = await adminCli(issuer, ['webhooks', 'list', ...args])
      expect([r.code, cliErrorCode(r)], args.join(' ')).toEqual([1, 'ERR_INVALID_INPUT'])
    }
    const noKey = await cli(['webhooks', 'list', '--issuer', issuer.url])
    expect(noKey.code).toBe(2)
    const asOrchestrator = await cli(['webhooks', 'redeliver', delivered!.id, '--issuer', issuer.url], { AGENTID_ADMIN_KEY: orch.apiKey })
    expect([asOrchestrator.code, cliErrorCode(asOrchestrator)]).toEqual([1, 'ERR_FORBIDDEN'])
    const wrongKey = await cli(['webhooks', 'list', '--issuer', issuer.url], { AGENTID_ADMIN_KEY: `aid_admin_${'x'.repeat(40)}` })
    expect([wrongKey.code, cliErrorCode(wrongKey)]).toEqual([1, 'ERR_UNAUTHENTICATED'])

    // On the stopped issuer's database: the reads work; redeliver is refused (nothing here delivers).
    await issuer.stop()
    const onDb = await cli(['webhooks', 'list', '--db', issuer.dbFile, '--json'])
    expect(onDb.code, onDb.stderr).toBe(0)
    expect(onDb.json().events.map((e: { id: string }) => e.id)).toEqual([failed!.id, delivered!.id])
    const showOnDb = await cli(['webhooks', 'show', delivered!.id, '--db', issuer.dbFile, '--json'])
    expect(showOnDb.json()).toMatchObject({ id: delivered!.id, status: 'delivered', attempts: 2 })
    const redeliverOnDb = await cli(['webhooks', 'redeliver', delivered!.id, '--db', issuer.dbFile])
    expect([redeliverOnDb.code, cliErrorCode(redeliverOnDb)]).toEqual([1, 'ERR_CONFLICT'])
    expect(redeliverOnDb.stderr).toContain('no approval webhook is configured')
  }, 120_000)
})
