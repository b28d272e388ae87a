// Resource servers as separate processes (test/fixtures/verifier-server.mjs): each its own verifier,
// sharing only what the test gives them (a Redis replay cache, the issuer's revocation stream).
import { spawn, type ChildProcess } from 'node:child_process'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { freePort, ROOT } from './harness.js'

export interface VerifierProcess {
  /** Where it listens (http://127.0.0.1:port). */
  url: string
  proc: ChildProcess
  stderr(): string
  /** GET `path` with `headers`: status and JSON body. */
  call(path: string, headers: Record<string, string>): Promise<{ status: number; body: any }>
  mode(): Promise<string>
  stop(): Promise<void>
}

const running = new Set<VerifierProcess>()

export interface VerifierProcessOptions {
  /** Public origin of the resource (audience, and the origin of the URLs DPoP proofs name). */
  origin: string
  trusted: readonly string[]
  redisUrl?: string
  eventsUrl?: string
  eventsMaxBackoffMs?: number
  statusTtlMs?: number
}

export async function startVerifierProcess(o: VerifierProcessOptions): Promise<VerifierProcess> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), ORIGIN: o.origin, TRUSTED: o.trusted.join(',') }
  if (o.redisUrl) env.REDIS_URL = o.redisUrl
  if (o.eventsUrl) env.EVENTS_URL = o.eventsUrl
  if (o.eventsMaxBackoffMs !== undefined) env.EVENTS_MAX_BACKOFF_MS = String(o.eventsMaxBackoffMs)
  if (o.statusTtlMs !== undefined) env.STATUS_TTL_MS = String(o.statusTtlMs)
  const proc = spawn(process.execPath, [join(ROOT, 'test/fixtures/verifier-server.mjs')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString('utf8') })
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`verifier process did not start; stderr:\n${err}`)), 15_000)
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8')
      if (out.includes('listening')) { clearTimeout(timer); resolve() }
    })
    void exited.then(() => { clearTimeout(timer); reject(new Error(`verifier process exited; stderr:\n${err}`)) })
  })
  const url = `http://127.0.0.1:${port}`
  const v: VerifierProcess = {
    url,
    proc,
    stderr: () => err,
    async call(path, headers) {
      const r = await fetch(`${url}${path}`, { headers })
      return { status: r.status, body: await r.json() }
    },
    async mode() {
      const r = await fetch(`${url}/_mode`)
      return ((await r.json()) as { mode: string }).mode
    },
    async stop() {
      running.delete(v)
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(killer)
    },
  }
  running.add(v)
  return v
}

/** Stops every verifier process still running (call in afterAll). */
export async function stopVerifierProcesses(): Promise<void> {
  await Promise.all([...running].map((v) => v.stop()))
}

/**
 * Null when Redis answers PING at `url`, else why not. With AGENTID_REQUIRE_SERVICES=1 the caller fails
 * instead of skipping.
 */
export function redisAbsent(url = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'): Promise<string | null> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    const done = (reason: string | null) => { socket.destroy(); resolve(reason) }
    socket.setTimeout(1000, () => done(`Redis at ${url} did not answer within 1 s`))
    socket.once('error', (e) => done(`Redis at ${url} is not reachable (${e.message})`))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString('utf8').startsWith('+PONG') ? null : `Redis at ${url} answered ${JSON.stringify(d.toString('utf8').slice(0, 40))}`))
  })
}
