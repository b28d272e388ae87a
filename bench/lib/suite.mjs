// The contract between run.mjs and a suite: a suite is a script that, when done, calls
// report(result) once. Under run.mjs the result goes back over IPC; alone, it is printed as JSON.
//
// result: {
//   suite: 'verify', title: 'one line',
//   rows: [{ figure, value, unit: 'ops/s' | 'x' | 'MB' | 'ms', target?: { min?, max? }, note?, noisy? }],
//   (noisy: a reason string when the figure cannot be judged; printed instead of met / MISSED)
//   notes?: string[],   // printed under the table
//   data?: object,      // anything else worth keeping in results/<suite>.json
// }

export function report(result) {
  if (process.send) process.send(result, () => process.disconnect())
  else process.stdout.write(JSON.stringify(result, null, 2) + '\n')
}

/** Progress lines go to stderr, so that they never mix with a result. */
export function progress(suite, message) {
  process.stderr.write(`  [${suite}] ${message}\n`)
}
