// The issuer log's sequencer thread (see sequencer.ts): opens its own connection to the issuer's
// database (SQLite file or PostgreSQL URL), runs the Sequencer on each request of the event loop and
// answers with its report; on 'close' it closes the connection and lets the thread end.
import { parentPort, workerData } from 'node:worker_threads'
import { openWriterConnection } from '../db/open.js'
import { Store } from '../domain/store.js'
import { openPgStorage } from '../storage/pg.js'
import { SqliteStorage } from '../storage/sqlite.js'
import type { IssuerStorage } from '../storage/types.js'
import { Sequencer } from './sequencer.js'
import type { SequencerInit, SequencerReply, SequencerRequest } from './sequencer-thread.js'

const port = parentPort!
const init = workerData as SequencerInit

function describe(error: unknown): { message: string; code?: string } {
  const e = error as { message?: unknown; code?: unknown }
  return { message: String(e?.message ?? error), ...(typeof e?.code === 'string' ? { code: e.code } : {}) }
}

const post = (reply: SequencerReply) => port.postMessage(reply)

let storage: IssuerStorage | undefined
let sequencer: Sequencer | undefined
// Requests run one at a time, in order (the event loop never sends two turns at once, but 'close' may follow one).
let queue: Promise<void> = Promise.resolve()

async function open(): Promise<Sequencer> {
  // The file is already migrated by the issuer: a second connection with its settings, no migration.
  storage = init.engine.kind === 'sqlite' ? new SqliteStorage(new Store(openWriterConnection(init.engine.file))) : await openPgStorage(init.engine.url, { max: 3 })
  return new Sequencer({
    storage,
    signerKey: init.signerKey,
    vkey: init.vkey,
    origin: init.origin,
    clock: Date.now,
    onError: (message, error) => post({ type: 'error', message, ...(error === undefined ? {} : { error: describe(error) }) }),
  })
}

port.on('message', (msg: SequencerRequest) => {
  queue = queue.then(async () => {
    try {
      if (msg.type === 'close') {
        await storage?.close()
        storage = undefined
        post({ type: 'closed', id: msg.id })
        port.close()
        return
      }
      if (msg.type === 'load') {
        sequencer = await open()
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
