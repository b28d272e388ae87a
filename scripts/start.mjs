// `npm start`: runs the issuer on its embedded SQLite default (./.agentid), shows it working — an
// orchestrator key, an agent spawned, its credential verified, revoked, refused — then keeps serving
// and prints the commands to try it by hand, then the operator console's URL. Ctrl-C stops it gracefully.
import { execFile, spawn as spawnProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { spawn } from '@agentid/client'
import { createVerifier } from '@agentid/verifier'

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'apps/cli/dist/bin.js')
const dataDir = join(root, '.agentid')
const port = process.env.AGENTID_PORT ?? '8080'
const url = `http://127.0.0.1:${port}`

// Development convenience: the quick start keeps its admin key in .agentid/admin.key (mode 0600).
// In production, set AGENTID_ADMIN_KEY from your secret store instead.
mkdirSync(dataDir, { recursive: true, mode: 0o700 })
const keyFile = join(dataDir, 'admin.key')
if (!existsSync(keyFile)) writeFileSync(keyFile, `aid_admin_${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
const adminKey = process.env.AGENTID_ADMIN_KEY ?? readFileSync(keyFile, 'utf8').trim()
const env = { ...process.env, AGENTID_ADMIN_KEY: adminKey, AGENTID_ISSUER: url }

const issuer = spawnProcess(process.execPath, [cli, 'serve', '--data-dir', dataDir, '--port', port, '--log-level', 'warn'], { env, stdio: ['ignore', 'inherit', 'inherit'] })
const stop = () => issuer.kill('SIGTERM')
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
issuer.on('exit', (code) => process.exit(code ?? 0))

async function waitUp() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return
    } catch {}
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`the issuer did not come up on ${url} (is the port taken? set AGENTID_PORT)`)
}

const run = async (...args) => (await promisify(execFile)(process.execPath, [cli, ...args], { env })).stdout

try {
  await waitUp()
  const { did: issuerDid } = await (await fetch(`${url}/v1/issuer`)).json()
  console.log(`\n1. The issuer runs on ${url} as ${issuerDid} (data in ${dataDir}).`)

  const name = `quickstart-${randomBytes(3).toString('hex')}`
  const orchestrator = JSON.parse(await run('orchestrators', 'add', name, '--json'))
  console.log(`2. Orchestrator "${name}" registered with: agentid orchestrators add ${name}`)

  const claims = {
    purpose: 'triage incoming invoices', controller: 'did:web:acme.example',
    model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
    toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal',
  }
  const agent = await spawn({ issuerUrl: url, apiKey: orchestrator.apiKey, claims })
  console.log(`3. Agent spawned (its key never left this process): ${agent.did}`)

  const verifier = createVerifier({ trustedIssuers: [issuerDid], statusTtlMs: 1000 })
  const verified = await verifier.verifyAgentCredential(agent.credential)
  console.log(`4. Verified: ${verified.did} — "${verified.claims.purpose}", data class ${verified.claims.dataAccessClass}, until ${new Date(verified.expiresAt * 1000).toISOString()}`)

  await run('revoke', agent.did, '--reason', 'quick start')
  await new Promise((r) => setTimeout(r, 1100))
  try {
    await verifier.verifyAgentCredential(agent.credential)
    console.log('5. UNEXPECTED: the revoked credential still verifies')
  } catch (error) {
    console.log(`5. Revoked with: agentid revoke ${agent.did.slice(0, 20)}… --reason "quick start" → the verifier now says ${error.code}`)
  }

  console.log(`
Try it yourself in another terminal (the issuer keeps running here; Ctrl-C stops it):

  export AGENTID_ISSUER=${url} AGENTID_ADMIN_KEY=${adminKey}
  export ORCH_KEY=$(npx agentid orchestrators add my-orchestrator --json | node -p 'JSON.parse(require("fs").readFileSync(0)).apiKey')
  curl -s -X POST $AGENTID_ISSUER/v1/agents -H "authorization: Bearer $ORCH_KEY" -H 'content-type: application/json' \\
    -d '{"keyCustody":"issuer","purpose":"demo","controller":"me","model":{"name":"m","version":"1"},"toolProfile":["mcp://demo/tools/echo"],"policyTier":"standard","dataAccessClass":"public"}' > agent.json
  npx agentid verify "$(node -p 'require("./agent.json").credential')"
  npx agentid revoke "$(node -p 'require("./agent.json").did')" --reason "done"
  npx agentid status "$(node -p 'require("./agent.json").did')"

The operator console (agents, delegation graphs, revocation with its blast radius, the log):
  ${url}/console/   — sign in with the admin key (${keyFile}).
`)
} catch (error) {
  console.error(`quick start failed: ${error.stack ?? error}`)
  stop()
  process.exitCode = 1
}
