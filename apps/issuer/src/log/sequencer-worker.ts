// The issuer log's sequencer thread (see sequencer.ts): opens its own connection to the issuer's
// database (SQLite file or PostgreSQL URL), runs the Sequencer on each request of the event loop and
// answers with its report; on 'close' it closes the connection and lets the thread end.
import { parentPort, workerData } from 'node:worker_threads'
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
async function openStorage(): Promise<IssuerStorage> {
  if (engine.kind === 'postgres') return (await import('../storage/pg.js')).openPgStorage(engine.url, { max: 3 })
  const [{ openWriterConnection }, { Store }, { SqliteStorage }] = await Promise.all([import('../db/open.js'), import('../domain/store.js'), import('../storage/sqlite.js')])
  // The file is already migrated by the issuer: a second connection with its settings, no migration.
  return new SqliteStorage(new Store(openWriterConnection(engine.file)))
}

// Connects at once, while the event loop unseals the log key; 'load' brings it.
const storage = openStorage()
storage.catch(() => {}) // reported by the 'load' that awaits it

async function open(keys: SequencerKeys): Promise<Sequencer> {
  return new Sequencer({
    storage: await storage,
    ...keys,
    clock: Date.now,
    onError: (message, error) => post({ type: 'error', message, ...(error === undefined ? {} : { error: describe(error) }) }),
  })
}

port.on('message', (msg: SequencerRequest) => {
  queue = queue.then(async () => {
    try {
      if (msg.type === 'close') {
        await (await storage.catch(() => undefined))?.close()
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
