/** A Map bounded to `max` entries that drops the least recently inserted or touched one. */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>()
  constructor(private readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('cache size must be a positive integer')
  }

  get(key: K): V | undefined {
    return this.map.get(key)
  }

  /** Marks an entry as recently used (costly enough to do only on a hit that matters). */
  touch(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key)
    else if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as K)
    this.map.set(key, value)
  }

  delete(key: K): void {
    this.map.delete(key)
  }

  clear(): void {
    this.map.clear()
  }

  get size(): number {
    return this.map.size
  }

  /** True when the next new entry evicts one. */
  get full(): boolean {
    return this.map.size >= this.max
  }
}
