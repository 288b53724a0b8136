// The Kms's key cache: bounded, second-chance eviction (a key used since the hand last passed
// stays), aliases follow their entries, and an invalidation during a read keeps the stale entry out.
import test from "ava";
import { KeyCache, type KeyEntry } from "../../src/kms/key-cache.js";
import type { KeyRecord } from "../../src/kms/types.js";

const entry = (keyId: string, alias = `alias-${keyId}`): KeyEntry => ({
  record: { projectId: "p", keyId, alias } as KeyRecord, current: undefined, versions: new Map(), seals: undefined, rotating: null,
});

test("holds at most its capacity; evicts the oldest entry not used since the hand passed", (t) => {
  const cache = new KeyCache(3);
  for (const id of ["a", "b", "c"]) t.true(cache.set(entry(id), cache.epoch));
  t.truthy(cache.get("p", "a"), "a used");
  cache.set(entry("d"), cache.epoch);
  t.is(cache.size, 3);
  t.truthy(cache.get("p", "a"), "a had its second chance");
  t.is(cache.get("p", "b"), undefined, "b, the oldest unused, went");
  t.truthy(cache.get("p", "c"));
  t.truthy(cache.get("p", "d"));
  // Every entry used: the hand clears them all and evicts the first it meets again — never the entry just stored.
  cache.set(entry("e"), cache.epoch);
  t.is(cache.size, 3);
  // Order was c, d, a (a moved back by its second chance): c is the first the hand meets twice.
  t.deepEqual([..."acde"].filter((id) => cache.get("p", id) !== undefined), ["a", "d", "e"]);
});

test("aliases resolve while their entry is cached, and not after it is evicted, replaced or invalidated", (t) => {
  const cache = new KeyCache(2);
  cache.set(entry("a", "app/one"), cache.epoch);
  t.is(cache.aliasToKeyId("p", "app/one"), "a");
  cache.set(entry("a", "app/renamed"), cache.epoch);
  t.is(cache.aliasToKeyId("p", "app/one"), undefined);
  t.is(cache.aliasToKeyId("p", "app/renamed"), "a");
  cache.set(entry("b"), cache.epoch);
  cache.set(entry("c"), cache.epoch);
  t.is(cache.aliasToKeyId("p", "app/renamed"), undefined, "evicted with a");
  cache.invalidate("p", "b");
  t.is(cache.get("p", "b"), undefined);
  t.is(cache.aliasToKeyId("p", "alias-b"), undefined);
});

test("an entry read before an invalidation is not stored", (t) => {
  const cache = new KeyCache(8);
  const epoch = cache.epoch;
  cache.invalidate("p", "a");
  t.false(cache.set(entry("a"), epoch));
  t.is(cache.get("p", "a"), undefined);
  t.true(cache.set(entry("a"), cache.epoch));
  cache.clear();
  t.is(cache.size, 0);
});
