/** A bounded least-recently-used map (Map keeps insertion order: the first key is the oldest). */
export class Lru<K, V> {
  readonly #map = new Map<K, V>()
  /**
   * The most recently used key (set or hit), whose hit changes nothing: moving it to the end is a delete
   * and a set, and each delete leaves a hole that V8 clears by rehashing the Map every few of them (a new
   * table each time, in the old generation for a long-lived Map). A service calling the same tool again
   * and again hits the same memo entry on every call.
   */
  #newest: K | undefined
  #hasNewest = false
  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined && !(this.#hasNewest && this.#newest === key)) {
      this.#map.delete(key)
      this.#map.set(key, value)
      this.#newest = key
      this.#hasNewest = true
    }
    return value
  }

  /** Stores `value`; returns the entry it evicted to make room, if any. */
  set(key: K, value: V): [K, V] | undefined {
    if (this.capacity <= 0) return undefined
    let evicted: [K, V] | undefined
    if (this.#map.has(key)) this.#map.delete(key)
    else if (this.#map.size >= this.capacity) {
      const oldest = this.#map.entries().next().value as [K, V]
      this.#map.delete(oldest[0])
      evicted = oldest
    }
    this.#map.set(key, value)
    this.#newest = key
    this.#hasNewest = true
    return evicted
  }

  /** Removes and returns the least recently used entry. */
  shift(): [K, V] | undefined {
    const oldest = this.#map.entries().next().value as [K, V] | undefined
    if (oldest) this.#map.delete(oldest[0])
    if (this.#map.size === 0) {
      this.#newest = undefined
      this.#hasNewest = false
    }
    return oldest
  }

  get size(): number {
    return this.#map.size
  }
}
