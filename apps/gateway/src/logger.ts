// pino-compatible JSON lines (level numbers, time, msg), every line passed through the redactor.
import type { Redactor } from './redact.js'
import type { LogLevelName } from './config.js'

/** A structured logger: one JSON object per line. */
export interface Logger {
  debug(fields: object, msg?: string): void
  info(fields: object, msg?: string): void
  warn(fields: object, msg?: string): void
  error(fields: object, msg?: string): void
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity } as const

export interface LoggerOptions {
  level: LogLevelName
  /** Every line is redacted before it is written. */
  redactor: Redactor
  /** Where lines go. Default: process.stderr. */
  write?: (line: string) => void
  clock?: () => number
}

/**
 * Lines to stderr, gathered for one turn of the event loop and written together: at hundreds of calls
 * a second, one write per audit line would be one system call each (stderr on a pipe is synchronous).
 * Whatever is pending is written before the process exits.
 */
let stderrWriter: ((line: string) => void) | undefined
function stderrBatched(): (line: string) => void {
  if (stderrWriter) return stderrWriter
  let pending: string[] = []
  const flush = () => {
    if (pending.length === 0) return
    const chunk = pending.join('')
    pending = []
    process.stderr.write(chunk)
  }
  process.once('exit', flush)
  stderrWriter = (line) => {
    if (pending.push(line) === 1) setImmediate(flush)
  }
  return stderrWriter
}

/** Errors become `{ type, code, message }` (no stack: it may quote upstream input). */
function serialize(value: unknown): unknown {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown }
    return { type: e.name, ...(e.code === undefined ? {} : { code: e.code }), message: e.message }
  }
  return value
}

/**
 * A logger writing pino-style JSON lines (`{"level":30,"time":…,"msg":…}`) with every registered secret redacted.
 * @example
 * const log = createLogger({ level: 'info', redactor })
 * log.info({ upstream: 'github' }, 'upstream connected')
 */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = LEVELS[options.level]
  const write = options.write ?? stderrBatched()
  const clock = options.clock ?? Date.now
  const emit = (level: number, fields: object, msg?: string) => {
    if (level < threshold) return
    const record: Record<string, unknown> = { level, time: clock() }
    // (for…in over own members: Object.entries built an array of pairs for every line, an audit line per call)
    for (const k in fields) if (Object.hasOwn(fields, k)) record[k] = serialize((fields as Record<string, unknown>)[k])
    if (msg !== undefined) record.msg = msg
    let line: string
    try {
      line = JSON.stringify(record)
    } catch {
      line = JSON.stringify({ level, time: record.time, msg, unserializable: true })
    }
    write(`${options.redactor.redact(line)}\n`)
  }
  return {
    debug: (f, m) => emit(LEVELS.debug, f, m),
    info: (f, m) => emit(LEVELS.info, f, m),
    warn: (f, m) => emit(LEVELS.warn, f, m),
    error: (f, m) => emit(LEVELS.error, f, m),
  }
}
