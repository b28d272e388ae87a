// Why the gateway's fast path builds requestInfo from a class: node --trace-gc-nvp bench/gc-literal-getter.mjs [getter|method|plain]
// Makes 200,000 short-lived objects, each closing over (or holding) a fresh 64-element array, and prints per
// object the bytes allocated and promoted (parsed from this process's own --trace-gc-nvp lines, on stdout).
// V8 allocates the accessor pair behind an object literal's getter in the old generation: a dead old object
// pointing at the young closure, which the scavenger must treat as a root until a mark-compact. `getter`
// promotes ≈ 300 B per object (most of the arrays); `method` and `plain` ≈ 1 B (Node 20, V8 11.3).
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const MODE = process.argv[2] ?? 'getter'
const N = 200_000
if (process.env.GC_LITERAL_CHILD) {
  const make = (i) => {
    const payload = new Array(64).fill(i)
    if (MODE === 'getter') return { get p() { return payload } }
    if (MODE === 'method') return { p() { return payload } }
    return { p: payload }
  }
  let sink = 0
  for (let i = 0; i < N; i++) sink += make(i).p === undefined ? 0 : 1
  if (sink !== N) throw new Error('unreachable')
} else {
  if (!['getter', 'method', 'plain'].includes(MODE)) throw new Error('mode: getter | method | plain')
  const r = spawnSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), MODE], { env: { ...process.env, GC_LITERAL_CHILD: '1' }, encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(r.stderr)
  let allocated = 0, promoted = 0, full = 0
  for (const line of r.stdout.split('\n')) {
    if (!line.includes('pause=')) continue
    const f = Object.fromEntries(line.trim().split(/\s+/).map((kv) => kv.split('=')))
    allocated += Number(f.allocated ?? 0)
    promoted += Number(f.promoted ?? 0)
    if (f.gc === 'mc' || f.gc === 'ms') full++
  }
  console.log(`${MODE}: per object allocated ${(allocated / N).toFixed(0)} B, promoted ${(promoted / N).toFixed(1)} B; ${full} mark-compacts`)
}
