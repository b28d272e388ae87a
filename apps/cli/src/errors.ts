import { AgentIdError, type AgentIdErrorCode } from '@agentid/core'

/** A mistake in how the CLI was called (missing target, bad flag combination): exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/**
 * A command that has printed its result and ends with a given exit code (e.g. `policy test`: 3 for a
 * decision that is not the expected one). Not an error message: run() returns the code and prints nothing.
 */
export class ExitStatus extends Error {
  override name = 'ExitStatus'
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`)
  }
}

/**
 * Codes the CLI reports that no agentid service returns, so they are not in `AgentIdErrorCode`:
 * `ERR_UNREACHABLE` (no answer from the issuer URL) and `ERR_BAD_RESPONSE` (an answer that is not
 * the agentid API's).
 */
export type CliErrorCode = 'ERR_UNREACHABLE' | 'ERR_BAD_RESPONSE'

/** A failure the CLI itself detects while talking to an issuer: exit code 1. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(
    readonly code: CliErrorCode,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
  }
}

/** The code and message printed for a failure (`agentid: CODE: message`). */
export function describeError(error: unknown): { code: AgentIdErrorCode | CliErrorCode; message: string } {
  if (error instanceof AgentIdError || error instanceof CliError) {
    // Local internal errors: the operator runs this process, so the cause helps and leaks nothing.
    const cause = error.code === 'ERR_INTERNAL' && error.cause instanceof Error ? ` (${error.cause.message})` : ''
    return { code: error.code, message: `${error.message}${cause}` }
  }
  return { code: 'ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) }
}
