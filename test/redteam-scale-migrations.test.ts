// Red team, scale-out: PostgreSQL schema versions across instances. Three instances started together on
// an empty database (one migration run, one issuer identity); then a newer build's step recorded (an
// additive table and its agentid_migrations row, as a newer instance would) while they run: the running
// older instances keep serving, and an older one restarted is refused with schema_too_new instead of
// running against a schema it does not know. Needs PostgreSQL at 127.0.0.1:5432 (or
// AGENTID_TEST_PG_URL): skipped with the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { agentHeldSpawn, api, cleanup, freePort, newAdminKey, startIssuer } from './harness.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping test/redteam-scale-migrations.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

suite('PostgreSQL schema versions across instances', () => {
  it('concurrent first start migrates once; a newer schema beside running older instances: they keep serving, a restarted one is refused (schema newer than the build)', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    const adminKey = newAdminKey()
    const port = await freePort()
    const env = { AGENTID_DATABASE_URL: db.url, AGENTID_SECRET: randomBytes(32).toString('base64url'), AGENTID_BASE_URL: `http://127.0.0.1:${port}` }
    const instances = await Promise.all([port, undefined, undefined].map((p) => startIssuer({ adminKey, env, ...(p ? { port: p } : {}) })))
    for (const i of instances) closers.push(async () => void (await i.kill()))
    const dids = await Promise.all(instances.map(async (i) => ((await api(i, 'GET', '/v1/issuer')).body as { did: string }).did))
    expect(new Set(dids).size).toBe(1)

    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    closers.push(() => c.end())
    const versions = (await c.query<{ version: number }>('SELECT version FROM agentid_migrations ORDER BY version')).rows.map((r) => r.version)
    expect(versions).toEqual(versions.map((_, i) => i + 1)) // each step once, in order
    const current = versions.length

    // A newer build migrates (additive, as the steps so far are) while these run.
    await c.query('BEGIN')
    await c.query('CREATE TABLE redteam_newer_step (id INTEGER PRIMARY KEY)')
    await c.query('INSERT INTO agentid_migrations (version, name) VALUES ($1, $2)', [current + 1, 'a newer build'])
    await c.query('COMMIT')

    const orch = await api(instances[0]!, 'POST', '/v1/orchestrators', { key: adminKey, json: { name: 'mig' } })
    expect(orch.status, orch.text).toBe(201)
    for (const inst of instances) {
      const a = await agentHeldSpawn(dids[0]!, `mig-${inst.port}`)
      const r = await api(inst, 'POST', '/v1/agents', { key: (orch.body as { apiKey: string }).apiKey, json: a.body })
      expect(r.status, r.text).toBe(201)
    }

    // An older instance restarted: refused at start, with the reason.
    const victim = instances[2]!
    await victim.stop()
    const again = await startIssuer({ adminKey, env }).then(() => 'started', (e: Error) => e.message)
    expect(again).toMatch(/schema version \d+ is newer than this issuer/)
    console.info(again.slice(0, 300))
  })
})
