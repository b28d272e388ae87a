// Garbage collection per cold verifyDelegation call of one build, one build per process (the survivors
// of one build's caches would otherwise be copied while the other's calls are timed):
//   node bench/chain-cold-gc.mjs <checkout> [depth] [calls]     (defaults 8 and 3,000)
// Runs itself again under --trace-gc-nvp: signs 2,400 links of `depth`-link chains (new agents on every
// link: more than the default memo and DID cache hold; POOL_FILE as in chain-cold-count.mjs), makes
// 3,000 cold calls, then `calls` more, and sums V8's trace over those: scavenge and mark-compact pause
// and bytes promoted to the old generation, per call, with the CPU time per call (process.cpuUsage,
// all threads). Allocation-light builds show it as fewer scavenges; what survives them is the cost.
import { spawnSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const [dir, depthArg = '8', callsArg = '3000', child] = process.argv.slice(2)
if (!dir) throw new Error('usage: node bench/chain-cold-gc.mjs <checkout> [depth] [calls]')
const depth = Number(depthArg)
const calls = Number(callsArg)

if (child !== '--child') {
  const run = spawnSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), dir, depthArg, callsArg, '--child'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: process.env })
  if (run.status !== 0) throw new Error(`child failed: ${run.stderr}`)
  let on = false
  const sum = { s: { n: 0, pause: 0, promoted: 0 }, mc: { n: 0, pause: 0, promoted: 0 } }
  let cpu = NaN
  for (const line of run.stdout.split('\n')) {
    if (line.startsWith('MARK start')) on = true
    else if (line.startsWith('MARK end')) { on = false; cpu = Number(line.split(' ')[2]) }
    else if (on && line.includes('gc=')) {
      const kind = /gc=(\w+)/.exec(line)[1]
      const field = (name) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1] ?? 0)
      const s = sum[kind === 's' ? 's' : 'mc']
      s.n++
      s.pause += field('pause')
      s.promoted += field('promoted')
    }
  }
  const per = (x, scale = 1) => ((x * scale) / calls).toFixed(1)
  console.log(`${dir} depth ${depth}: ${per(cpu)} µs CPU per call; scavenges ${sum.s.n}: pause ${per(sum.s.pause, 1000)} µs, promoted ${per(sum.s.promoted)} B per call; mark-compacts ${sum.mc.n}: pause ${per(sum.mc.pause, 1000)} µs, promoted ${per(sum.mc.promoted)} B per call`)
} else {
  process.chdir(fileURLToPath(new URL('..', import.meta.url)))
  const { coldChainCaller } = await import('./lib/chains.mjs')
  const { createVerifier } = await import(pathToFileURL(`${dir}/packages/verifier/dist/index.js`).href)
  const call = await coldChainCaller(createVerifier, depth, 'gc')
  for (let i = 0; i < 3000; i++) await call()
  console.log('MARK start')
  const from = process.cpuUsage()
  for (let i = 0; i < calls; i++) await call()
  const used = process.cpuUsage(from)
  console.log(`MARK end ${used.user + used.system}`)
}
