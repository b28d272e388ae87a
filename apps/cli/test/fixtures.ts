// Shared fixtures of the CLI tests: run() in-process with captured output, a local issuer database
// (IssuerService on a temp SQLite file) and a real issuer listening on port 0 (startIssuer).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AgentClaims } from '@agentid/core'
import { configFromEnv, IssuerService, newApiKey, startIssuer, type IssuerServiceOptions, type RunningIssuer } from '@agentid/issuer'
import { run } from '../src/index.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** The `ERR_X` of `agentid: ERR_X: …` on stderr, if any. */
  errorCode: string | undefined
  /** stdout as JSON. */
  json<T = any>(): T
}

/** Runs the CLI in-process with exactly `env` (no AGENTID_* from the machine running the tests). */
export async function cli(argv: readonly string[], env: Record<string, string> = {}, options: { stdin?: string; signal?: AbortSignal; onStderr?: (s: string) => void } = {}): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const code = await run(argv, {
    stdout: (s) => void (stdout += s),
    stderr: (s) => {
      stderr += s
      options.onStderr?.(s)
    },
    env,
    readStdin: async () => options.stdin ?? '',
    ...(options.signal ? { signal: options.signal } : {}),
  })
  return {
    code,
    stdout,
    stderr,
    errorCode: /^agentid: (ERR_[A-Z_]+):/m.exec(stderr)?.[1],
    json: () => {
      try {
        return JSON.parse(stdout)
      } catch {
        throw new Error(`no JSON on stdout (exit ${code}):\n${stdout}\nstderr:\n${stderr}`)
      }
    },
  }
}

export function claims(purpose = 'invoice triage', controller = 'did:web:acme.example'): AgentClaims {
  return {
    purpose,
    controller,
    model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
    toolProfile: ['mcp://erp/tools/invoices.read'],
    policyTier: 'standard',
    dataAccessClass: 'internal',
  }
}

const dirs: string[] = []

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'agentid-cli-'))
  dirs.push(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** A base URL nothing listens on: status lists of local credentials must come from the database. */
export const UNREACHABLE_BASE_URL = 'http://127.0.0.1:9'

export interface LocalIssuer {
  dir: string
  dbFile: string
  service: IssuerService
  /** `--db <file>` plus the base URL the service signs under. */
  db: string[]
  /** An orchestrator in the database (alice), to spawn agents as. */
  orchestrator: { kind: 'orchestrator'; id: string; name: string }
  spawn(purpose?: string, controller?: string): Promise<{ did: string; credential: string; credentialId: string }>
  close(): Promise<void>
}

/** A fresh issuer database with one orchestrator, `alice`, and the IssuerService that made it. */
export async function localIssuer(options: Partial<IssuerServiceOptions> = {}): Promise<LocalIssuer> {
  const dir = tempDir()
  const dbFile = join(dir, 'issuer.db')
  const service = await IssuerService.open({ dataDir: dir, baseUrl: UNREACHABLE_BASE_URL, ...options })
  const alice = await service.addOrchestrator({ kind: 'cli' }, 'alice')
  const orchestrator = { kind: 'orchestrator' as const, id: alice.id, name: alice.name }
  return {
    dir,
    dbFile,
    service,
    db: ['--db', dbFile, '--base-url', options.baseUrl ?? UNREACHABLE_BASE_URL],
    orchestrator,
    spawn: (purpose, controller) => service.spawn(orchestrator, { keyCustody: 'issuer', ...claims(purpose, controller) }),
    close: () => service.close(),
  }
}

export interface RemoteIssuer {
  issuer: RunningIssuer
  url: string
  adminKey: string
  dataDir: string
  /** `--issuer URL` and the admin key in the environment. */
  env: Record<string, string>
  args: string[]
  close(): Promise<void>
}

/** A real issuer on 127.0.0.1, port 0, in a temp data dir, with a known admin key. */
export async function remoteIssuer(options: { didWebDomain?: string } = {}): Promise<RemoteIssuer> {
  const dataDir = tempDir()
  const adminKey = newApiKey('admin')
  const issuer = await startIssuer(configFromEnv({}, { dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent', adminKey, ...options }))
  return {
    issuer,
    url: issuer.url,
    adminKey,
    dataDir,
    env: { AGENTID_ADMIN_KEY: adminKey },
    args: ['--issuer', issuer.url],
    close: () => issuer.stop(),
  }
}

/** Spawns an agent over HTTP with an orchestrator key (issuer-held key). */
export async function spawnOverHttp(url: string, orchestratorKey: string, purpose?: string): Promise<{ did: string; credential: string; credentialId: string }> {
  const response = await fetch(`${url}/v1/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${orchestratorKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ keyCustody: 'issuer', ...claims(purpose) }),
  })
  if (response.status !== 201) throw new Error(`spawn failed: ${response.status} ${await response.text()}`)
  return (await response.json()) as { did: string; credential: string; credentialId: string }
}
