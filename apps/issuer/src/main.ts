#!/usr/bin/env node
// The issuer as a process: `agentid-issuer` (or `agentid serve`). Configuration from the environment.
import { configFromEnv } from './config.js'
import { startIssuer } from './run.js'

/** Starts the issuer, prints how to reach it, and stops gracefully on SIGTERM/SIGINT. */
export async function main(overrides: Parameters<typeof configFromEnv>[1] = {}): Promise<void> {
  const config = configFromEnv(process.env, overrides)
  const issuer = await startIssuer(config)
  const banner = { msg: 'agentid issuer listening', url: issuer.url, issuer: issuer.service.issuer.did, dataDir: config.dataDir }
  process.stderr.write(`${JSON.stringify(banner)}\n`)
  if (issuer.generatedAdminKey) {
    process.stderr.write(`\nA new admin key was generated. It is shown this once; keep it:\n\n  export AGENTID_ADMIN_KEY=${issuer.generatedAdminKey}\n\n`)
  }
  const shutdown = (signal: string) => {
    process.stderr.write(`${JSON.stringify({ msg: 'shutting down', signal })}\n`)
    issuer.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${JSON.stringify({ msg: 'shutdown failed', error: String(error) })}\n`)
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
}

// Run when executed directly (not when imported by the CLI).
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/agentid-issuer')) {
  main().catch((error: unknown) => {
    const e = error as { code?: string; message?: string }
    process.stderr.write(`agentid issuer: ${e.code ?? 'ERR_INTERNAL'}: ${e.message ?? String(error)}\n`)
    process.exit(1)
  })
}
