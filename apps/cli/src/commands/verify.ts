import type { Command } from 'commander'
import { decodeJwt } from '@agentid/core'
import { createVerifier, type FetchLike, type VerifiedAgent } from '@agentid/verifier'
import { emit, hasTarget, openTarget, withTarget, type Context, type TargetOptions } from '../context.js'
import { UsageError } from '../errors.js'
import type { IssuerClient } from '../issuer-client.js'
import { fields } from '../output.js'
import { cliResolver } from '../resolver.js'

interface VerifyOptions extends TargetOptions {
  trust: string[]
}

/** `agentid verify <jwt|->`. */
export function registerVerify(program: Command, ctx: Context): void {
  withTarget(program.command('verify').argument('<jwt|->', 'an agent identity credential (compact JWT), or - to read it from standard input'))
    .description("verify an agent's identity credential: signature, trusted issuer, validity period, revocation status")
    .option('--trust <did>', 'trust this issuer DID (repeatable); default: the DID of the issuer given by --issuer or --db', collect, [])
    .addHelpText('after', `
The status list is fetched from the URL in the credential. With --db, when that URL cannot be
reached, it is read from the database instead. Exit code 1 when the credential is refused.`)
    .action(async (input: string, options: VerifyOptions) => {
      const token = input === '-' ? (await ctx.io.readStdin!()).trim() : input
      for (const did of options.trust) {
        if (!/^did:[a-z0-9]+:[^\s#?]+$/.test(did)) throw new UsageError(`--trust ${JSON.stringify(did)} is not a DID`)
      }
      if (options.trust.length === 0 && !hasTarget(options, ctx.env)) {
        throw new UsageError('verify needs an issuer to trust: --issuer URL (or AGENTID_ISSUER), --db FILE, or --trust DID')
      }
      const client = hasTarget(options, ctx.env) ? await openTarget(ctx, options, statusBaseUrl(token)) : undefined
      try {
        const agent = await verify(token, options.trust, client)
        emit(ctx, options, agent, () => renderVerified(agent))
      } finally {
        await client?.close()
      }
    })
}

async function verify(token: string, trust: string[], client: IssuerClient | undefined): Promise<VerifiedAgent> {
  // The issuer's DID: to trust it, or to resolve it when it is a did:web among the --trust DIDs.
  const webTrust = trust.some((did) => did.startsWith('did:web:'))
  const issuer = client && (trust.length === 0 || webTrust) ? await client.issuer() : undefined
  const trustedIssuers = trust.length > 0 ? trust : [issuer!.did]
  // Status lists over HTTP from the credential's URL; a local database answers when that fails.
  const fetch: FetchLike = async (url, init) => {
    try {
      return await globalThis.fetch(url, init)
    } catch (cause) {
      const jwt = await client?.localStatusList(url)
      if (jwt === undefined) throw cause
      return { ok: true, status: 200, text: async () => jwt }
    }
  }
  const verifier = createVerifier({
    trustedIssuers,
    fetch,
    memoSize: 1,
    ...(trustedIssuers.some((did) => did.startsWith('did:web:'))
      ? { resolver: cliResolver({ ...(issuer && client ? { issuer: { did: issuer.did, document: () => client.didDocument() } } : {}), fetch: globalThis.fetch }) }
      : {}),
  })
  return verifier.verifyAgentCredential(token)
}

/**
 * The base URL of the issuer that made the credential, read (unverified) from its status-list URL.
 * A local database then signs its status lists under the URL the credential names.
 */
function statusBaseUrl(token: string): string | undefined {
  try {
    const vc = decodeJwt(token).payload.vc as { credentialStatus?: { statusListCredential?: unknown } } | undefined
    const url = vc?.credentialStatus?.statusListCredential
    const match = typeof url === 'string' ? /^(https?:\/\/[^/?#@\s]+(?:\/[^?#@\s]*)?)\/v1\/status-lists\/[1-9][0-9]{0,8}$/.exec(url) : null
    return match?.[1]
  } catch {
    return undefined
  }
}

function renderVerified(agent: VerifiedAgent): string {
  const { purpose, controller, ...rest } = agent.claims
  const time = (sec: number | null) => (sec === null ? null : new Date(sec * 1000).toISOString())
  return 'valid agent credential\n\n' + fields([
    ['agent', agent.did],
    ['issuer', agent.issuer],
    ['credential', agent.credentialId],
    ['issued', time(agent.issuedAt)],
    ['expires', time(agent.expiresAt)],
    ['purpose', purpose],
    ['controller', controller],
    ...Object.entries(rest).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)] as const),
    ['status list', `${agent.status.statusListCredential} #${agent.status.statusListIndex}`],
  ])
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value]
}
