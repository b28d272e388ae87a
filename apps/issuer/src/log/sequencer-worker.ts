// The issuer log's sequencer thread (see sequencer.ts): opens its own connection to the issuer's
// database (SQLite file or PostgreSQL URL), runs the Sequencer on each request of the event loop and
// answers with its report; on 'close' it closes the connection and lets the thread end.
import { parentPort, workerData } from 'node:worker_threads'
import type { IssuerStorage } from '../storage/types.js'
import { Sequencer, type LogWrite, type PersistLog } from './sequencer.js'
import { describeError, errorOf, type SequencerEngine, type SequencerKeys, type SequencerReply, type SequencerRequest } from './sequencer-thread.js'

const port = parentPort!
const engine = workerData as SequencerEngine

const post = (reply: SequencerReply) => port.postMessage(reply)

let sequencer: Sequencer | undefined
// Requests run one at a time, in order (the event loop never sends two turns at once, but 'close' may follow one).
let queue: Promise<void> = Promise.resolve()

// A SQLite turn's tiles and checkpoint go back to the event loop, which commits them through the
// issuer's group commit, in the writer thread's next batch. Written here, on this connection, the
// transaction contended with the writer for the file's one write lock: it retried its BEGIN every
// 0.25 ms while the writer committed, the writer slept in SQLite's busy handler (≥ 1 ms) while this
// one held the lock, and each turn paid a COMMIT and fsync of its own.
let nextPersist = 1
const persisting = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>()
const persistThroughParent: PersistLog = (write: LogWrite) => new Promise((resolve, reject) => {
  const id = nextPersist++
  persisting.set(id, { resolve, reject })
  post({ type: 'persist', id, write })
})

// Only the engine in use is loaded (the thread's start delays the issuer's).
async function openStorage(): Promise<{ storage: IssuerStorage; persist?: PersistLog }> {
  if (engine.kind === 'postgres') return { storage: await (await import('../storage/pg.js')).openPgStorage(engine.url, { max: 3 }) }
  const [{ openWriterConnection }, { Store }, { SqliteStorage }] = await Promise.all([import('../db/open.js'), import('../domain/store.js'), import('../storage/sqlite.js')])
  // The file is already migrated by the issuer: a second connection with its settings, no migration,
  // that only reads (the events after the tree's end, and at load the tiles and checkpoint).
  return { storage: new SqliteStorage(new Store(openWriterConnection(engine.file))), persist: persistThroughParent }
}

// Connects at once, while the event loop unseals the log key; 'load' brings it.
const opened = openStorage()
opened.catch(() => {}) // reported by the 'load' that awaits it

async function open(keys: SequencerKeys): Promise<Sequencer> {
  const { storage, persist } = await opened
  return new Sequencer({
    storage,
    ...keys,
    clock: Date.now,
    ...(persist ? { persist } : {}),
    onError: (message, error) => post({ type: 'error', message, ...(error === undefined ? {} : { error: describeError(error) }) }),
  })
}

port.on('message', (msg: SequencerRequest) => {
  if (msg.type === 'persisted') {
    // Answers the turn in progress: not queued behind it.
    const p = persisting.get(msg.id)
    persisting.delete(msg.id)
    if (msg.error) p?.reject(errorOf(msg.error))
    else p?.resolve()
    return
  }
  queue = queue.then(async () => {
    try {
      if (msg.type === 'close') {
        await (await opened.catch(() => undefined))?.storage.close()
        post({ type: 'closed', id: msg.id })
        port.close()
        return
      }
      if (msg.type === 'load') {
        sequencer = await open(msg.keys)
        post({ type: 'report', id: msg.id, report: await sequencer.load() })
        return
      }
      if (!sequencer) throw new Error('the sequencer is not loaded')
      post({ type: 'report', id: msg.id, report: msg.type === 'tick' ? await sequencer.tick() : await sequencer.sequence() })
    } catch (error) {
      post({ type: 'failed', id: msg.id, error: describeError(error) })
    }
  })
})
