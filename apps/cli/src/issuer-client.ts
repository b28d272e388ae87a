import type { AgentView, ApprovalView, ApproverView, OrchestratorView, WebhookEventDetail, WebhookEventPage, WebhookEventView } from '@agentid/issuer'

/** What `approvers add` sends: who, and what they may approve. */
export interface ApproverInput {
  name: string
  controllers: string[]
  groups: string[]
  user?: { id: string; issuer?: string }
}

/** The issuer's identity as `GET /v1/issuer` returns it. */
export interface IssuerInfo {
  did: string
  keyId: string
}

/** Filters of `agents list`, passed as the strings the user typed (the issuer validates them). */
export interface AgentQuery {
  status?: string
  controller?: string
  purpose?: string
  orchestrator?: string
  limit?: string
  cursor?: string
}

export interface AgentPage {
  agents: AgentView[]
  nextCursor: string | null
}

export interface AgentRevocation {
  did: string
  revokedCredentials: string[]
  /** Delegations the agent signed or received, with the links below them (issuers with delegation). */
  revokedDelegations?: string[]
  alreadyRevoked: boolean
}

export interface CredentialRevocation {
  id: string
  agent: string
  alreadyRevoked: boolean
}

export interface DelegationRevocation {
  id: string
  /** The link and every link below it that this call revoked. */
  revokedDelegations: string[]
  alreadyRevoked: boolean
}

/**
 * What the CLI does with an issuer, whether it runs elsewhere (`remote.ts`, the HTTP admin API)
 * or its database is at hand (`local.ts`, the same `IssuerService` the routes call). Both throw
 * `AgentIdError` with the issuer's code when it refuses; results have the HTTP API's shapes.
 */
export interface IssuerClient {
  issuer(): Promise<IssuerInfo>
  /** The issuer's DID document when it runs as did:web (as `/.well-known/did.json` serves it), else null. */
  didDocument(): Promise<Record<string, unknown> | null>
  addOrchestrator(name: string): Promise<OrchestratorView & { apiKey: string }>
  listOrchestrators(): Promise<OrchestratorView[]>
  removeOrchestrator(idOrName: string): Promise<OrchestratorView>
  listAgents(query: AgentQuery): Promise<AgentPage>
  getAgent(did: string): Promise<AgentView>
  revokeAgent(did: string, reason: string): Promise<AgentRevocation>
  revokeCredential(id: string, reason: string): Promise<CredentialRevocation>
  /** Revokes a delegation link and every link below it. */
  revokeDelegation(id: string, reason: string): Promise<DelegationRevocation>
  /** Registers an approver; the one-time enrolment link is returned once. */
  addApprover(input: ApproverInput): Promise<ApproverView & { enrolmentUrl: string; enrolmentExpiresAt: string }>
  listApprovers(): Promise<ApproverView[]>
  /** Revokes an approver's credential (status bit) and any pending enrolment. */
  revokeApprover(id: string, reason: string): Promise<{ id: string; alreadyRevoked: boolean }>
  listApprovals(query: { status?: string; limit?: string }): Promise<ApprovalView[]>
  getApproval(id: string): Promise<ApprovalView>
  /** A page of the approval webhook's outbox, newest first (the strings as typed: the issuer validates them). */
  listWebhookEvents(query: { status?: string; limit?: string; cursor?: string }): Promise<WebhookEventPage>
  /** One webhook event with its attempts. */
  getWebhookEvent(id: string): Promise<WebhookEventDetail>
  /** Makes a delivered or abandoned event due again now (same webhook-id). */
  redeliverWebhookEvent(id: string): Promise<WebhookEventView>
  /**
   * The signed status-list credential at `url` when this client holds it without the network (a
   * local database whose issuer publishes that URL); `undefined` otherwise.
   */
  localStatusList(url: string): Promise<string | undefined>
  close(): Promise<void>
}
