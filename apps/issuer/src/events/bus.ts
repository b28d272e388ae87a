/**
 * Tells every issuer instance that security events were written: a wake-up, not the events (each
 * instance reads them, in order, from the database). Messages may be lost or duplicated; a slow
 * poll of the database covers both.
 */
export interface EventBus {
  /** Announces that events up to `seq` are committed. */
  publish(seq: number): void
  /** Calls `listener` for every announcement (this instance's own included); returns the unsubscribe. */
  subscribe(listener: (seq: number) => void): () => void
  close(): Promise<void>
}

/**
 * The in-process {@link EventBus}: one issuer process (several processes on one SQLite file still
 * see each other's events through the stream's database poll).
 * @example
 * const bus = createMemoryEventBus()
 */
export function createMemoryEventBus(): EventBus {
  const listeners = new Set<(seq: number) => void>()
  return {
    publish(seq) {
      for (const l of [...listeners]) {
        try {
          l(seq)
        } catch {
          // a listener's failure is its own
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    async close() {
      listeners.clear()
    },
  }
}
