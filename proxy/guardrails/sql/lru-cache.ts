/** A bounded least-recently-used map with hit and miss counters. */
export class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
  /** The most recently used key: hits on it need no reordering (a Map delete and set). */
  private newest: K | undefined;
  private hitCount = 0;
  private missCount = 0;

  /** @param capacity most entries kept; 0 disables caching. */
  constructor(readonly capacity: number) {}

  /** The value for `key` (now most recently used), counting a hit or a miss. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.missCount++;
      return undefined;
    }
    this.hitCount++;
    if (key !== this.newest) {
      this.entries.delete(key);
      this.entries.set(key, value);
      this.newest = key;
    }
    return value;
  }

  /** Stores `value`, evicting the least recently used entry beyond capacity. */
  set(key: K, value: V): void {
    if (this.capacity <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, value);
    this.newest = key;
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
  }

  /** Counters since creation. */
  stats(): { hits: number; misses: number; size: number; capacity: number } {
    return { hits: this.hitCount, misses: this.missCount, size: this.entries.size, capacity: this.capacity };
  }
}
