/**
 * A bounded map from CMK version ids to the token objects they were unwrapped into. The bound is
 * what keeps the token's object count, and the process's memory, flat however many CMKs the store
 * holds: a version used again after eviction is simply unwrapped again.
 *
 * An entry leaves the cache in one of two ways, and `onEvict` is told which:
 * - evicted (capacity reached, the bound lowered by resize(), or removed on request): its token
 *   object should be destroyed;
 * - dropped (`clear(false)`): the token object is already gone — its session was closed — so there
 *   is nothing to destroy.
 *
 * Eviction is second chance (CLOCK) rather than strict LRU: a hit sets a bit, where moving the
 * entry to the end of the Map (delete + set) on every hit cost more than the rest of the lookup —
 * every sealed or opened message comes here. The eviction hand is the Map's insertion order: an
 * entry whose bit is set goes to the end with the bit cleared, the first without it is evicted.
 * Entries come in with the bit set, so the one just added (about to be used) is not the next out.
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
  private readonly entries = new Map<string, { value: V; used: boolean }>();
  private bound: number;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  /**
   * @param capacity at least 1 (resize() may change it later).
   * @param onEvict called with each entry that leaves the cache while its token object still exists.
   *   It must not throw (the backend's destroys are best-effort).
   */
  constructor(capacity: number, private readonly onEvict: (value: V, id: string) => void) {
    checkCapacity(capacity);
    this.bound = capacity;
  }

  /** The bound now. */
  get capacity(): number {
    return this.bound;
  }

  /** The entry for `id` (now marked used), or undefined. */
  get(id: string): V | undefined {
    const slot = this.entries.get(id);
    if (slot === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    slot.used = true;
    return slot.value;
  }

  /** Adds (or replaces) an entry, evicting entries beyond the bound (second chance). */
  set(id: string, value: V): void {
    const previous = this.entries.get(id);
    if (previous !== undefined) {
      this.entries.delete(id);
      if (previous.value !== value) this.onEvict(previous.value, id);
    }
    this.entries.set(id, { value, used: true });
    this.evictDownTo(this.bound);
  }

  /**
   * Sets the bound to `capacity` and evicts (second chance, as set() does) until at most
   * `capacity - free` entries are left: room for `free` entries that are about to come in.
   * Returns the number evicted.
   */
  resize(capacity: number, free = 0): number {
    checkCapacity(capacity);
    if (!Number.isInteger(free) || free < 0 || free > capacity) throw new RangeError(`handle cache free must be an integer 0..${capacity}, got ${free}`);
    this.bound = capacity;
    const before = this.evictions;
    this.evictDownTo(capacity - free);
    return this.evictions - before;
  }

  /** Removes `id` (its token object is destroyed through onEvict); false when it was not cached. */
  delete(id: string): boolean {
    const slot = this.entries.get(id);
    if (slot === undefined) return false;
    this.entries.delete(id);
    this.onEvict(slot.value, id);
    return true;
  }

  /** Empties the cache: `destroy` true passes every entry to onEvict, false forgets them (their objects are gone already). */
  clear(destroy: boolean): void {
    const all = [...this.entries];
    this.entries.clear();
    if (destroy) for (const [id, slot] of all) this.onEvict(slot.value, id);
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): HandleCacheStats {
    return { size: this.entries.size, capacity: this.bound, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  /** The hand: an entry used since it last passed goes to the end unused, the first one unused is evicted. */
  private evictDownTo(limit: number): void {
    while (this.entries.size > limit) {
      const [oldest, slot] = this.entries.entries().next().value as [string, { value: V; used: boolean }];
      this.entries.delete(oldest);
      if (slot.used) {
        slot.used = false;
        this.entries.set(oldest, slot);
        continue;
      }
      this.evictions++;
      this.onEvict(slot.value, oldest);
    }
  }
}

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`handle cache capacity must be an integer ≥ 1, got ${capacity}`);
}
