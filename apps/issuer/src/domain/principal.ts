import { AgentIdError } from '@agentid/core'

/** Who is calling: decides what they may see and do. */
export type Principal = { kind: 'admin' } | { kind: 'orchestrator'; id: string; name: string } | { kind: 'cli' }

/** Throws ERR_FORBIDDEN unless `actor` is the admin (or the local CLI). */
export function requireAdmin(actor: Principal): void {
  if (actor.kind !== 'admin' && actor.kind !== 'cli') throw new AgentIdError('ERR_FORBIDDEN', 'admin key required')
}

/** The actor as audit events name it. */
export function actorName(actor: Principal): string {
  return actor.kind === 'orchestrator' ? `orchestrator:${actor.id}` : actor.kind
}
