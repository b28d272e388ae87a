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
