// Revocation-to-refusal latency: how long after `POST /v1/credentials/:id/revoke` returns does a
// verifier refuse the (memoized) credential? Over the push stream (createVerifier({ revocationStream }))
// beside status-list polling (statusTtlMs), both watching the same revocations of the built issuer
// process. Each watcher re-verifies its credential every millisecond (push) or 5 ms (polling) until it
// is refused (ERR_REVOKED).
//   node bench/run.mjs revocation        BENCH_REVOCATIONS=n (default 200), BENCH_POLL_TTL_MS (default 1000)
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createVerifier } from '@agentid/verifier'
import { percentile, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { progress, report } from './lib/suite.mjs'

const N = Number(process.env.BENCH_REVOCATIONS ?? 200)
const POLL_TTL_MS = Number(process.env.BENCH_POLL_TTL_MS ?? 1000)

const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-revocation-'))
const { child, url, adminKey } = await startIssuer(dataDir)
const push = { verifier: undefined, latencies: [] }
const poll = { verifier: undefined, latencies: [] }
try {
  const post = async (path, key, body) => {
    const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`)
    return r.json()
  }
  const issuer = (await (await fetch(`${url}/v1/issuer`)).json()).did
  const orch = await post('/v1/orchestrators', adminKey, { name: 'bench-revocation' })
  const claims = { purpose: 'bench', controller: 'did:web:bench.example', model: { name: 'm', version: '1' }, toolProfile: ['mcp://bench/tool'], policyTier: 'standard', dataAccessClass: 'internal' }
  progress('revocation', `spawning ${N} agents`)
  const agents = []
  for (let i = 0; i < N; i++) agents.push(await post('/v1/agents', orch.apiKey, { ...claims, keyCustody: 'issuer' }))

  push.verifier = createVerifier({ trustedIssuers: [issuer], statusTtlMs: 3_600_000, revocationStream: { url: `${url}/v1/events` } })
  poll.verifier = createVerifier({ trustedIssuers: [issuer], statusTtlMs: POLL_TTL_MS, statusGraceMs: 0 })
  for (const a of agents) {
    await push.verifier.verifyAgentCredential(a.credential)
    await poll.verifier.verifyAgentCredential(a.credential)
  }
  for (let t = 0; push.verifier.revocationMode() !== 'push'; t++) {
    if (t > 1000) throw new Error('the push verifier never subscribed')
    await sleep(10)
  }

  // Resolves with the ms from `since` until `verifier` refuses `credential`.
  async function watch(verifier, credential, since, everyMs) {
    for (;;) {
      try {
        await verifier.verifyAgentCredential(credential)
      } catch (e) {
        if (e.code !== 'ERR_REVOKED') throw e
        return performance.now() - since
      }
      await sleep(everyMs)
    }
  }

  progress('revocation', `${N} revocations, one at a time`)
  const pollingWatchers = []
  for (const a of agents) {
    await sleep(Math.random() * 50) // no phase lock with the polling TTL
    await post(`/v1/credentials/${encodeURIComponent(a.credentialId)}/revoke`, adminKey, { reason: 'bench' })
    const since = performance.now()
    pollingWatchers.push(watch(poll.verifier, a.credential, since, 5).then((ms) => poll.latencies.push(ms)))
    push.latencies.push(await watch(push.verifier, a.credential, since, 1))
  }
  await Promise.all(pollingWatchers)
} finally {
  await push.verifier?.close()
  await stopIssuer(child)
  rmSync(dataDir, { recursive: true, force: true })
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[s.length - 1] }
}
const p = stats(push.latencies)
const q = stats(poll.latencies)
report({
  suite: 'revocation',
  title: `revocation → refusal of a memoized credential, ${N} revocations (ms after the revoke returns)`,
  rows: [
    { figure: 'push stream: p50', value: p.p50, unit: 'ms' },
    { figure: 'push stream: p99', value: p.p99, unit: 'ms', target: { max: 300 } },
    { figure: 'push stream: max', value: p.max, unit: 'ms', target: { max: 1000 } },
    { figure: `status-list polling (TTL ${POLL_TTL_MS} ms): p50`, value: q.p50, unit: 'ms' },
    { figure: `status-list polling (TTL ${POLL_TTL_MS} ms): p99`, value: q.p99, unit: 'ms' },
    { figure: `status-list polling (TTL ${POLL_TTL_MS} ms): max`, value: q.max, unit: 'ms' },
  ],
  notes: [
    'push: the issuer writes each revocation SET in the revocation\'s transaction and streams it (GET /v1/events); the verifier checks the SET and refuses at once',
    `polling: the verifier refetches a status list at most every statusTtlMs (${POLL_TTL_MS} ms here; 60,000 ms by default), so refusal waits up to the TTL`,
    'watchers re-verify every 1 ms (push) and 5 ms (polling): the figures include that resolution',
  ],
  data: { push: push.latencies, polling: poll.latencies },
})
