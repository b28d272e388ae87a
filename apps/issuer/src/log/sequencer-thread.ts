import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { Sequencer, type LogWrite, type PersistLog, type SequencerReport } from './sequencer.js'

/**
 * Where the sequencer thread opens its own connection. On SQLite it only reads: its writes go back
 * to the event loop, which commits them through the issuer's group commit ('persist').
 */
export type SequencerEngine = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string }

/** The log's keys and origin, sent with 'load' (the thread starts, and connects, before they are unsealed). */
export interface SequencerKeys {
  signerKey: string
  vkey: string
  origin: string
}

type WireError = { message: string; code?: string }
export type SequencerRequest =
  | { type: 'load'; id: number; keys: SequencerKeys }
  | { type: 'tick' | 'sequence' | 'close'; id: number }
  | { type: 'persisted'; id: number; error?: WireError }
export type SequencerReply =
  | { type: 'report'; id: number; report: SequencerReport }
  | { type: 'persist'; id: number; write: LogWrite }
  | { type: 'failed'; id: number; error: WireError }
  | { type: 'closed'; id: number }
  | { type: 'error'; message: string; error?: WireError }

/** An error as it crosses threads (message and code). */
export function describeError(error: unknown): WireError {
  const e = error as { message?: unknown; code?: unknown }
  return { message: String(e?.message ?? error), ...(typeof e?.code === 'string' ? { code: e.code } : {}) }
}

export function errorOf(e: WireError): Error {
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {})
}

/** The event loop's side of the sequencer: each call is one turn of it, wherever it runs. */
export interface SequencerHandle {
  /** True when the sequencer runs on its own thread. */
  readonly threaded: boolean
  load(keys: SequencerKeys): Promise<SequencerReport>
  tick(): Promise<SequencerReport>
  sequence(): Promise<SequencerReport>
  /** Ends the thread (after the turn in progress), closing its connection. */
  close(): Promise<void>
}

// The built worker: next to this file in dist/, or in dist/ when this runs from src/ (vitest).
export function sequencerWorkerFile(): URL | undefined {
  for (const rel of ['./sequencer-worker.js', '../../dist/log/sequencer-worker.js']) {
    const url = new URL(rel, import.meta.url)
    if (existsSync(url)) return url
  }
  return undefined
}

/** The sequencer on this thread (an in-memory database, an injected clock, or no built worker file). */
export function sequencerInThread(make: (keys: SequencerKeys) => Sequencer): SequencerHandle {
  let sequencer: Sequencer | undefined
  const loaded = () => {
    if (!sequencer) throw new Error('the sequencer is not loaded')
    return sequencer
  }
  return {
    threaded: false,
    load: (keys) => (sequencer = make(keys)).load(),
    tick: () => loaded().tick(),
    sequence: () => loaded().sequence(),
    close: async () => {},
  }
}

/**
 * The sequencer on a worker thread with its own database connection, started (and connecting) at
 * once. The thread is unreferenced while idle (it never keeps the process alive by itself) and
 * referenced while a turn is awaited. If it dies, the turns awaited fail and the next call starts a
 * new one, which loads the tree again. `persist` (required on SQLite) stores what a turn of the
 * thread asks to, here: the thread's turn waits for it.
 */
export function sequencerOnWorker(file: URL, engine: SequencerEngine, onError: (message: string, error?: unknown) => void, persist?: PersistLog): SequencerHandle {
  if (engine.kind === 'sqlite' && !persist) throw new TypeError('sequencerOnWorker: a SQLite sequencer thread needs persist')
  let worker: Worker | undefined
  let keys: SequencerKeys | undefined
  let closing = false
  let closed: Promise<void> | undefined
  let nextId = 1
  const pending = new Map<number, { resolve: (r: SequencerReport | undefined) => void; reject: (e: unknown) => void }>()
  let loaded: Promise<SequencerReport> | undefined

  const settleAll = (error: unknown) => {
    for (const p of pending.values()) p.reject(error)
    pending.clear()
  }

  const start = (): Worker => {
    const w = new Worker(file, { workerData: engine })
    w.unref()
    w.on('message', (reply: SequencerReply) => {
      if (reply.type === 'error') {
        onError(reply.message, reply.error)
        return
      }
      if (reply.type === 'persist') {
        // The turn in progress waits for this answer; a failure fails the turn, which retries later.
        const answer = (error?: unknown) => w.postMessage({ type: 'persisted', id: reply.id, ...(error === undefined ? {} : { error: describeError(error) }) } satisfies SequencerRequest)
        persist!(reply.write).then(() => answer(), answer)
        return
      }
      const p = pending.get(reply.id)
      if (!p) return
      pending.delete(reply.id)
      if (pending.size === 0) w.unref()
      if (reply.type === 'report') p.resolve(reply.report)
      else if (reply.type === 'closed') p.resolve(undefined)
      else p.reject(errorOf(reply.error))
    })
    w.on('error', (error) => onError('the sequencer thread failed', error))
    w.on('exit', (code) => {
      if (worker === w) worker = undefined
      loaded = undefined
      settleAll(new Error(`the sequencer thread exited (${code})`))
    })
    return w
  }

  const send = (type: 'load' | 'tick' | 'sequence' | 'close'): Promise<SequencerReport | undefined> => {
    if (!worker) {
      if (type === 'close') return Promise.resolve(undefined)
      worker = start()
    }
    const w = worker
    const id = nextId++
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject })
      w.ref() // a process awaiting a turn stays alive until it is answered
      w.postMessage((type === 'load' ? { type, id, keys: keys! } : { type, id }) satisfies SequencerRequest)
    })
  }

  const load = (): Promise<SequencerReport> => (loaded ??= send('load') as Promise<SequencerReport>)
  const turn = async (type: 'tick' | 'sequence'): Promise<SequencerReport> => {
    if (closing) throw new Error('the sequencer is closed')
    if (!keys) throw new Error('the sequencer is not loaded')
    if (!loaded) await load() // a new thread after one died
    return (await send(type))!
  }

  worker = start()
  return {
    threaded: true,
    load: (k) => {
      keys = k
      return load()
    },
    tick: () => turn('tick'),
    sequence: () => turn('sequence'),
    // Every caller waits for the same end of the thread.
    close: () => (closed ??= (async () => {
      closing = true
      const w = worker
      if (!w) return
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()))
      await send('close').catch(() => {})
      // The answer unreferenced the thread: referenced again, it keeps the process alive until it has
      // exited (a process awaiting only this, such as `agentid serve` stopping, ended with code 13).
      w.ref()
      await exited
    })()),
  }
}
