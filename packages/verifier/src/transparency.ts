import { createHash } from 'node:crypto'
import { parseStrictJsonObject, readBodyCapped, VerificationError } from '@agentid/core'
import { checkWitnessPolicy, noteVerifier, parseTlogProof, verifyTlogProof, type NoteVerifier } from '@agentid/tlog'
import type { FetchLike } from './status.js'
import type { VerifiedAgent } from './types.js'

/**
 * Accountable issuance: credentials are accepted only with a C2SP tlog-proof that the issuer logged
 * them in its transparency log, under a checkpoint signed by the log key and cosigned by a quorum of
 * trusted witnesses.
 */
export interface TransparencyOptions {
  /** The log's note verifier key (`GET <issuer>/log/key`), e.g. `issuer.example+1a2b3c4d+AW...`. */
  log: string
  /** The checkpoint origin line. Default: the log key's name. */
  origin?: string
  /** Trusted witnesses' cosignature (type 0x04) verifier keys. */
  witnesses?: readonly string[]
  /**
   * Distinct trusted witnesses that must have cosigned the checkpoint. Default 0 (the log's signature
   * alone). A witness is its key name: two keys of one name count once.
   */
  quorum?: number
  /**
   * Fetch a proof that was not stapled from the issuer, at `<issuer>/v1/log/proof?credential=<jti>`, the
   * issuer's base URL being the one its status-list URL names. Default true; false: stapled proofs only.
   */
  fetchProofs?: boolean
  /** Timeout of one proof fetch. Default 5,000 ms. */
  fetchTimeoutMs?: number
}

/** Largest tlog-proof read from an issuer (a proof is a few hundred bytes plus cosignatures). */
const MAX_PROOF_BYTES = 64 * 1024
const ISSUING_ACTIONS = new Set(['agent.spawned', 'agent.renewed'])

function notLogged(reason: string, message: string, cause?: unknown, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_NOT_LOGGED', message, { ...(cause === undefined ? {} : { cause }), details: { reason, ...details } })
}

/** The proof checks, configured once; `check` runs on a credential's first verification only. */
export class TransparencyCheck {
  readonly #log: NoteVerifier
  readonly #witnesses: NoteVerifier[]
  readonly #options: TransparencyOptions
  readonly #fetch: FetchLike
  readonly #now: () => number

  constructor(options: TransparencyOptions, fetch: FetchLike, now: () => number) {
    if (!options || typeof options.log !== 'string') throw new TypeError('createVerifier: transparency.log must be the log\'s verifier key')
    try {
      this.#log = noteVerifier(options.log)
      this.#witnesses = (options.witnesses ?? []).map((w) => noteVerifier(w))
    } catch (cause) {
      throw new TypeError('createVerifier: transparency keys must be note verifier keys', { cause })
    }
    try {
      checkWitnessPolicy(this.#log, this.#witnesses, options.quorum ?? 0)
    } catch (cause) {
      throw new TypeError(`createVerifier: transparency: ${(cause as Error).message}`, { cause })
    }
    this.#options = options
    this.#fetch = fetch
    this.#now = now
  }

  /**
   * Checks that `token` (the credential's exact text, already verified as `agent`) is the credential an
   * `agent.spawned` or `agent.renewed` entry of the trusted log names, with a proof of inclusion under a
   * checkpoint with the witness quorum. Throws ERR_NOT_LOGGED (`details.reason` says which check).
   */
  async check(token: string, agent: VerifiedAgent, stapled: string | undefined): Promise<void> {
    if (agent.credentialId === null) notLogged('no-credential-id', 'a credential without an id cannot be looked up in the log')
    const text = stapled ?? (await this.#fetchProof(agent))
    let entry: Uint8Array | undefined
    try {
      entry = parseTlogProof(text).extra
      if (!entry) notLogged('no-entry', 'the tlog-proof does not carry the logged entry (extra)')
      verifyTlogProof(text, {
        entry,
        log: this.#log,
        witnesses: this.#witnesses,
        quorum: this.#options.quorum ?? 0,
        ...(this.#options.origin === undefined ? {} : { origin: this.#options.origin }),
        now: Math.floor(this.#now() / 1000),
      })
    } catch (error) {
      if (error instanceof VerificationError && error.code === 'ERR_NOT_LOGGED') throw error
      notLogged(reasonOf(error), 'the tlog-proof does not verify', error)
    }
    let event: Record<string, unknown>
    try {
      event = parseStrictJsonObject(new TextDecoder('utf-8', { fatal: true }).decode(entry))
    } catch (cause) {
      notLogged('entry', 'the logged entry is not a JSON object', cause)
    }
    const details = event.details as Record<string, unknown> | undefined
    const sha = createHash('sha256').update(token).digest('hex')
    if (
      typeof event.action !== 'string' || !ISSUING_ACTIONS.has(event.action) || event.subject !== agent.did ||
      typeof details !== 'object' || details === null || details.credentialId !== agent.credentialId || details.credentialSha256 !== sha
    ) {
      notLogged('entry-mismatch', 'the logged entry does not name this credential', undefined, { action: typeof event.action === 'string' ? event.action : null })
    }
  }

  async #fetchProof(agent: VerifiedAgent): Promise<string> {
    if (this.#options.fetchProofs === false) notLogged('no-proof', 'no tlog-proof was stapled to the credential')
    // The status list is the issuer's own (`<base>/v1/status-lists/<id>`, signed by the same issuer).
    const url = agent.status.statusListCredential
    const at = url.lastIndexOf('/v1/status-lists/')
    if (at < 0) notLogged('no-proof', 'no tlog-proof was stapled and the issuer\'s log cannot be located')
    const proofUrl = `${url.slice(0, at)}/v1/log/proof?credential=${encodeURIComponent(agent.credentialId!)}`
    const signal = AbortSignal.timeout(this.#options.fetchTimeoutMs ?? 5_000)
    let response
    try {
      response = await this.#fetch(proofUrl, { signal, headers: { accept: 'text/plain' } })
    } catch (cause) {
      notLogged('fetch', 'the tlog-proof could not be fetched', cause)
    }
    if (response.status !== 200) notLogged(response.status === 503 ? 'not-yet-logged' : 'fetch', `the issuer answered ${response.status} for the tlog-proof`, undefined, { status: response.status })
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(await readBodyCapped(response, MAX_PROOF_BYTES, signal))
    } catch (cause) {
      notLogged('fetch', 'the tlog-proof could not be read', cause)
    }
  }
}

function reasonOf(error: unknown): string {
  const reason = error instanceof VerificationError ? error.details?.reason : undefined
  return typeof reason === 'string' ? reason : 'proof'
}
