// The issuer log: the latest checkpoint, its age and witness cosignatures, and what this browser
// checked itself since it last looked: the checkpoint's signature by the log key it pinned the first
// time, and a consistency proof from the checkpoint it saw then (kept in localStorage) to this one.
import { useEffect, useState } from 'preact/hooks'
import { api, type LogView as LogData } from '../api'
import { ago, Empty, ErrorNote, Loading, Time } from './common'
import { b64decode, b64encode, parseCheckpointNote, verifyConsistency, verifyNoteSignature } from '../merkle'

const STORE = 'agentid-console:log'

interface Seen { origin: string; vkey: string; size: number; rootHash: string; at: string }

type Check =
  | { kind: 'first'; pinned: string }
  | { kind: 'consistent'; from: Seen }
  | { kind: 'same'; from: Seen }
  | { kind: 'failed'; reason: string; from?: Seen }

function loadSeen(): Seen | null {
  try {
    const v = JSON.parse(localStorage.getItem(STORE) ?? 'null') as Seen | null
    return v && typeof v.size === 'number' && typeof v.rootHash === 'string' && typeof v.vkey === 'string' ? v : null
  } catch {
    return null
  }
}

async function check(data: LogData, seen: Seen | null): Promise<Check> {
  const cp = data.checkpoint!
  const parsed = parseCheckpointNote(cp.note)
  const vkey = seen && seen.origin === data.origin ? seen.vkey : data.vkey
  if (seen && seen.origin === data.origin && seen.vkey !== data.vkey) return { kind: 'failed', reason: 'the log now presents another key than the one this console pinned', from: seen }
  if (!(await verifyNoteSignature(cp.note, vkey))) return { kind: 'failed', reason: 'the checkpoint is not signed by the log key', ...(seen ? { from: seen } : {}) }
  if (parsed.size !== cp.size || parsed.origin !== data.origin) return { kind: 'failed', reason: 'the checkpoint does not match what the issuer says it is' }
  if (!seen || seen.origin !== data.origin) return { kind: 'first', pinned: data.vkey }
  const c = data.consistency
  if (!c) return { kind: 'failed', reason: 'the issuer sent no consistency proof', from: seen }
  if ('error' in c) return { kind: 'failed', reason: c.error, from: seen }
  if (c.from !== seen.size || c.to !== parsed.size) return { kind: 'failed', reason: 'the proof is for other sizes', from: seen }
  const ok = await verifyConsistency(seen.size, parsed.size, b64decode(seen.rootHash), parsed.rootHash, c.proof.map(b64decode))
  if (!ok) return { kind: 'failed', reason: 'the latest checkpoint does not extend the one this console saw: the log was rewritten', from: seen }
  return seen.size === parsed.size ? { kind: 'same', from: seen } : { kind: 'consistent', from: seen }
}

export function LogView() {
  const [data, setData] = useState<LogData | null>(null)
  const [result, setResult] = useState<Check | null>(null)
  const [error, setError] = useState<unknown>(null)
  const load = async () => {
    setError(null)
    try {
      const seen = loadSeen()
      const d = await api.log(seen ? seen.size : undefined)
      setData(d)
      if (!d.checkpoint) return
      const r = await check(d, seen)
      setResult(r)
      // Remember this checkpoint only when it checked out (a failed check keeps the old one to compare).
      if (r.kind !== 'failed') {
        const parsed = parseCheckpointNote(d.checkpoint.note)
        localStorage.setItem(STORE, JSON.stringify({ origin: d.origin, vkey: seen?.vkey ?? d.vkey, size: parsed.size, rootHash: b64encode(parsed.rootHash), at: new Date().toISOString() } satisfies Seen))
      }
    } catch (e) {
      setError(e)
    }
  }
  useEffect(() => { void load() }, [])

  return (
    <section>
      <h1>Issuer log</h1>
      {error !== null && <ErrorNote error={error} onRetry={() => void load()} />}
      {!data && error === null && <Loading what="the log" />}
      {data && !data.checkpoint && <Empty>The log has no checkpoint yet.</Empty>}
      {data && data.checkpoint && (
        <>
          {!data.healthy && <p class="error" role="alert">The issuer found its stored log inconsistent with its own checkpoints and stopped signing new ones.</p>}
          <dl class="claims">
            <dt>Origin</dt><dd class="mono">{data.origin}</dd>
            <dt>Entries</dt><dd data-testid="log-size">{data.checkpoint.size}</dd>
            <dt>Signed</dt><dd><Time iso={data.checkpoint.createdAt} /> ({ago(data.checkpoint.ageSec)})</dd>
            <dt>Log key</dt><dd class="mono small break">{data.vkey}</dd>
            <dt>Witness cosignatures</dt>
            <dd>{data.checkpoint.cosignatures.length === 0 ? <span class="muted">none on this checkpoint (no witness configured, or not yet cosigned)</span> : (
              <ul class="mono-list">{data.checkpoint.cosignatures.map((c) => <li key={c.witness}>{c.witness} <span class="muted">at <Time iso={c.at} /></span></li>)}</ul>
            )}</dd>
          </dl>
          <h2>Checked in this browser</h2>
          <div data-testid="log-check" role="status">
            {!result && <Loading what="the checks" />}
            {result?.kind === 'first' && <p class="ok">Signature valid. This is the first time this browser looks at this log: its key is now pinned, and the next visit checks that the log only grew.</p>}
            {result?.kind === 'same' && <p class="ok">Signature valid; same checkpoint as when this browser last looked (<Time iso={result.from.at} />).</p>}
            {result?.kind === 'consistent' && <p class="ok">Signature valid; consistent with the checkpoint of size {result.from.size} this browser saw <Time iso={result.from.at} />: the log only grew.</p>}
            {result?.kind === 'failed' && <p class="error" role="alert"><strong>Check failed:</strong> {result.reason}.</p>}
          </div>
          <details>
            <summary>Latest checkpoint (signed note)</summary>
            <pre class="note">{data.checkpoint.note}</pre>
          </details>
          <p class="muted">A full audit (every entry, tiles and witness quorum) is <code>agentid audit verify</code>.</p>
        </>
      )}
    </section>
  )
}
