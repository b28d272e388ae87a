import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { AgentIdError } from '@agentid/core'
import { registerAdminKey } from './commands/admin-key.js'
import { registerAgents } from './commands/agents.js'
import { registerApprovals } from './commands/approvals.js'
import { registerOrchestrators } from './commands/orchestrators.js'
import { registerLineage } from './commands/lineage.js'
import { registerPolicy } from './commands/policy.js'
import { registerRevoke } from './commands/revoke.js'
import { registerServe } from './commands/serve.js'
import { registerStatus } from './commands/status.js'
import { registerTlog } from './commands/tlog.js'
import { registerVerify } from './commands/verify.js'
import { registerWebhooks } from './commands/webhooks.js'
import type { CliIo, Context } from './context.js'
import { describeError, ExitStatus, UsageError } from './errors.js'
import { clean, json } from './output.js'

/** Largest input `verify -` reads from standard input. */
const MAX_STDIN_BYTES = 1024 * 1024

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/**
 * Runs the CLI on `argv` (without the node and script paths) and resolves with the exit code:
 * 0 done, 1 refused or failed (`agentid: ERR_X: message` on stderr), 2 usage error.
 * @example
 * const code = await run(['agents', 'list', '--db', 'issuer.db'], { stdout: (s) => out.push(s), stderr: (s) => err.push(s) })
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx: Context = {
    io: { ...io, readStdin: io.readStdin ?? (() => readAll(process.stdin, MAX_STDIN_BYTES)) },
    env: io.env ?? process.env,
  }
  const program = new Command('agentid')
    .description('agentid: run the issuer, manage orchestrators and agents, revoke and verify credentials')
    .version(version, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `
Every command but serve, admin-key and policy talks to a running issuer (--issuer URL or $AGENTID_ISSUER,
admin key from $AGENTID_ADMIN_KEY) or works directly on its database (--db FILE).
Exit codes: 0 done, 1 refused or failed (agentid: ERR_CODE: message), 2 usage error.`)
  registerServe(program, ctx)
  registerOrchestrators(program, ctx)
  registerAgents(program, ctx)
  registerRevoke(program, ctx)
  registerVerify(program, ctx)
  registerStatus(program, ctx)
  registerAdminKey(program, ctx)
  registerPolicy(program, ctx)
  registerApprovals(program, ctx)
  registerWebhooks(program, ctx)
  registerTlog(program, ctx)
  registerLineage(program, ctx)

  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed its message (or the help/version asked for).
      return error.exitCode === 0 ? 0 : 2
    }
    if (error instanceof ExitStatus) return error.exitCode
    if (error instanceof UsageError) {
      io.stderr(`agentid: ${clean(error.message)}\n`)
      return 2
    }
    const { code, message } = describeError(error)
    if (argv.includes('--json')) io.stdout(json({ error: { code, message } }))
    io.stderr(`agentid: ${code}: ${clean(message)}\n`)
    return 1
  }
}

async function readAll(stream: NodeJS.ReadableStream, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)
    size += buffer.length
    if (size > max) throw new AgentIdError('ERR_MALFORMED', `standard input is larger than ${max} bytes; a credential is far smaller`)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
