// Regenerates src/schema.ts from src/schema.cedarschema (test/schema.test.ts fails when they differ).
import { readFileSync, writeFileSync } from 'node:fs'

const dir = new URL('../src/', import.meta.url)
const schema = readFileSync(new URL('schema.cedarschema', dir), 'utf8')
if (/[`\\]|\$\{/.test(schema)) throw new Error('schema.cedarschema must not contain backquotes, backslashes or ${')
writeFileSync(
  new URL('schema.ts', dir),
  `// Generated from schema.cedarschema by scripts/schema-to-ts.mjs (test/schema.test.ts checks that the two agree).

/**
 * The agentid Cedar schema (human-readable Cedar schema format, namespace \`AgentId\`). Policy folders are
 * validated against it in strict mode.
 * @example
 * import { AGENTID_CEDAR_SCHEMA } from '@agentid/policy'
 * writeFileSync('agentid.cedarschema', AGENTID_CEDAR_SCHEMA) // for editors and the cedar CLI
 */
export const AGENTID_CEDAR_SCHEMA: string = \`${schema}\`
`,
)
