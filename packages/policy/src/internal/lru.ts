/** A bounded least-recently-used map (Map keeps insertion order: the first key is the oldest). */
export class Lru<K, V> {
  readonly #map = new Map<K, V>()
  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, value)
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
    return evicted
  }

  /** Removes and returns the least recently used entry. */
  shift(): [K, V] | undefined {
    const oldest = this.#map.entries().next().value as [K, V] | undefined
    if (oldest) this.#map.delete(oldest[0])
    return oldest
  }

  get size(): number {
    return this.#map.size
  }
}
