/**
 * A bounded least-recently-used map from CMK version ids to the token objects they were unwrapped
 * into. The bound is what keeps the token's object count, and the process's memory, flat however
 * many CMKs the store holds: a version used again after eviction is simply unwrapped again.
 *
 * An entry leaves the cache in one of two ways, and `onEvict` is told which:
 * - evicted (capacity reached, or removed on request): its token object should be destroyed;
 * - dropped (`clear(false)`): the token object is already gone — its session was closed — so there
 *   is nothing to destroy.
 *
 * JavaScript's Map keeps insertion order, so the first key is the least recently used one and a hit
 * moves its entry to the end; every operation is O(1).
 */

export interface HandleCacheStats {
  /** Entries held now. */
  size: number;
  /** The bound. */
  capacity: number;
  hits: number;
  misses: number;
  /** Entries pushed out by the bound. */
  evictions: number;
}

export class HandleCache<V> {
  private readonly entries = new Map<string, V>();
  /** The id at the end of the order (most recently used): a hit on it need not move it. */
  private newest: string | undefined;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  /**
   * @param capacity at least 1.
   * @param onEvict called with each entry that leaves the cache while its token object still exists.
   *   It must not throw (the backend's destroys are best-effort).
   */
  constructor(readonly capacity: number, private readonly onEvict: (value: V, id: string) => void) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`handle cache capacity must be an integer ≥ 1, got ${capacity}`);
  }

  /** The entry for `id`, now the most recently used, or undefined. */
  get(id: string): V | undefined {
    const value = this.entries.get(id);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (id !== this.newest) {
      this.entries.delete(id);
      this.entries.set(id, value);
      this.newest = id;
    }
    return value;
  }

  /** Adds (or replaces) an entry as the most recently used, evicting the least recently used ones beyond the bound. */
  set(id: string, value: V): void {
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.entries.delete(id);
      if (previous !== value) this.onEvict(previous, id);
    }
    this.entries.set(id, value);
    this.newest = id;
    while (this.entries.size > this.capacity) {
      const [oldest, old] = this.entries.entries().next().value as [string, V];
      this.entries.delete(oldest);
      this.evictions++;
      this.onEvict(old, oldest);
    }
  }

  /** Removes `id` (its token object is destroyed through onEvict); false when it was not cached. */
  delete(id: string): boolean {
    const value = this.entries.get(id);
    if (value === undefined) return false;
    this.entries.delete(id);
    if (id === this.newest) this.newest = undefined;
    this.onEvict(value, id);
    return true;
  }

  /** Empties the cache: `destroy` true passes every entry to onEvict, false forgets them (their objects are gone already). */
  clear(destroy: boolean): void {
    const all = [...this.entries];
    this.entries.clear();
    this.newest = undefined;
    if (destroy) for (const [id, value] of all) this.onEvict(value, id);
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): HandleCacheStats {
    return { size: this.entries.size, capacity: this.capacity, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }
}
