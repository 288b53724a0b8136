// The backend's LRU handle cache against a plain model (an array in use order), under random
// sequences of get/set/delete/clear: the same values, the same entries passed to onEvict in the
// same order, the same counters. Hits on the most recently used entry take a shortcut in the
// cache (no reordering), which these sequences exercise constantly with their few ids.
import test from "ava";
import fc from "fast-check";
import { HandleCache } from "../../src/kms/backend/handle-cache.js";

type Op =
  | { op: "get"; id: string }
  | { op: "set"; id: string; value: number }
  | { op: "delete"; id: string }
  | { op: "clear"; destroy: boolean };

/** The reference: entries in use order, least recently used first. */
class Model {
  entries: Array<[string, number]> = [];
  evicted: Array<[string, number]> = [];
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly capacity: number) {}

  get(id: string): number | undefined {
    const at = this.entries.findIndex(([key]) => key === id);
    if (at < 0) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    const [entry] = this.entries.splice(at, 1);
    this.entries.push(entry!);
    return entry![1];
  }

  set(id: string, value: number): void {
    const at = this.entries.findIndex(([key]) => key === id);
    if (at >= 0) {
      const [previous] = this.entries.splice(at, 1);
      if (previous![1] !== value) this.evicted.push(previous!);
    }
    this.entries.push([id, value]);
    while (this.entries.length > this.capacity) {
      this.evictions++;
      this.evicted.push(this.entries.shift()!);
    }
  }

  delete(id: string): boolean {
    const at = this.entries.findIndex(([key]) => key === id);
    if (at < 0) return false;
    this.evicted.push(...this.entries.splice(at, 1));
    return true;
  }

  clear(destroy: boolean): void {
    if (destroy) this.evicted.push(...this.entries);
    this.entries = [];
  }
}

const id = fc.constantFrom("a", "b", "c", "d", "e");
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("get" as const), id }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), id, value: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), destroy: fc.boolean() }) },
);

test("the handle cache behaves as a plain LRU model: values, evictions in order, counters", (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 80 }), (capacity, ops) => {
    const model = new Model(capacity);
    const evicted: Array<[string, number]> = [];
    const cache = new HandleCache<number>(capacity, (value, key) => evicted.push([key, value]));
    for (const step of ops) {
      switch (step.op) {
        case "get":
          if (cache.get(step.id) !== model.get(step.id)) return false;
          break;
        case "set":
          cache.set(step.id, step.value);
          model.set(step.id, step.value);
          break;
        case "delete":
          if (cache.delete(step.id) !== model.delete(step.id)) return false;
          break;
        case "clear":
          cache.clear(step.destroy);
          model.clear(step.destroy);
          break;
      }
      if (JSON.stringify(evicted) !== JSON.stringify(model.evicted) || cache.size !== model.entries.length) return false;
    }
    const stats = cache.stats();
    return stats.hits === model.hits && stats.misses === model.misses && stats.evictions === model.evictions;
  }), { numRuns: 3000 });
  t.pass();
});

test("a hit on the newest entry keeps the order: the oldest is still evicted first", (t) => {
  const evicted: string[] = [];
  const cache = new HandleCache<number>(3, (_value, key) => evicted.push(key));
  cache.set("a", 1);
  cache.set("b", 2);
  cache.set("c", 3);
  for (let i = 0; i < 3; i++) t.is(cache.get("c"), 3);
  t.is(cache.get("a"), 1);
  t.is(cache.get("a"), 1);
  cache.set("d", 4);
  t.deepEqual(evicted, ["b"]);
  cache.delete("d");
  t.deepEqual(evicted, ["b", "d"]);
  t.is(cache.get("d"), undefined, "a deleted newest entry is not served");
  cache.set("e", 5);
  cache.set("f", 6);
  t.deepEqual(evicted, ["b", "d", "c"]);
});
