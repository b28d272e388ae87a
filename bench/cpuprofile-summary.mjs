// Summarizes a .cpuprofile over the window that profile-cold.mjs printed (the profiler's clock and
// process.hrtime are both monotonic µs): self time per function and per file, in ms, % and µs per call.
//   node bench/cpuprofile-summary.mjs file.cpuprofile window.json [--top 30]
import { readFileSync } from 'node:fs'

const args = process.argv.slice(2)
const file = args[0]
const win = JSON.parse(readFileSync(args[1], 'utf8').trim().split('\n').pop())
const calls = win.calls
const t = args.indexOf('--top')
const top = t === -1 ? 30 : Number(args[t + 1])

const profile = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const times = []
let clock = profile.startTime
for (const d of profile.timeDeltas) times.push((clock += d))
const first = times.findIndex((x) => x >= win.fromUs)
let last = times.length - 1
while (last > 0 && times[last] > win.toUs) last--
if (first === -1 || last < first) throw new Error('the window is not in this profile')
const self = new Map()
const byFile = new Map()
let total = 0
for (let i = first; i <= last; i++) {
  const dt = (times[i + 1] ?? times[i]) - times[i]
  const f = byId.get(profile.samples[i]).callFrame
  const where = f.url ? f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '').replace(/.*\/(packages|bench)\//, '$1/') : ''
  const key = `${f.functionName || '(anonymous)'}  ${where}${f.url ? ':' + (f.lineNumber + 1) : ''}`
  self.set(key, (self.get(key) ?? 0) + dt)
  const group = where || f.functionName
  byFile.set(group, (byFile.get(group) ?? 0) + dt)
  total += dt
}
const ms = (us) => (us / 1000).toFixed(1).padStart(8)
const perCall = (us) => (calls ? `${(us / calls).toFixed(2).padStart(7)} µs/call` : '')
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
console.log(`window ${ms(total)} ms${calls ? `, ${calls} calls, ${(total / calls).toFixed(1)} µs/call` : ''}`)
console.log('\nself time by function')
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ms ${pct(v)} ${perCall(v)}  ${k}`)
console.log('\nself time by file')
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ms ${pct(v)} ${perCall(v)}  ${k}`)
