// End-to-end harness: the real issuer process, the real CLI binary, real HTTP, the real SQLite file.
// Every process and temp dir made here is tracked and removed by `cleanup()` (call it in afterAll).
// Type-check the suite with `npx tsc -p test` (vitest does not type-check).
import { spawn as spawnProcess, execFile, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { createProofOfPossession, generateEd25519KeyPair, signerFromJwk, type AgentClaims, type Ed25519PrivateJwk } from '@agentid/core'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const ISSUER_BIN = join(ROOT, 'apps/issuer/dist/main.js')
export const CLI_BIN = join(ROOT, 'apps/cli/dist/bin.js')

const children = new Set<ChildProcess>()
const tempDirs = new Set<string>()

/** A fresh admin key in the issuer's format: `aid_admin_` + 43 base64url characters. */
export function newAdminKey(): string {
  return `aid_admin_${randomBytes(32).toString('base64url')}`
}

/** A temp directory, removed by `cleanup()`. */
export function tempDir(prefix = 'agentid-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/** The environment without any AGENTID_* variable of the machine running the tests. */
function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AGENTID_')) env[k] = v
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v
  return env
}

export interface ExitStatus { code: number | null; signal: NodeJS.Signals | null }

export interface IssuerProcess {
  url: string
  port: number
  dataDir: string
  dbFile: string
  adminKey: string
  proc: ChildProcess
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>
  /** What the process wrote to stderr so far (logs at warn, the banner). */
  stderr(): string
  /** Resolves once stderr contains `text`. */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>
  /** SIGTERM and wait for the exit. */
  stop(): Promise<ExitStatus>
  /** SIGKILL and wait for the exit. */
  kill(): Promise<ExitStatus>
}

export interface StartOptions {
  dataDir?: string
  port?: number
  adminKey?: string
  env?: Record<string, string>
}

/** Starts `node apps/issuer/dist/main.js` on a temp data dir and a free port; resolves once /healthz answers. */
export async function startIssuer(options: StartOptions = {}): Promise<IssuerProcess> {
  const dataDir = options.dataDir ?? tempDir()
  const port = options.port ?? (await freePort())
  const adminKey = options.adminKey ?? newAdminKey()
  const proc = spawnProcess(process.execPath, [ISSUER_BIN], {
    cwd: ROOT,
    env: cleanEnv({
      AGENTID_DATA_DIR: dataDir,
      AGENTID_HOST: '127.0.0.1',
      AGENTID_PORT: String(port),
      AGENTID_ADMIN_KEY: adminKey,
      AGENTID_LOG_LEVEL: 'warn',
      ...options.env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(proc)
  let err = ''
  const waiters: { text: string; resolve: () => void }[] = []
  const onData = (chunk: Buffer) => {
    err += chunk.toString('utf8')
    if (err.length > 1_000_000) err = err.slice(-500_000)
    for (const w of [...waiters]) if (err.includes(w.text)) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  }
  proc.stderr!.on('data', onData)
  proc.stdout!.on('data', onData)
  const exited = new Promise<ExitStatus>((resolve) => {
    proc.once('exit', (code, signal) => {
      children.delete(proc)
      resolve({ code, signal })
    })
  })
  const url = `http://127.0.0.1:${port}`
  const issuer: IssuerProcess = {
    url,
    port,
    dataDir,
    dbFile: join(dataDir, 'issuer.db'),
    adminKey,
    proc,
    exited,
    stderr: () => err,
    waitForStderr: (text, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (err.includes(text)) return resolve()
        const timer = setTimeout(() => reject(new Error(`issuer never wrote ${JSON.stringify(text)}; stderr:\n${err}`)), timeoutMs)
        waiters.push({ text, resolve: () => { clearTimeout(timer); resolve() } })
      }),
    stop: () => signal(proc, exited, 'SIGTERM'),
    kill: () => signal(proc, exited, 'SIGKILL'),
  }
  await waitHealthy(url, exited, () => err)
  return issuer
}

function signal(proc: ChildProcess, exited: Promise<ExitStatus>, sig: NodeJS.Signals): Promise<ExitStatus> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig)
  return exited
}

/** Starts the issuer again on the same data dir, port and admin key (the previous one must have exited). */
export async function restartIssuer(previous: IssuerProcess): Promise<IssuerProcess> {
  await previous.exited
  return startIssuer({ dataDir: previous.dataDir, port: previous.port, adminKey: previous.adminKey })
}

/** Polls GET /healthz until 200; fails if the process exits first or after `timeoutMs`. */
export async function waitHealthy(url: string, exited?: Promise<ExitStatus>, stderr?: () => string, timeoutMs = 30_000): Promise<void> {
  let gone: ExitStatus | undefined
  void exited?.then((s) => { gone = s })
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (gone) throw new Error(`issuer exited (${JSON.stringify(gone)}) before it was healthy; stderr:\n${stderr?.() ?? ''}`)
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (r.status === 200) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`issuer at ${url} not healthy after ${timeoutMs} ms; stderr:\n${stderr?.() ?? ''}`)
    await sleep(50)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * ms from now until `verifier` refuses `credential` with ERR_REVOKED (any other refusal throws), or
 * Infinity once `limitMs` has passed; it verifies again every `pollMs`.
 */
export async function msUntilRefused(verifier: { verifyAgentCredential(credential: string): Promise<unknown> }, credential: string, limitMs: number, pollMs = 2): Promise<number> {
  const t0 = performance.now()
  for (;;) {
    const error = await verifier.verifyAgentCredential(credential).then(() => null, (e: { code?: string }) => e)
    if (error) {
      if (error.code !== 'ERR_REVOKED') throw new Error(`refused with ${error.code ?? String(error)}, not ERR_REVOKED`)
      return performance.now() - t0
    }
    if (performance.now() - t0 > limitMs) return Infinity
    await sleep(pollMs)
  }
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON (throws with the output when it is not). */
  json<T = any>(): T
}

/** Runs the real CLI binary: `node apps/cli/dist/bin.js ...args`, with only the AGENTID_* variables in `env`. */
export function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_BIN, ...args], { cwd: ROOT, env: cleanEnv(env), timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1) : 0
      resolve({
        code,
        stdout,
        stderr,
        json: () => {
          try {
            return JSON.parse(stdout)
          } catch {
            throw new Error(`CLI ${args.join(' ')} printed no JSON (exit ${code}); stdout:\n${stdout}\nstderr:\n${stderr}`)
          }
        },
      })
    })
  })
}

/** The `ERR_X` of a CLI refusal line `agentid: ERR_X: …` on stderr, or undefined. */
export function cliErrorCode(result: CliResult): string | undefined {
  return /^agentid: (ERR_[A-Z_]+):/m.exec(result.stderr)?.[1]
}

/** Runs the CLI against a running issuer as its admin (`--issuer URL`, key from AGENTID_ADMIN_KEY). */
export function adminCli(issuer: Pick<IssuerProcess, 'url' | 'adminKey'>, args: readonly string[]): Promise<CliResult> {
  return cli([...args, '--issuer', issuer.url], { AGENTID_ADMIN_KEY: issuer.adminKey })
}

export interface ApiResponse {
  status: number
  headers: Headers
  text: string
  /** The parsed JSON body, or undefined when the body is not JSON. */
  body: any
}

export interface ApiOptions {
  /** Bearer key. */
  key?: string
  /** JSON-encoded as the body (content-type application/json unless `headers` says otherwise). */
  json?: unknown
  /** Sent as is. */
  raw?: string | Uint8Array
  headers?: Record<string, string>
  timeoutMs?: number
}

/** One real HTTP request with global fetch. */
export async function api(base: string | { url: string }, method: string, path: string, options: ApiOptions = {}): Promise<ApiResponse> {
  const url = typeof base === 'string' ? base : base.url
  const headers: Record<string, string> = {}
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`
  let body: string | Uint8Array | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.raw !== undefined) {
    body = options.raw
  }
  Object.assign(headers, options.headers)
  const r = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) })
  const text = await r.text()
  let parsed: unknown
  try {
    parsed = text.length ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: r.status, headers: r.headers, text, body: parsed }
}

/** Adds an orchestrator over the admin API (for suites that are not about the CLI). */
export async function addOrchestratorViaApi(issuer: IssuerProcess, name: string): Promise<{ id: string; apiKey: string }> {
  const r = await api(issuer, 'POST', '/v1/orchestrators', { key: issuer.adminKey, json: { name } })
  if (r.status !== 201) throw new Error(`POST /v1/orchestrators: ${r.status} ${r.text}`)
  return r.body
}

/** The issuer's DID from GET /v1/issuer. */
export async function issuerDid(issuer: { url: string }): Promise<string> {
  const r = await api(issuer, 'GET', '/v1/issuer')
  if (r.status !== 200 || typeof r.body?.did !== 'string') throw new Error(`GET /v1/issuer: ${r.status} ${r.text}`)
  return r.body.did
}

/** Valid claims for agent number `i`. */
export function claims(i: number | string = 0, overrides: Partial<AgentClaims> = {}): AgentClaims {
  return {
    purpose: `e2e-${i}`,
    controller: 'did:web:acme.example',
    model: { provider: 'acme', name: 'planner', version: '1.0' },
    toolProfile: ['mcp://erp/tools/invoices.read'],
    policyTier: 'standard',
    dataAccessClass: 'internal',
    ...overrides,
  }
}

export interface AgentHeldBody {
  did: string
  privateJwk: Ed25519PrivateJwk
  body: Record<string, unknown>
}

/** A spawn body in agent-held mode: a new key and its proof of possession for `audience`. */
export async function agentHeldSpawn(audience: string, i: number | string = 0, options: { ttlSec?: number; purpose?: 'spawn' | 'renew'; privateJwk?: Ed25519PrivateJwk } = {}): Promise<AgentHeldBody> {
  const privateJwk = options.privateJwk ?? generateEd25519KeyPair().privateJwk
  const signer = signerFromJwk(privateJwk)
  const proof = await createProofOfPossession({ signer, audience, purpose: options.purpose ?? 'spawn', ttlSec: options.ttlSec ?? 300 })
  return { did: signer.did, privateJwk, body: { keyCustody: 'agent', did: signer.did, proof, ...claims(i) } }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Opens the issuer's SQLite file read-only (better-sqlite3). The caller closes it. */
export function openDbReadOnly(file: string): Database.Database {
  return new Database(file, { readonly: true, fileMustExist: true })
}

export interface DbAudit {
  agents: number
  credentials: number
  orchestrators: number
  revokedAgents: number
  revokedCredentials: number
  /** Every inconsistency found, as readable strings; empty when the database is consistent. */
  problems: string[]
}

/**
 * Audits every row of the issuer database: no agent without a credential, no credential without its
 * agent, no duplicate (status_list_id, status_index), every index inside its list and below its
 * next_index, every revoked credential's bit set and every active one's clear, revoked agents hold
 * no active credential, SQLite's own integrity and foreign-key checks pass.
 */
export function auditDb(file: string): DbAudit {
  const db = openDbReadOnly(file)
  try {
    const problems: string[] = []
    const integrity = db.pragma('integrity_check', { simple: true })
    if (integrity !== 'ok') problems.push(`integrity_check: ${String(integrity)}`)
    const fk = db.pragma('foreign_key_check') as unknown[]
    if (fk.length) problems.push(`foreign_key_check: ${JSON.stringify(fk.slice(0, 5))}`)
    const q = <T>(sql: string) => db.prepare(sql).all() as T[]
    for (const r of q<{ did: string }>('SELECT did FROM agents a WHERE NOT EXISTS (SELECT 1 FROM credentials c WHERE c.agent_did = a.did)')) problems.push(`agent without credential: ${r.did}`)
    for (const r of q<{ id: string }>('SELECT id FROM credentials c WHERE NOT EXISTS (SELECT 1 FROM agents a WHERE a.did = c.agent_did)')) problems.push(`credential without agent: ${r.id}`)
    for (const r of q<{ status_list_id: string; status_index: number; n: number }>('SELECT status_list_id, status_index, count(*) AS n FROM credentials GROUP BY 1, 2 HAVING n > 1')) {
      problems.push(`duplicate status entry ${r.status_list_id}/${r.status_index} (${r.n} credentials)`)
    }
    for (const r of q<{ did: string }>('SELECT did FROM agents a WHERE NOT EXISTS (SELECT 1 FROM orchestrators o WHERE o.id = a.orchestrator_id)')) problems.push(`agent without orchestrator: ${r.did}`)
    for (const r of q<{ did: string }>("SELECT a.did FROM agents a JOIN credentials c ON c.agent_did = a.did WHERE a.status = 'revoked' AND c.revoked_at IS NULL")) problems.push(`revoked agent with active credential: ${r.did}`)
    for (const r of q<{ did: string }>("SELECT did FROM agents WHERE (status = 'revoked') <> (revoked_at IS NOT NULL)")) problems.push(`agent status and revoked_at disagree: ${r.did}`)
    const lists = new Map(q<{ id: string; entries: number; next_index: number; bits: Buffer }>('SELECT id, entries, next_index, bits FROM status_lists').map((l) => [l.id, l]))
    for (const c of q<{ id: string; status_list_id: string; status_index: number; revoked_at: number | null }>('SELECT id, status_list_id, status_index, revoked_at FROM credentials')) {
      const list = lists.get(c.status_list_id)
      if (!list) { problems.push(`credential ${c.id} points at missing list ${c.status_list_id}`); continue }
      if (c.status_index < 0 || c.status_index >= list.entries) problems.push(`credential ${c.id} index ${c.status_index} outside list ${list.id}`)
      if (c.status_index >= list.next_index) problems.push(`credential ${c.id} index ${c.status_index} >= next_index ${list.next_index} of list ${list.id} (would be handed out again)`)
      // W3C Bitstring Status List: index 0 is the left-most (most significant) bit of byte 0.
      const bit = ((list.bits[c.status_index >> 3] ?? 0) >> (7 - (c.status_index & 7))) & 1
      if (bit !== (c.revoked_at === null ? 0 : 1)) problems.push(`credential ${c.id}: status bit ${bit} but revoked_at ${c.revoked_at}`)
    }
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n
    return {
      agents: count('SELECT count(*) AS n FROM agents'),
      credentials: count('SELECT count(*) AS n FROM credentials'),
      orchestrators: count('SELECT count(*) AS n FROM orchestrators'),
      revokedAgents: count("SELECT count(*) AS n FROM agents WHERE status = 'revoked'"),
      revokedCredentials: count('SELECT count(*) AS n FROM credentials WHERE revoked_at IS NOT NULL'),
      problems,
    }
  } finally {
    db.close()
  }
}

/** Asserts the shape of an issuer error: `{ error: { code, message } }`, no stack trace, not a 500. */
export function errorShape(r: ApiResponse): { code: string; message: string } {
  const e = r.body?.error
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') throw new Error(`not an error body (HTTP ${r.status}): ${r.text.slice(0, 500)}`)
  if (/\bat .+:\d+:\d+\)?/.test(r.text) || /"stack"/.test(r.text)) throw new Error(`error body leaks a stack trace: ${r.text.slice(0, 500)}`)
  return e
}

/** Kills every process this harness started and removes its temp dirs. */
export async function cleanup(): Promise<void> {
  await Promise.all(
    [...children].map((proc) => new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })),
  )
  children.clear()
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}
