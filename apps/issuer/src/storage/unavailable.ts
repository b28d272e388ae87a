// Errors that say the database could not be reached or did not answer in time (not that the request
// was wrong): the HTTP layer answers them 503 ERR_UNAVAILABLE, which clients retry, instead of a 500
// (or, for a reset connection, a 400 as if the client had hung up).

// SQLSTATE class 08 (connection exception), 57P01-57P03 (server shutting down, cannot connect now),
// 53300 (too many connections), 57014 (statement_timeout / cancelled).
const SQLSTATE = /^(08...|57P0[123]|53300|57014)$/
const NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])
// node-postgres and pg-pool throw these as plain Errors without a code.
const PG_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Connection terminated due to connection timeout)/

/**
 * True when `error`, or an error in its `cause` chain, is the database being unreachable, reset, or
 * too slow (a client-side or server-side timeout).
 * @example
 * databaseUnavailable(Object.assign(new Error('x'), { code: '57P01' })) // true
 */
export function databaseUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown }
    if (typeof code === 'string' && (SQLSTATE.test(code) || NODE.has(code))) return true
    if (typeof message === 'string' && PG_MESSAGES.test(message)) return true
  }
  return false
}
