// The built executable: `node apps/cli/dist/bin.js …` as a child process (built here with tsc -b).
import { execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { localIssuer, removeTempDirs, tempDir, type LocalIssuer } from './fixtures.js'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))
const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url))
const TSC = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url))

/** The environment without the AGENTID_* variables of the machine running the tests. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTID_')))
}

function agentid(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: cleanEnv(), timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? -1) : 0, stdout, stderr })
    })
  })
}

let local: LocalIssuer

beforeAll(async () => {
  execFileSync(process.execPath, [TSC, '-b', 'apps/cli'], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 })
  local = await localIssuer()
}, 180_000)

afterAll(async () => {
  await local?.close()
  removeTempDirs()
})

describe('dist/bin.js', () => {
  it('is built', () => {
    expect(existsSync(BIN)).toBe(true)
  })

  it('prints help and exits 0; an unknown command exits 2', async () => {
    const help = await agentid(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('Usage: agentid')
    const sub = await agentid(['revoke', '--help'])
    expect(sub.code).toBe(0)
    expect(sub.stdout).toContain('--reason')
    expect((await agentid(['frobnicate'])).code).toBe(2)
  })

  it('runs a real command on a database, and reports a refusal with exit 1 and its code', async () => {
    const added = await agentid(['orchestrators', 'add', 'bob', '--db', local.dbFile, '--json'])
    expect(added.code).toBe(0)
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'bob', apiKey: expect.stringMatching(/^aid_orch_/) })
    const refused = await agentid(['status', 'did:key:bogus', '--db', local.dbFile])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^agentid: ERR_INVALID_INPUT: /m)
  })

  it('serves until SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', tempDir(), '--log-level', 'silent'], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
    const url = await new Promise<string>((resolve, reject) => {
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        const line = stderr.split('\n').find((l) => l.includes('agentid issuer listening'))
        if (line) resolve((JSON.parse(line) as { url: string }).url)
      })
      child.once('exit', (code) => reject(new Error(`serve exited early (${code}): ${stderr}`)))
    })
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
