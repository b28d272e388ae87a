#!/usr/bin/env node
// The `agentid` executable: the process's streams wired to run().
import { run } from './index.js'

// `agentid agents list | head`: a closed pipe ends the output, not the process with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw error
})

try {
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  })
} catch (error) {
  process.stderr.write(`agentid: ERR_INTERNAL: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
}
