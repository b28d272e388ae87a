// The group-commit writer thread (see Store.commit): owns a second connection to the issuer file
// (same pragmas, synchronous=FULL) and runs each batch of jobs it receives in one IMMEDIATE
// transaction, one SAVEPOINT per job, then posts back one outcome per job. The fsync of each
// COMMIT happens here, off the issuer's event loop.
import { parentPort, workerData } from 'node:worker_threads'
import { openWriterConnection } from './open.js'
import { prepareOps, runBatch, type WriteOp } from './writer-ops.js'

export interface WriterInit { file: string; sql: Record<string, string> }
export type WriterRequest = { type: 'batch'; id: number; jobs: WriteOp[][] } | { type: 'close' }
export type WriterReply =
  | { type: 'done'; id: number; outcomes: ReturnType<typeof runBatch> }
  | { type: 'failed'; id: number; error: { message: string; code?: string } }

const port = parentPort!
const init = workerData as WriterInit
const db = openWriterConnection(init.file)
const stmts = prepareOps(db, init.sql)

port.on('message', (msg: WriterRequest) => {
  if (msg.type === 'close') {
    db.close()
    port.close()
    return
  }
  let reply: WriterReply
  try {
    reply = { type: 'done', id: msg.id, outcomes: runBatch(db, stmts, msg.jobs) }
  } catch (error) {
    const e = error as { message?: unknown; code?: unknown }
    reply = { type: 'failed', id: msg.id, error: { message: String(e.message ?? error), ...(typeof e.code === 'string' ? { code: e.code } : {}) } }
  }
  port.postMessage(reply)
})
