/**
 * The keys a Kms has used recently, in memory: the record, the versions loaded so far, and the
 * key's seal count — so that a request on a hot key reads nothing from the store. A bounded cache
 * (config.ts keyCacheSize): the store is never held in memory, however many keys it has.
 *
 * Freshness: every change a Kms makes to a key (state, alias, versions, deletion) invalidates the
 * key here after its commit. A read racing with such a change cannot put the old record back: an
 * entry is stored only if no invalidation happened since the read that built it began (the epoch).
 * Changes written to the store by anything but this Kms are not seen until the entry is evicted;
 * the store's directory lock makes this Kms its only writer.
 */
import type { VersionRef } from "./backend/backend.js";
import type { KeyRecord } from "./types.js";

/** A loaded version: what the backend needs, and the key's seal count when it became current. */
export type LoadedVersion = VersionRef & { sealBaseline: number };

export interface KeyEntry {
  readonly record: KeyRecord;
  /** The current version (record.currentVersion); undefined for a key without material. */
  readonly current: LoadedVersion | undefined;
  /** Versions loaded so far, by number (the current one included). */
  readonly versions: Map<number, LoadedVersion>;
  /** The key's successful seals so far (usage records at load + this process's since); undefined until first needed. */
  seals: number | undefined;
  /** A version being added by the service (seal limit), so concurrent requests wait for one. */
  rotating: Promise<VersionAdded> | null;
}

/** What adding a version did: the key as the new version left it (undefined when none was added, the key having changed), and its fresh entry. */
export interface VersionAdded {
  readonly key: KeyRecord | undefined;
  readonly fresh: KeyEntry;
}

/** An entry and its "used since the eviction hand last passed" bit (CLOCK, second chance). */
interface Slot {
  entry: KeyEntry;
  used: boolean;
}

/** The slots by project and key id: a hit looks up two strings the caller already holds, where one joined key made a new string per lookup. */
type Index = Map<string, Map<string, Slot>>;

/**
 * Eviction is CLOCK (second chance) rather than strict LRU: a hit only sets a bit, where moving the
 * entry to the end of the Map on every hit (delete + set) cost more than the rest of the lookup.
 */
export class KeyCache {
  readonly #capacity: number;
  /** Every slot, in the order the eviction hand meets them. */
  readonly #entries = new Map<string, Slot>();
  readonly #index: Index = new Map();
  readonly #aliases = new Map<string, string>();
  #epoch = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Increases with every invalidation: pass the value read before a store read to set(). */
  get epoch(): number {
    return this.#epoch;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(projectId: string, keyId: string): KeyEntry | undefined {
    const slot = this.#index.get(projectId)?.get(keyId);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.entry;
  }

  /** The key id the cache knows `alias` by in the project, if it does. */
  aliasToKeyId(projectId: string, alias: string): string | undefined {
    return this.#aliases.get(`${projectId}\0${alias}`);
  }

  /** Stores the entry unless an invalidation happened since `epoch`; returns whether it did. */
  set(entry: KeyEntry, epoch: number): boolean {
    if (epoch !== this.#epoch) return false;
    const { projectId, keyId, alias } = entry.record;
    const id = `${projectId}\0${keyId}`;
    const previous = this.#entries.get(id);
    if (previous !== undefined) this.#dropAlias(previous.entry);
    this.#entries.delete(id);
    const slot: Slot = { entry, used: false };
    this.#entries.set(id, slot);
    let keys = this.#index.get(projectId);
    if (keys === undefined) this.#index.set(projectId, (keys = new Map()));
    keys.set(keyId, slot);
    this.#aliases.set(`${projectId}\0${alias}`, keyId);
    while (this.#entries.size > this.#capacity) this.#evictOne(id);
    return true;
  }

  /**
   * The hand goes from the oldest entry on: a used one loses its bit and goes to the back; the
   * first unused one other than `keep` (the entry just stored) is evicted.
   */
  #evictOne(keep: string): void {
    for (const [id, slot] of this.#entries) {
      if (id === keep) continue;
      this.#entries.delete(id);
      if (slot.used) {
        slot.used = false;
        this.#entries.set(id, slot);
        continue;
      }
      this.#unindex(slot.entry);
      this.#dropAlias(slot.entry);
      return;
    }
  }

  #unindex(entry: KeyEntry): void {
    const keys = this.#index.get(entry.record.projectId);
    keys?.delete(entry.record.keyId);
    if (keys?.size === 0) this.#index.delete(entry.record.projectId);
  }

  /** Forgets the key (after a change to it is committed). */
  invalidate(projectId: string, keyId: string): void {
    this.#epoch++;
    const id = `${projectId}\0${keyId}`;
    const slot = this.#entries.get(id);
    if (slot === undefined) return;
    this.#entries.delete(id);
    this.#unindex(slot.entry);
    this.#dropAlias(slot.entry);
  }

  clear(): void {
    this.#epoch++;
    this.#entries.clear();
    this.#index.clear();
    this.#aliases.clear();
  }

  #dropAlias(entry: KeyEntry): void {
    const id = `${entry.record.projectId}\0${entry.record.alias}`;
    if (this.#aliases.get(id) === entry.record.keyId) this.#aliases.delete(id);
  }
}
