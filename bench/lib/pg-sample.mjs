// Where the database time goes: samples pg_stat_activity for one database every `everyMs` and tallies
// its backends by what they are doing (running a statement, waiting for a lock and which, idle inside
// a transaction: holding its locks while the client thinks), with the statement's first words.
import pg from 'pg'

/**
 * @param {string} adminUrl - a connection URL to the server (the sampler's own connection)
 * @param {string} db - the database whose backends are sampled
 * @returns {Promise<{ stop: () => Promise<{ samples: number, busy: [string, number][] }> }>} busy:
 *   average backends per sample in each state, largest first
 */
export async function sampleActivity(adminUrl, db, everyMs = 10) {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'bench-sampler' })
  await client.connect()
  const tally = new Map()
  let samples = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const t = performance.now()
      const { rows } = await client.query(`SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 40) AS q
        FROM pg_stat_activity WHERE datname = $1 AND application_name <> 'bench-sampler' AND state <> 'idle'`, [db])
      samples++
      for (const r of rows) {
        const what = r.state === 'active'
          ? (r.wait_event_type === 'Lock' ? `waiting for lock ${r.wait_event}` : r.wait_event_type ? `active, ${r.wait_event_type}:${r.wait_event}` : 'active, on CPU')
          : r.state
        const k = `${what} | ${r.q}`
        tally.set(k, (tally.get(k) ?? 0) + 1)
      }
      const wait = everyMs - (performance.now() - t)
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      await client.end()
      return { samples, busy: [...tally].map(([k, v]) => [k, v / Math.max(1, samples)]).sort((a, b) => b[1] - a[1]) }
    },
  }
}
