// Public API of @agentid/cli: run the CLI in-process (bin.ts and tests).
export { run } from './cli.js'
export type { CliIo } from './context.js'
