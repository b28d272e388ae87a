// The issuer's API, described for clients and tooling (OpenAPI 3.1). Kept beside the routes it describes.
const error = { $ref: '#/components/schemas/Error' }
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: error } } }]))
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } })
const bearer = [{ bearer: [] }]
const oauthError = { type: 'object', required: ['error'], properties: { error: { type: 'string' }, error_description: { type: 'string' } } }
const webhookIdParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^evt_[A-Za-z0-9_-]{22}$' } }
const didParam = { name: 'did', in: 'path', required: true, schema: { type: 'string', pattern: '^did:key:z6Mk' } }

/** The OpenAPI document served at `/openapi.json`. */
export function openApiDocument(issuerDid: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: { title: 'agentid issuer', version: '1.0.0', description: `Identity for AI agents. Issuer ${issuerDid}.` },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'orchestrator key (aid_orch_…) or admin key (aid_admin_…)' } },
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } } } },
        Claims: {
          type: 'object',
          required: ['purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass'],
          properties: {
            purpose: { type: 'string', maxLength: 1024 },
            controller: { type: 'string', maxLength: 256 },
            model: { type: 'object', required: ['name', 'version'], additionalProperties: false, properties: { provider: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' } } },
            toolProfile: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 256, uniqueItems: true }] },
            policyTier: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' },
            dataAccessClass: { enum: ['public', 'internal', 'confidential', 'restricted'] },
            attestation: { type: 'object' },
          },
        },
        SpawnRequest: {
          allOf: [{ $ref: '#/components/schemas/Claims' }, {
            type: 'object',
            properties: {
              keyCustody: { enum: ['agent', 'issuer'], default: 'agent' },
              did: { type: 'string', description: 'the agent did:key (optional; must match the proof)' },
              proof: { type: 'string', description: 'proof of possession JWT (typ agentid-pop+jwt, purpose spawn, aud = issuer DID); required for keyCustody agent' },
              lifetimeSec: { type: 'integer', minimum: 60 },
              format: { enum: ['jwt', 'di'], default: 'jwt', description: 'jwt: a JWT VC (VC 1.1); di: a VC 2.0 credential with a DataIntegrityProof (eddsa-rdfc-2022), did:key issuers only' },
              attestationEvidence: { $ref: '#/components/schemas/AttestationEvidence' },
              grantToolProfile: { type: 'boolean', default: false, description: 'also sign a root capability link granting each toolProfile identifier (actions *, maxDataClass = dataAccessClass), returned as delegationChain' },
            },
          }],
        },
        AttestationEvidence: {
          type: 'array', minItems: 1, maxItems: 3,
          description: 'verified against AGENTID_ATTESTATION and bound to the challenge of the proof of possession; recorded as attestation.verified; failures 403 ERR_ATTESTATION_REJECTED with details.check',
          items: { oneOf: [
            { type: 'object', required: ['kind', 'token'], properties: { kind: { const: 'eat' }, token: { type: 'string', description: 'EAT (RFC 9711) JWT, eat_nonce = the challenge' } } },
            { type: 'object', required: ['kind', 'bundle', 'digest'], properties: { kind: { const: 'sigstore' }, bundle: { type: 'object' }, digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } } },
            { type: 'object', required: ['kind', 'document'], properties: { kind: { const: 'nitro' }, document: { type: 'string', description: 'base64 attestation document, nonce = the challenge bytes' } } },
          ] },
        },
        WebhookEvent: {
          type: 'object',
          required: ['id', 'type', 'approval', 'status', 'createdAt', 'nextAttemptAt', 'doneAt', 'attempts', 'lastError'],
          properties: {
            id: { type: 'string', description: 'the webhook-id, the same on every attempt' }, type: { type: 'string' }, approval: { type: 'string' },
            status: { enum: ['pending', 'delivered', 'abandoned'] }, createdAt: { type: 'string', format: 'date-time' },
            nextAttemptAt: { type: ['string', 'null'], format: 'date-time' }, doneAt: { type: ['string', 'null'], format: 'date-time' },
            attempts: { type: 'integer' }, lastError: { type: ['string', 'null'], description: 'HTTP <status> or the kind of failure' },
          },
        },
        IssuedCredential: {
          type: 'object',
          properties: {
            did: { type: 'string' }, format: { enum: ['jwt', 'di'] },
            credential: { oneOf: [{ type: 'string', description: 'JWT VC (format jwt)' }, { type: 'object', description: 'VC 2.0 credential with a Data Integrity proof (format di)' }] }, credentialId: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' },
            status: { type: 'object' }, keyCustody: { enum: ['agent', 'issuer'] }, privateJwk: { type: 'object', description: 'only for keyCustody issuer; returned once, never stored' },
            delegationChain: { type: 'array', items: { type: 'string' }, description: 'with grantToolProfile: the root capability link' },
            spiffeId: { type: 'string', description: 'with AGENTID_TRUST_DOMAIN: spiffe://<trust domain>/agent/<orchestrator name>/<did:key multibase>, also the credential claim spiffeId' },
          },
        },
      },
    },
    paths: {
      '/healthz': { get: { summary: 'liveness', responses: { 200: json({ type: 'object' }) } } },
      '/readyz': { get: { summary: 'readiness: the database answers a read within 5 s', responses: { 200: json({ type: 'object' }), 503: json({ type: 'object' }) } } },
      '/contexts/agentid/v1': { get: { summary: 'the agentid JSON-LD context (https://w3id.org/agentid/v1), the bytes @agentid/core ships (application/ld+json, cached a day)', responses: { 200: { description: 'JSON-LD context', content: { 'application/ld+json': { schema: { type: 'object' } } } } } } },
      '/openapi.json': { get: { summary: 'this document (OpenAPI 3.1)', responses: { 200: json({ type: 'object' }) } } },
      '/v1/issuer': { get: { summary: "the issuer's DID and signing key id", responses: { 200: json({ type: 'object' }) } } },
      '/.well-known/did.json': { get: { summary: 'the issuer DID document (did:web only)', responses: { 200: { description: 'DID document' }, ...errors(404) } } },
      '/v1/challenges': { post: { summary: 'a single-use nonce for a proof of possession', security: bearer, responses: { 201: json({ type: 'object' }), ...errors(401) } } },
      '/v1/agents': {
        post: { summary: 'spawn an agent', security: bearer, requestBody: json({ $ref: '#/components/schemas/SpawnRequest' }), responses: { 201: json({ $ref: '#/components/schemas/IssuedCredential' }), ...errors(400, 401, 403, 409, 413, 415) } },
        get: {
          summary: 'list agents (an orchestrator sees its own)', security: bearer,
          parameters: ['status', 'controller', 'purpose', 'orchestrator', 'limit', 'cursor'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403) },
        },
      },
      '/v1/agents/{did}': { get: { summary: 'an agent, its credentials and their status', security: bearer, parameters: [didParam], responses: { 200: json({ type: 'object' }), ...errors(400, 401, 404) } } },
      '/v1/agents/{did}/renew': { post: { summary: 'a fresh identity credential (proof of possession, purpose renew)', parameters: [didParam], requestBody: json({ type: 'object', required: ['proof'], properties: { proof: { type: 'string' }, lifetimeSec: { type: 'integer' }, format: { enum: ['jwt', 'di'], default: 'jwt' }, attestationEvidence: { $ref: '#/components/schemas/AttestationEvidence' } } }), responses: { 201: json({ $ref: '#/components/schemas/IssuedCredential' }), ...errors(400, 401, 403, 404, 409) } } },
      '/v1/agents/{did}/revoke': { post: { summary: 'revoke an agent and all its credentials', security: bearer, parameters: [didParam], requestBody: json({ type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } }), responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403, 404) } } },
      '/v1/credentials/{id}/revoke': { post: { summary: 'revoke one credential', security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: json({ type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } }), responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403, 404) } } },
      '/v1/agents/{did}/grants': { post: { summary: 'the issuer signs a root capability link (AgentCapabilityCredential) to an active agent', security: bearer, parameters: [didParam], requestBody: json({ type: 'object', required: ['capabilities'], additionalProperties: false, properties: { capabilities: { type: 'array', items: { type: 'object', required: ['resource', 'actions'], properties: { resource: { type: 'string' }, actions: { type: 'array', items: { type: 'string' } } } } }, caveats: { type: 'object', description: 'maxDataClass, remainingDepth, audience, constraints' }, lifetimeSec: { type: 'integer', minimum: 60 } } }), responses: { 201: json({ type: 'object', properties: { id: { type: 'string' }, delegationChain: { type: 'array', items: { type: 'string' } }, expiresAt: { type: 'string', format: 'date-time' } } }), ...errors(400, 401, 403, 404) } } },
      '/v1/delegations/status': { post: { summary: 'register a link the delegator is about to sign (proof of possession, purpose delegate): its id (the jti) and status entry', requestBody: json({ type: 'object', required: ['proof', 'parentId', 'delegatee'], additionalProperties: false, properties: { proof: { type: 'string' }, parentId: { type: 'string' }, delegatee: { type: 'string' } } }), responses: { 201: json({ type: 'object', properties: { id: { type: 'string' }, statusEntry: { type: 'object' }, expiresAt: { type: 'string', format: 'date-time' } } }), ...errors(400, 401, 403, 404, 409) } } },
      '/v1/delegations/{id}/revoke': { post: { summary: 'revoke a delegation and every link below it', security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: json({ type: 'object', required: ['reason'], properties: { reason: { type: 'string' } } }), responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403, 404) } } },
      '/log/checkpoint': { get: { summary: 'the issuer log\'s latest C2SP checkpoint (signed note; witness cosignatures appended as they arrive)', responses: { 200: { description: 'checkpoint', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(503) } } },
      '/log/key': { get: { summary: 'the log\'s C2SP verifier key (vkey); pin it out of band', responses: { 200: { description: 'vkey', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/log/tile/{path}': { get: { summary: 'C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] (hashes) and tile/entries/<N>[.p/<W>] (entry bundles: uint16-BE length-prefixed RFC 8785 JSON events); full tiles are immutable', parameters: [{ name: 'path', in: 'path', required: true, 'x-wildcard': true, description: 'the rest of the path, slashes included', schema: { type: 'string' } }], responses: { 200: { description: 'tile bytes', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errors(404) } } },
      '/v1/log/proof': { get: { summary: 'a C2SP tlog-proof (the entry in extra) for the event that issued ?credential=<id>, or for ?index=<n>', parameters: [{ name: 'credential', in: 'query', schema: { type: 'string' } }, { name: 'index', in: 'query', schema: { type: 'integer', minimum: 0 } }], responses: { 200: { description: 'tlog-proof', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(400, 404, 503) } } },
      '/v1/status-lists/{id}': { get: { summary: 'the signed status-list credential: a JWT by default; a VC 2.0 credential with a Data Integrity proof for Accept application/vc+ld+json or application/ld+json (did:key issuers). ETag per representation, Vary: Accept', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'compact JWT, or the Data Integrity credential', content: { 'application/vc+jwt': { schema: { type: 'string' } }, 'application/vc+ld+json': { schema: { type: 'object' } }, 'application/ld+json': { schema: { type: 'object' } } } }, 304: { description: 'not modified' }, ...errors(404) } } },
      '/approvals/enrol': { get: { summary: "the approver's passkey enrolment page (the one-time token in the URL fragment; WebAuthn registration, user verification required)", responses: { 200: { description: 'page or asset', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/approvals/{id}': { get: { summary: 'the approval page of one request: the canonical call shown as data; approve or deny with the passkey', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: { description: 'page', content: { 'text/html': { schema: { type: 'string' } } } }, ...errors(404) } } },
      '/approvals/assets/webauthn.js': { get: { summary: 'the bundled @simplewebauthn/browser used by the pages (served here, never from a CDN)', responses: { 200: { description: 'page or asset', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/approvals/assets/enrol.js': { get: { summary: 'the enrolment page script', responses: { 200: { description: 'page or asset', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/approvals/assets/approve.js': { get: { summary: 'the approval page script', responses: { 200: { description: 'page or asset', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/approvals/assets/style.css': { get: { summary: "the pages' style sheet", responses: { 200: { description: 'page or asset', content: { 'text/html': { schema: { type: 'string' } } } } } } },
      '/v1/approvers': {
        post: { summary: 'register an approver (admin): { name, for: { controllers?, groups? } } → id and a one-time enrolment link', security: bearer, requestBody: json({ type: 'object' }), responses: { 201: json({ type: 'object' }), ...errors(400, 401, 403) } },
        get: { summary: 'list approvers (admin)', security: bearer, responses: { 200: json({ type: 'object' }), ...errors(401, 403) } },
      },
      '/v1/approvers/{id}': { get: { summary: 'one approver (admin)', security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), ...errors(401, 403, 404) } } },
      '/v1/approvers/{id}/revoke': { post: { summary: 'revoke an approver and its approver credential (admin; { reason })', security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: json({ type: 'object' }), responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403, 404) } } },
      '/v1/enrolments/info': { post: { summary: 'what a one-time enrolment token enrols ({ token }; the token is the credential)', requestBody: json({ type: 'object' }), responses: { 200: json({ type: 'object' }), ...errors(400, 404) } } },
      '/v1/enrolments/options': { post: { summary: 'WebAuthn registration options for an enrolment token', requestBody: json({ type: 'object' }), responses: { 200: json({ type: 'object' }), ...errors(400, 404) } } },
      '/v1/enrolments/verify': { post: { summary: 'verify the WebAuthn registration; the issuer signs the approver credential certifying the passkey', requestBody: json({ type: 'object' }), responses: { 201: json({ type: 'object' }), ...errors(400, 404, 409) } } },
      '/v1/approvals': {
        post: { summary: 'create an approval request for a canonical call (a guarded service: orchestrator or admin key)', security: bearer, requestBody: json({ type: 'object' }), responses: { 201: json({ type: 'object' }), ...errors(400, 401, 403) } },
        get: { summary: 'list approval requests (admin)', security: bearer, responses: { 200: json({ type: 'object' }), ...errors(400, 401, 403) } },
      },
      '/v1/approvals/{id}': { get: { summary: 'one approval request and its decision (?wait=<s> long-polls); the unguessable id is the capability', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), ...errors(400, 404) } } },
      '/v1/approvals/{id}/options': { post: { summary: 'WebAuthn assertion options whose challenge is the SHA-256 of the RFC 8785 canonical call (approve) or of the denial', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), ...errors(404, 409) } } },
      '/v1/approvals/{id}/decision': { post: { summary: 'approve or deny with the passkey assertion; the result is the approval receipt', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: json({ type: 'object' }), responses: { 200: json({ type: 'object' }), ...errors(400, 403, 404, 409) } } },
      '/v1/events': { get: { summary: "the issuer's revocations as signed Security Event Tokens (RFC 8417, typ secevent+jwt, EdDSA; OpenID CAEP session-revoked for an agent, credential-change with change_type revoke for each credential and delegation link) on a server-sent-events stream: each event is id <seq>, event set, data <compact SET>, after an event ready with data { head, from }; resumable with Last-Event-ID; keep-alive comments; at most 16 open streams per client address (429 past it, 503 past 1,024 in all)", parameters: [{ name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string', pattern: '^(0|[1-9][0-9]{0,14})$' } }], responses: { 200: { description: 'the event stream (never ends by itself)', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(400, 429, 503) } } },
      '/.well-known/oauth-authorization-server': { get: { summary: 'OAuth 2.0 authorization server metadata (RFC 8414)', responses: { 200: json({ type: 'object', required: ['issuer', 'token_endpoint', 'jwks_uri'] }) } } },
      '/v1/spiffe/bundle': { get: { summary: 'the SPIFFE trust bundle (JWKS: x509-svid CA certificates, jwt-svid keys); 404 without AGENTID_TRUST_DOMAIN', responses: { 200: json({ type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object' } }, spiffe_sequence: { type: 'integer' }, spiffe_refresh_hint: { type: 'integer' } } }), ...errors(404) } } },
      '/v1/agents/{did}/svids/x509': { post: { summary: "an X.509-SVID for the agent's own key (proof of possession, purpose svid); at most 3,600 s, never past its credential", parameters: [didParam], requestBody: json({ type: 'object', required: ['proof'], properties: { proof: { type: 'string' }, lifetimeSec: { type: 'integer', minimum: 60, maximum: 3600 } } }), responses: { 201: json({ type: 'object', properties: { spiffeId: { type: 'string' }, certificate: { type: 'string', description: 'PEM' }, caCertificate: { type: 'string', description: 'PEM' }, expiresAt: { type: 'string', format: 'date-time' }, thumbprint: { type: 'string', description: 'x5t#S256' } } }), ...errors(400, 401, 403, 404, 409) } } },
      '/v1/agents/{did}/svids/jwt': { post: { summary: 'a JWT-SVID (ES256) for the audiences asked (proof of possession, purpose svid); at most 300 s', parameters: [didParam], requestBody: json({ type: 'object', required: ['proof', 'audience'], properties: { proof: { type: 'string' }, audience: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 8 }] }, lifetimeSec: { type: 'integer', minimum: 10, maximum: 300 } } }), responses: { 201: json({ type: 'object', properties: { spiffeId: { type: 'string' }, token: { type: 'string' }, audience: { type: 'array', items: { type: 'string' } }, expiresAt: { type: 'string', format: 'date-time' } } }), ...errors(400, 401, 403, 404, 409) } } },
      '/v1/jwks': { get: { summary: "the issuer's public signing key (Ed25519) as a JWK set, with kid", responses: { 200: json({ type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: { type: 'object' } } } }) } } },
      '/v1/token': {
        post: {
          summary: 'OAuth 2.0 token endpoint: grant_type client_credentials, client authentication private_key_jwt (RFC 7523, EdDSA by the agent did:key), a DPoP proof (RFC 9449, EdDSA or ES256, server nonce) required; issues a DPoP-bound at+jwt (cnf.jkt) for the resource (RFC 8707) with authorization_details (RFC 9396, type agentid_action), at most 300 s, with an agentid claim (agent claims, identity credential and its status entry). Also RFC 8693 token exchange (when AGENTID_TRUSTED_IDPS is set): subject_token from a trusted IdP and actor_token signed by the agent give a token with sub = the user and act.sub = the agent. agentid_delegation: a delegation chain the details are checked against. Errors are RFC 6749 { error, error_description }',
          parameters: [{ name: 'DPoP', in: 'header', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', required: ['grant_type', 'client_assertion_type', 'client_assertion', 'resource'], properties: {
            grant_type: { enum: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'] }, client_id: { type: 'string' },
            client_assertion_type: { const: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, client_assertion: { type: 'string' },
            resource: { type: 'string', format: 'uri' }, authorization_details: { type: 'string', description: 'JSON array of { type: agentid_action, actions, locations, datatypes?, identifiers? }' },
            expires_in: { type: 'integer', minimum: 1, maximum: 300, default: 120 },
            agentid_delegation: { type: 'string', description: 'JSON array of the delegation chain\'s compact JWT links, root first' },
            subject_token: { type: 'string' },
            subject_token_type: { enum: ['urn:ietf:params:oauth:token-type:access_token', 'urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'] },
            actor_token: { type: 'string' }, actor_token_type: { const: 'urn:ietf:params:oauth:token-type:jwt' },
            requested_token_type: { const: 'urn:ietf:params:oauth:token-type:access_token' }, audience: { type: 'string' },
          } } } } },
          responses: {
            200: json({ type: 'object', required: ['access_token', 'token_type', 'expires_in'], properties: { access_token: { type: 'string' }, token_type: { const: 'DPoP' }, expires_in: { type: 'integer' }, authorization_details: { type: 'array' }, issued_token_type: { type: 'string' } } }),
            400: json(oauthError), 401: json(oauthError),
          },
        },
      },
      '/v1/webhooks/events': { get: {
        summary: "the approval webhook's outbox, newest first (admin): status pending, delivered or abandoned; limit 1 to 500 (default 50); cursor: the previous page's nextCursor",
        security: bearer,
        parameters: [
          { name: 'status', in: 'query', schema: { enum: ['pending', 'delivered', 'abandoned'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string', maxLength: 256 } },
        ],
        responses: { 200: json({ type: 'object', required: ['events', 'nextCursor'], properties: { events: { type: 'array', items: { $ref: '#/components/schemas/WebhookEvent' } }, nextCursor: { type: ['string', 'null'] } } }), ...errors(400, 401, 403) },
      } },
      '/v1/webhooks/events/{id}': { get: {
        summary: 'one webhook event (admin): the body signed and sent, and every attempt (time, duration, HTTP status or kind of failure; never what the receiver answered)',
        security: bearer, parameters: [webhookIdParam],
        responses: { 200: json({ allOf: [{ $ref: '#/components/schemas/WebhookEvent' }, { type: 'object', properties: { payload: { type: 'object' }, attemptLog: { type: 'array', items: { type: 'object', properties: { attempt: { type: 'integer' }, at: { type: 'string', format: 'date-time' }, durationMs: { type: 'integer' }, status: { type: ['integer', 'null'] }, error: { type: ['string', 'null'] } } } } } }] }), ...errors(400, 401, 403, 404) },
      } },
      '/v1/webhooks/events/{id}/redeliver': { post: {
        summary: 'a delivered or abandoned event due again now, same webhook-id (admin; audited as webhook.redelivered). 409 when no webhook is configured (details.reason webhook_not_configured) or the event is pending (webhook_pending)',
        security: bearer, parameters: [webhookIdParam],
        responses: { 200: json({ type: 'object', required: ['event'], properties: { event: { $ref: '#/components/schemas/WebhookEvent' } } }), ...errors(400, 401, 403, 404, 409) },
      } },
      '/v1/orchestrators': {
        post: { summary: 'register an orchestrator; its API key is returned once', security: bearer, requestBody: json({ type: 'object', required: ['name'], properties: { name: { type: 'string' } } }), responses: { 201: json({ type: 'object' }), ...errors(400, 401, 403, 409) } },
        get: { summary: 'list orchestrators', security: bearer, responses: { 200: json({ type: 'object' }), ...errors(401, 403) } },
      },
      '/v1/orchestrators/{id}': { delete: { summary: "disable an orchestrator's key", security: bearer, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json({ type: 'object' }), ...errors(401, 403, 404) } } },
    },
  }
}
