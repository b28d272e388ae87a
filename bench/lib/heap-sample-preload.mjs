// Preload (`node --import`) for bench/gateway-alloc.mjs: a first SIGUSR2 starts sampling every allocation of
// the process, those a collection freed included (the inspector's sampling heap profiler with
// includeObjectsCollectedByMinorGC / MajorGC); the next stops it and writes the profile to HEAP_SAMPLE_OUT.
// HEAP_SAMPLE_INTERVAL: mean bytes between samples (default 256). Without HEAP_SAMPLE_OUT it does nothing.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'

const out = process.env.HEAP_SAMPLE_OUT
if (out) {
  const session = new Session()
  session.connect()
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))))
  let sampling = false
  process.on('SIGUSR2', async () => {
    if (!sampling) {
      sampling = true
      await post('HeapProfiler.enable')
      await post('HeapProfiler.startSampling', { samplingInterval: Number(process.env.HEAP_SAMPLE_INTERVAL ?? 256), includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      return
    }
    sampling = false
    const { profile } = await post('HeapProfiler.stopSampling')
    writeFileSync(out, JSON.stringify(profile))
  })
}
