import { dirname } from 'node:path'
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { IssuerConfig } from '@agentid/issuer'
import type { Context } from '../context.js'

interface ServeOptions {
  port?: number
  host?: string
  dataDir?: string
  db?: string
  baseUrl?: string
  didWeb?: string
  logLevel?: string
}

/** `agentid serve`: the issuer's HTTP API, until SIGTERM or SIGINT (graceful). */
export function registerServe(program: Command, ctx: Context): void {
  program
    .command('serve')
    .description('run the issuer HTTP API (stops gracefully on SIGTERM or SIGINT)')
    .option('--port <n>', 'port; 0 picks a free one (default: $AGENTID_PORT, else 8080)', parsePort)
    .option('--host <host>', 'address to listen on (default: $AGENTID_HOST, else 127.0.0.1)')
    .option('--data-dir <dir>', "folder of the database and master secret (default: $AGENTID_DATA_DIR, else the --db file's folder, else ./.agentid)")
    .option('--db <file>', 'database file (default: $AGENTID_DB, else <data-dir>/issuer.db)')
    .option('--base-url <url>', 'public URL, used in status-list URLs (default: $AGENTID_BASE_URL, else http://host:port)')
    .option('--did-web <domain>', 'run as did:web:<domain> (default: $AGENTID_DID_WEB, else did:key)')
    .addOption(new Option('--log-level <level>', 'default: $AGENTID_LOG_LEVEL, else info').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText('after', '\nThe admin key comes from $AGENTID_ADMIN_KEY; without it, one is generated at the first start and printed once.')
    .action(async (options: ServeOptions) => {
      const overrides: Partial<IssuerConfig> = {}
      if (options.port !== undefined) overrides.port = options.port
      if (options.host !== undefined) overrides.host = options.host
      if (options.db !== undefined) overrides.dbFile = options.db
      if (options.baseUrl !== undefined) overrides.baseUrl = options.baseUrl
      if (options.didWeb !== undefined) overrides.didWebDomain = options.didWeb
      if (options.logLevel !== undefined) overrides.logLevel = options.logLevel
      // The secret sits next to the database unless told otherwise, as for the --db commands.
      const dataDir = options.dataDir ?? (ctx.env.AGENTID_DATA_DIR ? undefined : options.db !== undefined ? dirname(options.db) : undefined)
      if (dataDir !== undefined) overrides.dataDir = dataDir
      const { configFromEnv, startIssuer } = await import('@agentid/issuer')
      const config = configFromEnv(ctx.env, overrides)
      const issuer = await startIssuer(config)
      const { stderr } = ctx.io
      stderr(`${JSON.stringify({ msg: 'agentid issuer listening', url: issuer.url, issuer: issuer.service.issuer.did, dataDir: config.dataDir })}\n`)
      if (issuer.generatedAdminKey) {
        stderr(`\nA new admin key was generated. It is shown this once; keep it:\n\n  export AGENTID_ADMIN_KEY=${issuer.generatedAdminKey}\n\n`)
      }
      const signal = await untilStopped(ctx.io.signal)
      stderr(`${JSON.stringify({ msg: 'shutting down', signal })}\n`)
      await issuer.stop()
    })
}

function parsePort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535')
  return Number(value)
}

/** Resolves with what stopped the server: `signal` aborted, or SIGTERM/SIGINT when no signal is given. */
function untilStopped(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    if (signal) {
      if (signal.aborted) resolve('abort')
      else signal.addEventListener('abort', () => resolve('abort'), { once: true })
      return
    }
    const stop = (name: string) => () => {
      process.off('SIGTERM', onTerm)
      process.off('SIGINT', onInt)
      resolve(name) // a second signal now takes the default action: exit at once
    }
    const onTerm = stop('SIGTERM')
    const onInt = stop('SIGINT')
    process.once('SIGTERM', onTerm)
    process.once('SIGINT', onInt)
  })
}
