/**
 * The one rule for resource identifiers that a grant, a token or a policy names (delegation
 * capabilities, authorization_details locations, MCP resource URIs): an identifier must mean the
 * same to every party that reads it. Prefix checks are string checks, but the service that acts on
 * the identifier may resolve it as a URL: `mcp://erp/public/../payroll/run` starts with
 * `mcp://erp/public/` and names `mcp://erp/payroll/run`. So an identifier is refused when its path
 * holds a `.` or `..` segment (also percent-encoded: `%2e`, `%2E`, `.%2e`), an encoded slash or
 * backslash (`%2f`, `%5c`: a server that decodes before resolving sees more segments), a backslash
 * (WHATWG URL parsers read it as `/` in special schemes), or a C0/DEL control character.
 * The query and fragment are not path: they are not inspected.
 * @example
 * isPlainResourceIdentifier('mcp://erp/tools/invoices.read') // true
 * isPlainResourceIdentifier('mcp://erp/public/../payroll/run') // false
 * isPlainResourceIdentifier('mcp://erp/public/%2e%2e/payroll/run') // false
 */
export function isPlainResourceIdentifier(identifier: string): boolean {
  if (typeof identifier !== 'string') return false
  // eslint-disable-next-line no-control-regex
  if (/[\\\x00-\x1f\x7f]/.test(identifier)) return false
  // The path ends at the first '?' or '#' (found without a regular expression's split: this runs for
  // every capability of every delegation link read).
  const query = identifier.indexOf('?')
  const fragment = identifier.indexOf('#')
  const end = query === -1 ? fragment : fragment === -1 ? query : Math.min(query, fragment)
  const path = end === -1 ? identifier : identifier.slice(0, end)
  // Without a '%' nothing is encoded, and a '.' or '..' segment starts the path or follows a '/':
  // the common identifier is settled here, without splitting it into segments.
  if (!path.includes('%')) return !path.startsWith('.') && !path.includes('/.') ? true : noDotSegment(path)
  if (/%(2f|5c)/i.test(path)) return false
  return noDotSegment(path)
}

function noDotSegment(path: string): boolean {
  return !path.split('/').some((segment) => {
    const s = segment.replace(/%2e/gi, '.')
    return s === '.' || s === '..'
  })
}
