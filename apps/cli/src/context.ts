import type { Command } from 'commander'
import { UsageError } from './errors.js'
import type { IssuerClient } from './issuer-client.js'
import { json } from './output.js'
import { parseIssuerUrl, remoteClient } from './remote.js'

export type Env = Readonly<Record<string, string | undefined>>

/** Where the CLI writes and reads; the process's streams in `bin.ts`, buffers in tests. */
export interface CliIo {
  stdout(text: string): void
  stderr(text: string): void
  /** All of standard input, for `verify -`. Default: `process.stdin`. */
  readStdin?(): Promise<string>
  /** The environment (AGENTID_ISSUER, AGENTID_ADMIN_KEY, …). Default: `process.env`. */
  env?: Env
  /** Stops `serve` when aborted. Default: SIGTERM or SIGINT. */
  signal?: AbortSignal
}

export interface Context {
  io: CliIo
  env: Env
}

/** Options every command that talks to an issuer takes. */
export interface TargetOptions {
  issuer?: string
  db?: string
  dataDir?: string
  baseUrl?: string
  json?: boolean
}

/** Adds `--issuer`, `--db`, `--data-dir`, `--base-url` and `--json` to a command. */
export function withTarget(command: Command): Command {
  return command
    .option('--issuer <url>', 'a running issuer (default: $AGENTID_ISSUER); admin key from $AGENTID_ADMIN_KEY')
    .option('--db <file>', "work directly on the issuer's database file instead")
    .option('--data-dir <dir>', 'with --db: folder of the master secret (default: $AGENTID_DATA_DIR, else the database file\'s folder)')
    .option('--base-url <url>', "with --db: the issuer's public URL (default: $AGENTID_BASE_URL, as for serve)")
    .option('--json', 'print the result as JSON')
}

/** Whether the options or the environment name an issuer to talk to. */
export function hasTarget(options: TargetOptions, env: Env): boolean {
  return options.db !== undefined || options.issuer !== undefined || Boolean(env.AGENTID_ISSUER)
}

/**
 * Opens the issuer the options name: `--db` (local) or `--issuer`/AGENTID_ISSUER (remote). With
 * `baseUrlHint`, a local issuer without an explicit base URL uses it (verify: the credential's own).
 */
export async function openTarget(ctx: Context, options: TargetOptions, baseUrlHint?: string): Promise<IssuerClient> {
  if (options.db !== undefined && options.issuer !== undefined) throw new UsageError('pass either --issuer or --db, not both')
  if (options.db !== undefined) {
    if (options.db === '') throw new UsageError('--db needs a file name')
    const explicit = options.baseUrl ?? (ctx.env.AGENTID_BASE_URL || undefined)
    const dataDir = options.dataDir ?? (ctx.env.AGENTID_DATA_DIR || undefined)
    // Loaded on demand: the issuer's modules (Veramo, SQLite) take most of a second to import.
    const { openLocal } = await import('./local.js')
    return openLocal({
      dbFile: options.db,
      ...(dataDir === undefined ? {} : { dataDir }),
      baseUrl: await localBaseUrl(ctx.env, explicit ?? baseUrlHint),
      secretInEnv: Boolean(process.env.AGENTID_SECRET),
    })
  }
  if (options.dataDir !== undefined || options.baseUrl !== undefined) throw new UsageError('--data-dir and --base-url apply only with --db')
  const url = options.issuer ?? (ctx.env.AGENTID_ISSUER || undefined)
  if (url === undefined) throw new UsageError('no issuer to talk to: pass --issuer URL (or set AGENTID_ISSUER) or --db FILE')
  return remoteClient({ url: parseIssuerUrl(url), adminKey: ctx.env.AGENTID_ADMIN_KEY }, ctx.io.stderr)
}

/** Opens the target, runs `fn`, and always closes it. */
export async function withClient<T>(ctx: Context, options: TargetOptions, fn: (client: IssuerClient) => Promise<T>): Promise<T> {
  const client = await openTarget(ctx, options)
  try {
    return await fn(client)
  } finally {
    await client.close()
  }
}

/** Prints `value` as JSON with `--json`, else the human rendering. */
export function emit(ctx: Context, options: { json?: boolean }, value: unknown, human: () => string): void {
  ctx.io.stdout(options.json ? json(value) : human())
}

/**
 * The base URL a local IssuerService signs status lists under: the given one, else what `serve`
 * would use with the same environment (AGENTID_BASE_URL, else http://host:port).
 */
export async function localBaseUrl(env: Env, baseUrl?: string): Promise<string> {
  const { configFromEnv } = await import('@agentid/issuer')
  const config = configFromEnv(env, baseUrl === undefined ? {} : { baseUrl })
  return config.baseUrl ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`
}
