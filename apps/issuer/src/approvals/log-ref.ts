// How the issuer's log names an approval request. The log is public (served to anyone, and never
// edited), while a request's id is the capability to read it (GET /v1/approvals/{id}: its call with
// the arguments, its decision and receipt, unauthenticated so agents can wait on it). So log entries
// name a request by the SHA-256 of its id: whoever holds the id can find its entries, nobody else
// learns it. The decision's entry also carries the receipt's digest, which binds it to lineage hops.
import { sha256Hex } from '../domain/issue.js'

/**
 * The name of approval request `id` in the issuer's log: `sha256:` and the hex SHA-256 of the id.
 * @example
 * approvalLogRef('apr_0123456789abcdefghijkl') // 'sha256:…'
 */
export function approvalLogRef(id: string): string {
  return `sha256:${sha256Hex(id)}`
}
