// Generated from schema.cedarschema by scripts/schema-to-ts.mjs (test/schema.test.ts checks that the two agree).

/**
 * The agentid Cedar schema (human-readable Cedar schema format, namespace `AgentId`). Policy folders are
 * validated against it in strict mode.
 * @example
 * import { AGENTID_CEDAR_SCHEMA } from '@agentid/policy'
 * writeFileSync('agentid.cedarschema', AGENTID_CEDAR_SCHEMA) // for editors and the cedar CLI
 */
export const AGENTID_CEDAR_SCHEMA: string = `// The agentid Cedar schema. Policies in a policy folder are validated against it in strict mode.
//
// The principal is always the Agent that holds the DPoP-bound token (or presented the credential).
// When the agent acts for a user (token exchange), the user is the optional attribute principal.user;
// check the issuer too (principal has user && principal.user.issuer == "https://idp.example") before
// trusting principal.user == AgentId::User::"alice": a user id is unique only at its issuer.
namespace AgentId {
  type Model = {
    name: String,
    version: String,
    provider?: String,
  };

  // A user an agent acts for: entity id = the user's "sub" at its identity provider.
  entity User = {
    issuer?: String,
  };

  // An agent: entity id = its DID. Every claim of its identity credential, as issued.
  entity Agent = {
    purpose: String,
    controller: String,
    model: Model,
    policyTier: String,
    // public | internal | confidential | restricted
    dataAccessClass: String,
    // The same class as a number (public 0, internal 1, confidential 2, restricted 3), for "<=" in policies.
    dataAccessLevel: Long,
    // The tool identifiers the credential lists (empty when it names a profile instead).
    toolProfile: Set<String>,
    // The profile name, when the credential names a profile instead of listing tools.
    toolProfileName?: String,
    // True when the issuer verified attestation evidence for the credential (claim attestation.verified).
    attested: Bool,
    // The kinds of evidence the issuer verified: "eat", "sigstore", "nitro".
    attestationKinds: Set<String>,
    // The build digests bound by verified Sigstore provenance, as "sha256:<hex>" or "sha512:<hex>".
    attestedDigests: Set<String>,
    // The PCR0 values of verified Nitro documents (hex): the enclave image measured.
    attestedPcr0: Set<String>,
    user?: User,
  };

  // An MCP server: entity id = the server id the guard or gateway was configured with.
  entity McpServer;

  // A tool: entity id = "<server>/<name>", parent = its McpServer.
  entity Tool in [McpServer] = {
    name: String,
    server: String,
    // "<server>/<name>", the entity id as a string (Cedar has no string concatenation).
    qualifiedName: String,
  };

  // An MCP resource: entity id = "<server>/<uri>", parent = its McpServer.
  entity Resource in [McpServer] = {
    uri: String,
    server: String,
    // "<server>/<uri>", the entity id as a string (Cedar has no string concatenation).
    qualifiedName: String,
  };

  // An MCP prompt: entity id = "<server>/<name>", parent = its McpServer.
  entity Prompt in [McpServer] = {
    name: String,
    server: String,
    // "<server>/<name>", the entity id as a string (Cedar has no string concatenation).
    qualifiedName: String,
  };

  // A workflow: entity id = the workflow id.
  entity Workflow;

  // One RFC 9396 authorization_details entry of the access token.
  type AuthorizationDetail = {
    type: String,
    actions: Set<String>,
    locations: Set<String>,
    datatypes: Set<String>,
    identifiers: Set<String>,
  };

  // One (type, action, location) of the authorization details, flattened so that a policy can test it
  // with contains (location "" when the entry lists no locations).
  type AuthorizationGrant = {
    type: String,
    action: String,
    location: String,
  };

  // A human's approval of this call, verified before the decision (present only then).
  type Approval = {
    approverId: String,
    approver: String,
    // The approver group the request named ("" for the approvers of the agent's controller).
    group: String,
    // True when the approver is the user the agent acts for.
    selfApproval: Bool,
  };

  // A hop of the call's lineage: the purpose of the agent that signed it, and its command
  // ("tools/call fraud.check", "POST /v1/pay").
  type LineageStep = {
    purpose: String,
    command: String,
  };

  // A hop of the lineage that its callee answered with a signed receipt: the hop's signer's purpose, its
  // command, and the outcome the callee signed ("ok", "error", ...).
  type LineageAnswer = {
    purpose: String,
    command: String,
    outcome: String,
  };

  // A hop of the lineage that its callee answered with a signed receipt, with its exact target: the hop's
  // signer's purpose, its target ("mcp://checkout/fraud.check") and command, and the outcome the callee
  // signed. answered names no target: an "ok" from whichever server a hop called (a lookalike fraud.check
  // an agent was steered to) counts there; here only the server named.
  type LineageAnsweredCall = {
    purpose: String,
    target: String,
    command: String,
    outcome: String,
  };

  // A call of a lineage hop: its exact target ("mcp://treasury/payments.charge") and command.
  type LineageCall = {
    target: String,
    command: String,
  };

  // A hop of the lineage carrying a human approval whose receipt verified (verifier.verifyApproval, for that
  // very hop: its signer, target, command, arguments and transaction). A hop that only names an approval
  // (its apr claim, no receipt sent or none verified) gives none.
  type LineageApproval = {
    // The approved hop's signer's purpose, command and target.
    purpose: String,
    command: String,
    target: String,
    // The approver, as certified in the approver credential.
    approverId: String,
    approver: String,
    // The approver group the request named ("" for the approvers of the agent's controller).
    group: String,
    // True when the approver is the user the agent acts for.
    selfApproval: Bool,
  };

  // The verified chain of custody of the call (present only when the call carried one and it verified).
  // Every hop is in it, the call being decided last (its signer is the principal). Sets hold every hop's
  // value; order is in trail.
  type Lineage = {
    transactionId: String,
    // Number of hops (calls), the call being decided included; receipts are not hops.
    hopCount: Long,
    // Number of entries, hops and receipts.
    entryCount: Long,
    // What the first hop names as the origin of the transaction ("request", "grant", "approval"; "" for none),
    // as asserted by the first agent.
    originKind: String,
    // The transaction started from a human: originKind is "request" (asserted by the first agent), or the
    // first hop carries a verified approval (approvals). An "approval" origin without one does not count.
    humanOrigin: Bool,
    // True when a hop carries a verified human approval (approvals is not empty).
    approved: Bool,
    // The commands of the hops with a verified approval ("tools/call payments.charge").
    approvedCommands: Set<String>,
    // The exact calls (target and command) of the hops with a verified approval.
    approvedCalls: Set<LineageCall>,
    // True when a verified approval is a self-approval (the approver is the user the agent acts for).
    selfApproved: Bool,
    // One per hop with a verified approval.
    approvals: Set<LineageApproval>,
    // The approver ids (apv_...) of the verified approvals.
    approvers: Set<String>,
    // The user on whose behalf the transaction runs, when the hops name one.
    user?: String,
    // The DIDs, purposes and controllers of the agents that signed hops.
    actors: Set<String>,
    purposes: Set<String>,
    controllers: Set<String>,
    // The commands and targets of every hop.
    commands: Set<String>,
    targets: Set<String>,
    steps: Set<LineageStep>,
    answered: Set<LineageAnswer>,
    answeredCalls: Set<LineageAnsweredCall>,
    // The first hop's signer (the agent that started the transaction) and its purpose.
    firstActor: String,
    firstPurpose: String,
    // The hops in order, each "<purpose|command>" with "%", "<", ">" and "|" inside them percent-encoded:
    // context.lineage.trail like "*<fraud-screening|tools/call fraud.check>*<*|tools/call payments.charge>"
    // says a fraud.check by a fraud-screening agent came before this payments.charge.
    trail: String,
  };

  type RequestContext = {
    // Number of delegation links between the root and this agent; 0 when it acts on its own credential.
    delegationDepth: Long,
    // The DID at the root of the delegation chain, when there is one.
    delegationRoot?: String,
    authorizationDetails: Set<AuthorizationDetail>,
    authorizationGrants: Set<AuthorizationGrant>,
    // The data class the request asks for, as a name and as a level (see Agent.dataAccessLevel).
    requestedDataClass?: String,
    requestedDataLevel?: Long,
    approval?: Approval,
    lineage?: Lineage,
    // Unix seconds.
    time: Long,
  };

  action callTool appliesTo {
    principal: [Agent],
    resource: [Tool],
    context: RequestContext,
  };

  action listTools appliesTo {
    principal: [Agent],
    resource: [McpServer],
    context: RequestContext,
  };

  action readResource appliesTo {
    principal: [Agent],
    resource: [Resource],
    context: RequestContext,
  };

  action getPrompt appliesTo {
    principal: [Agent],
    resource: [Prompt],
    context: RequestContext,
  };

  action invokeWorkflow appliesTo {
    principal: [Agent],
    resource: [Workflow],
    context: RequestContext,
  };
}
`
