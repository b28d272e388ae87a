import type { Command } from 'commander'
import { UsageError } from '../errors.js'
import { emit, localBaseUrl, type Context } from '../context.js'

/** `agentid admin-key --db FILE`: a new admin key, its hash stored, the key printed once. */
export function registerAdminKey(program: Command, ctx: Context): void {
  program
    .command('admin-key')
    .description('generate a new admin key for a local issuer database (the previous key stops working)')
    .option('--db <file>', "the issuer's database file (required)")
    .option('--data-dir <dir>', "folder of the master secret (default: $AGENTID_DATA_DIR, else the database file's folder)")
    .option('--json', 'print { "adminKey": "…" }')
    .action(async (options: { db?: string; dataDir?: string; json?: boolean }) => {
      if (options.db === undefined || options.db === '') {
        throw new UsageError('admin-key works on the issuer database only: pass --db FILE (the key is never sent over the network)')
      }
      const [{ newApiKey }, { openIssuerService }] = await Promise.all([import('@agentid/issuer'), import('../local.js')])
      const dataDir = options.dataDir ?? (ctx.env.AGENTID_DATA_DIR || undefined)
      const service = await openIssuerService({
        dbFile: options.db,
        ...(dataDir === undefined ? {} : { dataDir }),
        baseUrl: await localBaseUrl(ctx.env),
        secretInEnv: Boolean(process.env.AGENTID_SECRET),
      })
      try {
        const adminKey = newApiKey('admin')
        await service.ensureAdminKey(adminKey)
        emit(ctx, options, { adminKey }, () => `${adminKey}\n`)
        if (!options.json) ctx.io.stderr('\nThe new admin key, shown this once; the previous one no longer works. Keep it:\n  export AGENTID_ADMIN_KEY=<the key above>\n')
      } finally {
        await service.close()
      }
    })
}
