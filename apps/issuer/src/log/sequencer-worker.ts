// The issuer log's sequencer thread (see sequencer.ts): opens its own connection to the issuer's
// database (SQLite file or PostgreSQL URL), runs the Sequencer on each request of the event loop and
// answers with its report; on 'close' it closes the connection and lets the thread end.
import { parentPort, workerData } from 'node:worker_threads'
import type { Database } from 'better-sqlite3'
import type { IssuerStorage } from '../storage/types.js'
import { Sequencer } from './sequencer.js'
import type { SequencerEngine, SequencerKeys, SequencerReply, SequencerRequest } from './sequencer-thread.js'

const port = parentPort!
const engine = workerData as SequencerEngine

function describe(error: unknown): { message: string; code?: string } {
  const e = error as { message?: unknown; code?: unknown }
  return { message: String(e?.message ?? error), ...(typeof e?.code === 'string' ? { code: e.code } : {}) }
}

const post = (reply: SequencerReply) => port.postMessage(reply)

let sequencer: Sequencer | undefined
// Requests run one at a time, in order (the event loop never sends two turns at once, but 'close' may follow one).
let queue: Promise<void> = Promise.resolve()

// Only the engine in use is loaded (the thread's start delays the issuer's).
async function openStorage(): Promise<{ storage: IssuerStorage; write?: <T>(transaction: () => Promise<T>) => Promise<T> }> {
  if (engine.kind === 'postgres') return { storage: await (await import('../storage/pg.js')).openPgStorage(engine.url, { max: 3 }) }
  const [{ openWriterConnection }, { Store }, { SqliteStorage }] = await Promise.all([import('../db/open.js'), import('../domain/store.js'), import('../storage/sqlite.js')])
  // The file is already migrated by the issuer: a second connection with its settings, no migration.
  const db = openWriterConnection(engine.file)
  return { storage: new SqliteStorage(new Store(db)), write: (transaction) => retryWhileBusy(db, transaction) }
}

// The tile and checkpoint transaction, retried while the group-commit writer holds the file. SQLite's
// own busy handler sleeps 1, 2, 5, 10 … 100 ms between tries, and the writer, busy under load, took
// the lock again in every gap: checkpoints came up to 0.8 s late. Here the transaction's BEGIN fails at
// once when busy and is tried again every 0.25 ms (this thread may block; each try is one failed lock
// attempt), for at most 5 s like the connection's busy_timeout, which reads keep.
const nap = new Int32Array(new SharedArrayBuffer(4))
async function retryWhileBusy<T>(db: Database, transaction: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000
  const timeout = db.pragma('busy_timeout', { simple: true }) as number
  db.pragma('busy_timeout = 0')
  try {
    for (;;) {
      try {
        return await transaction()
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw error
        Atomics.wait(nap, 0, 0, 0.25)
      }
    }
  } finally {
    db.pragma(`busy_timeout = ${timeout}`)
  }
}

// Connects at once, while the event loop unseals the log key; 'load' brings it.
const opened = openStorage()
opened.catch(() => {}) // reported by the 'load' that awaits it

async function open(keys: SequencerKeys): Promise<Sequencer> {
  const { storage, write } = await opened
  return new Sequencer({
    storage,
    ...keys,
    clock: Date.now,
    ...(write ? { write } : {}),
    onError: (message, error) => post({ type: 'error', message, ...(error === undefined ? {} : { error: describe(error) }) }),
  })
}

port.on('message', (msg: SequencerRequest) => {
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
      post({ type: 'failed', id: msg.id, error: describe(error) })
    }
  })
})
