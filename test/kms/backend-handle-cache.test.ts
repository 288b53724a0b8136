// The backend's handle cache (second chance) against a plain model (an array in insertion order
// with a used bit each), under random sequences of get/set/delete/clear/resize: the same values, the
// same entries passed to onEvict in the same order, the same counters and bound.
import test from "ava";
import fc from "fast-check";
import { HandleCache } from "../../src/kms/backend/handle-cache.js";

type Op =
  | { op: "get"; id: string }
  | { op: "set"; id: string; value: number }
  | { op: "delete"; id: string }
  | { op: "clear"; destroy: boolean }
  | { op: "resize"; capacity: number; free: number };

/** The reference: entries in insertion order with a used bit; the hand takes the first, giving a used one a second chance at the end. */
class Model {
  entries: Array<{ id: string; value: number; used: boolean }> = [];
  evicted: Array<[string, number]> = [];
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(public capacity: number) {}

  get(id: string): number | undefined {
    const entry = this.entries.find((e) => e.id === id);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    entry.used = true;
    return entry.value;
  }

  set(id: string, value: number): void {
    const at = this.entries.findIndex((e) => e.id === id);
    if (at >= 0) {
      const [previous] = this.entries.splice(at, 1);
      if (previous!.value !== value) this.evicted.push([id, previous!.value]);
    }
    this.entries.push({ id, value, used: true });
    this.evictDownTo(this.capacity);
  }

  resize(capacity: number, free: number): number {
    this.capacity = capacity;
    const before = this.evictions;
    this.evictDownTo(capacity - free);
    return this.evictions - before;
  }

  evictDownTo(limit: number): void {
    while (this.entries.length > limit) {
      const head = this.entries.shift()!;
      if (head.used) {
        head.used = false;
        this.entries.push(head);
        continue;
      }
      this.evictions++;
      this.evicted.push([head.id, head.value]);
    }
  }

  delete(id: string): boolean {
    const at = this.entries.findIndex((e) => e.id === id);
    if (at < 0) return false;
    const [entry] = this.entries.splice(at, 1);
    this.evicted.push([entry!.id, entry!.value]);
    return true;
  }

  clear(destroy: boolean): void {
    if (destroy) this.evicted.push(...this.entries.map((e): [string, number] => [e.id, e.value]));
    this.entries = [];
  }
}

const id = fc.constantFrom("a", "b", "c", "d", "e");
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("get" as const), id }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("set" as const), id, value: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete" as const), id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), destroy: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 4 }).chain((capacity) =>
      fc.record({ op: fc.constant("resize" as const), capacity: fc.constant(capacity), free: fc.integer({ min: 0, max: capacity }) })),
  },
);

test("the handle cache behaves as a plain second-chance model: values, evictions in order, counters", (t) => {
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
        case "resize":
          if (cache.resize(step.capacity, step.free) !== model.resize(step.capacity, step.free)) return false;
          break;
      }
      if (JSON.stringify(evicted) !== JSON.stringify(model.evicted) || cache.size !== model.entries.length) return false;
      if (cache.capacity !== model.capacity) return false;
    }
    const stats = cache.stats();
    return stats.hits === model.hits && stats.misses === model.misses && stats.evictions === model.evictions;
  }), { numRuns: 3000 });
  t.pass();
});

test("an entry used since the hand last passed survives it; the one just added is never the next out", (t) => {
  const evicted: string[] = [];
  const cache = new HandleCache<number>(3, (_value, key) => evicted.push(key));
  cache.set("a", 1);
  cache.set("b", 2);
  cache.set("c", 3);
  // All three came in marked used: the hand clears a, b and c, then takes a.
  cache.set("d", 4);
  t.deepEqual(evicted, ["a"]);
  t.is(cache.get("b"), 2);
  // b was used again: it gets a second chance, c (unused since) goes.
  cache.set("e", 5);
  t.deepEqual(evicted, ["a", "c"]);
  t.is(cache.get("e"), 5, "the entry just added is there");
  cache.delete("e");
  t.deepEqual(evicted, ["a", "c", "e"]);
  t.is(cache.get("e"), undefined, "a deleted entry is not served");
  t.deepEqual(cache.stats(), { size: 2, capacity: 3, hits: 2, misses: 1, evictions: 2 });
});

test("resize lowers the bound and leaves room below it, evicting second chance; raising it evicts nothing; bad bounds throw", (t) => {
  const evicted: string[] = [];
  const cache = new HandleCache<number>(4, (_value, key) => evicted.push(key));
  for (const [i, key] of [..."abcd"].entries()) cache.set(key, i);
  cache.get("c");
  // Every entry came in used (c's hit changes nothing): the hand clears all four bits, then takes a and b.
  t.is(cache.resize(3, 1), 2);
  t.deepEqual(evicted, ["a", "b"]);
  t.is(cache.capacity, 3);
  t.is(cache.size, 2);
  cache.set("e", 4);
  t.is(cache.size, 3, "the room was left for one entry");
  t.deepEqual(evicted, ["a", "b"]);
  cache.set("f", 5);
  t.is(cache.size, 3, "the lowered bound holds");
  t.deepEqual(evicted, ["a", "b", "c"]);
  t.is(cache.resize(5), 0);
  t.is(cache.capacity, 5);
  t.is(cache.size, 3);
  t.is(cache.stats().capacity, 5);
  t.throws(() => cache.resize(0), { instanceOf: RangeError });
  t.throws(() => cache.resize(2, 3), { instanceOf: RangeError });
  t.throws(() => cache.resize(1.5), { instanceOf: RangeError });
  t.is(cache.capacity, 5, "a refused resize changes nothing");
});
