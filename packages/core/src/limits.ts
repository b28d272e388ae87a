// The one set of limits for what agentid signs and reads. Verifiers refuse past them; the issuer's
// input validation derives its own from them, so that whatever a verifier would refuse is a 400 at
// the issuer, never a credential the issuer refuses to hand out (a 500) or hands out unusable.

/** Nesting of a JWT payload a verifier reads (objects and arrays; the payload itself is level 1). */
export const MAX_JWT_PAYLOAD_DEPTH = 16
/** Largest Data Integrity credential a verifier reads, bytes of JSON. */
export const MAX_DI_BYTES = 64 * 1024
/** Nesting of a Data Integrity credential a verifier reads (the credential itself is level 1). */
export const MAX_DI_DEPTH = 16
/** JSON values (every object, array and scalar, the credential included) of a Data Integrity credential a verifier reads. */
export const MAX_DI_NODES = 500

/**
 * Limits of the agent claims, checked by `parseAgentClaims` (issuer input: `ERR_INVALID_INPUT`;
 * verifiers: `ERR_MALFORMED`). Derived from the verifier limits above with room for the envelope:
 * - `attestationDepth`: the attestation sits at level 4 of a JWT payload (`payload.vc.credentialSubject.attestation`),
 *   so it may nest `MAX_JWT_PAYLOAD_DEPTH - 3` levels, itself included (13);
 * - `values`: `toolProfile` entries plus the attestation's JSON values (itself included) at most 400,
 *   so that a Data Integrity credential (about 40 values of envelope) stays under `MAX_DI_NODES`;
 * - `claimsBytes`: the claims serialize to at most 32 KiB of JSON, so the JWT (base64url, 4/3) stays
 *   under the verifier's 64 KiB token limit and the Data Integrity credential under `MAX_DI_BYTES`;
 * - no member named `@context` anywhere in the attestation (a verifier refuses an embedded context).
 */
export const CLAIM_LIMITS = Object.freeze({
  text: 1024,
  name: 256,
  tools: 256,
  tool: 512,
  attestationBytes: 8192,
  attestationDepth: MAX_JWT_PAYLOAD_DEPTH - 3,
  values: 400,
  claimsBytes: 32 * 1024,
} as const)

/**
 * Limits of a capability link's `capabilities` and `caveats` as the issuer signs them (a root grant):
 * at most 32 KiB of JSON together, so the signed link stays under the verifier's 64 KiB token limit.
 */
export const CAPABILITY_LIMITS = Object.freeze({ bytes: 32 * 1024 } as const)
