import type { AuditEvent } from './types.js'

/** The default audit sink: one JSON line per decision on stderr. */
export function stderrAudit(event: AuditEvent): void {
  process.stderr.write(`${JSON.stringify({ msg: 'mcp.decision', ...event })}\n`)
}
