#!/usr/bin/env node
// The gateway as a process: `agentid-gateway --config <file>`.
import { loadGatewayConfig } from './config.js'
import { startGateway } from './gateway.js'

const USAGE = 'usage: agentid-gateway --config <file.json>'

function configPath(argv: readonly string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--config' && argv[i + 1]) return argv[i + 1]!
    if (a.startsWith('--config=') && a.length > 9) return a.slice(9)
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`)
      process.exit(0)
    }
  }
  throw Object.assign(new Error(USAGE), { code: 'ERR_INVALID_INPUT' })
}

/** Starts the gateway from its config file; stops gracefully on SIGTERM/SIGINT, reloads policies on SIGHUP. */
export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const config = await loadGatewayConfig(configPath(argv))
  const gateway = await startGateway(config)
  // The banner, whatever the log level: where agents connect.
  const banner = { msg: 'agentid gateway listening', url: gateway.url, endpoints: gateway.endpoints.map((e) => e.url), policies: gateway.policy.policyCount }
  process.stderr.write(`${JSON.stringify(banner)}\n`)
  const shutdown = (signal: string) => {
    gateway.logger.info({ signal }, 'shutting down')
    gateway.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        gateway.logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGHUP', () => {
    void gateway.reloadPolicies().then((r) => {
      if (r.ok) gateway.logger.info({ policies: r.policies, version: gateway.policy.version }, 'policies reloaded')
      else gateway.logger.error({ err: r.error }, 'policy reload failed; the previous policies stay in force')
    })
  })
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/agentid-gateway')) {
  main().catch((error: unknown) => {
    const e = error as { code?: string; message?: string }
    process.stderr.write(`agentid-gateway: ${e.code ?? 'ERR_INTERNAL'}: ${e.message ?? String(error)}\n`)
    process.exit(1)
  })
}
