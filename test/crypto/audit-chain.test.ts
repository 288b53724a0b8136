// The native audit chain (native/audit_chain.cc through src/crypto/audit-chain.ts) against the
// chain's definition in JavaScript (src/kms/audit/chain.ts): the same chain values and the same
// bodies, numbered, for any records; framing that does not hold is refused before anything is
// written.
import test from "ava";
import fc from "fast-check";
import { chainRecords, frameSealed, SEALED_FIELDS } from "../../src/crypto/audit-chain.js";
import { chainHash, decodeRecord, genesisHash, MAX_AUDIT_TIME } from "../../src/kms/audit/chain.js";
import { AuditAppends, frameRecords, usageSums } from "../../src/kms/store/audit-appends.js";
import type { AuditEvent, AuditOutcome } from "../../src/kms/types.js";

const text = (max: number): fc.Arbitrary<string> => fc.string({ unit: "binary", maxLength: max }).filter((s) => !/[\uD800-\uDFFF]/u.test(s));
const record = fc.record({
  time: fc.integer({ min: 0, max: MAX_AUDIT_TIME }),
  requestId: text(40),
  projectId: fc.option(text(32), { nil: null }),
  principalId: fc.option(text(32), { nil: null }),
  source: text(20),
  action: fc.constantFrom("encryptData", "decryptData", "createKey", "genRandom"),
  keyId: fc.option(text(36), { nil: null }),
  detail: fc.option(text(200), { nil: null }),
  outcome: fc.constantFrom<AuditOutcome>("success", "failure", "denied"),
  errorCode: fc.option(fc.constantFrom("KMS.0306", "KMS.2201"), { nil: null }),
});

test("chain values and bodies equal the JavaScript definition, for any records", (t) => {
  fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 2 ** 40 }), (records, firstSeq) => {
    const appends = new AuditAppends(1000);
    for (const { outcome, errorCode, ...event } of records) appends.add(event as AuditEvent, outcome, errorCode);
    const sealed = appends.seal();
    const framed = frameRecords(sealed);
    const previous = genesisHash(Buffer.alloc(16, 7));
    const { bodies, hashes } = chainRecords(previous, framed.framed, sealed.count, firstSeq);
    let chain = previous;
    let at = 0;
    records.forEach((r, i) => {
      const { fields, end } = decodeRecord(bodies, at);
      at = end;
      const expected = { seq: firstSeq + i, time: r.time, requestId: r.requestId, projectId: r.projectId, principalId: r.principalId, source: r.source, action: r.action, keyId: r.keyId, outcome: r.outcome, errorCode: r.errorCode, detail: r.detail };
      t.deepEqual(fields, expected);
      chain = chainHash(chain, expected);
      t.deepEqual(hashes.subarray(i * 32, (i + 1) * 32), chain);
    });
    t.is(at, bodies.length);
    // What the block and the usage counters get, against the records themselves.
    t.is(framed.minTime, Math.min(...records.map((r) => r.time)));
    t.is(framed.maxTime, Math.max(...records.map((r) => r.time)));
    const terms = new Set<string>();
    const usage = new Map<string, { count: number; lastUsedAt: number }>();
    for (const r of records) {
      const project = r.projectId ?? "";
      terms.add(`${project}\0`).add(`${project}\0a:${r.action}`);
      if (r.keyId !== null) terms.add(`${project}\0k:${r.keyId}`);
      if (r.outcome !== "success" || r.keyId === null || r.projectId === null) continue;
      const id = JSON.stringify([r.projectId, r.keyId, r.action]);
      const sum = usage.get(id) ?? { count: 0, lastUsedAt: -1 };
      usage.set(id, { count: sum.count + 1, lastUsedAt: Math.max(sum.lastUsedAt, r.time) });
    }
    t.deepEqual(framed.terms.map(([project, term]) => `${project}\0${term}`).sort(), [...terms].sort());
    t.deepEqual(
      usageSums(framed.usage, sealed.strings).map((u) => [JSON.stringify([u.projectId, u.keyId, u.action]), { count: u.count, lastUsedAt: u.lastUsedAt }] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      [...usage].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    );
  }), { numRuns: 60 });
});

test("a record that cannot be encoded is refused as it is added, and nothing of it stays", (t) => {
  const appends = new AuditAppends(10);
  const good = { requestId: "r", projectId: "p", principalId: "u", source: "s", action: "genRandom", keyId: null };
  appends.add(good, "success", null);
  t.throws(() => appends.add({ ...good, time: -1 }, "success", null), { instanceOf: RangeError });
  t.throws(() => appends.add({ ...good, time: 1.5 }, "success", null), { instanceOf: RangeError });
  t.throws(() => appends.add({ ...good, time: MAX_AUDIT_TIME + 1 }, "success", null), { instanceOf: RangeError }, "past 9999-12-31");
  t.throws(() => appends.add(good, "maybe" as AuditOutcome, null), { instanceOf: TypeError });
  t.throws(() => appends.add({ ...good, action: "not an action" }, "success", null), { instanceOf: TypeError });
  t.throws(() => appends.add({ ...good, requestId: 7 as unknown as string }, "success", null), { instanceOf: TypeError });
  t.throws(() => appends.add({ ...good, keyId: "\uD800" }, "success", null), { instanceOf: TypeError });
  t.throws(() => appends.add({ ...good, detail: "\uDC00x" }, "success", null), { instanceOf: TypeError });
  t.is(appends.count, 1);
  const framed = frameRecords(appends.seal());
  const { fields } = decodeRecord(chainRecords(Buffer.alloc(32), framed.framed, 1, 1).bodies, 0);
  t.like(fields, { requestId: "r", keyId: null, outcome: "success" });
});

test("sealed records that do not hold together are refused before anything is framed", (t) => {
  const appends = new AuditAppends(4);
  appends.add({ requestId: "r", projectId: "p", principalId: "u", source: "s", action: "genRandom", keyId: "k" }, "success", null);
  const sealed = appends.seal();
  t.throws(() => frameRecords({ ...sealed, strings: sealed.strings.slice(0, 2) }), { instanceOf: RangeError }, "an id beyond the strings");
  t.throws(() => frameRecords({ ...sealed, count: 5 }), { instanceOf: RangeError }, "more records than the buffer holds");
  t.throws(() => frameRecords({ ...sealed, timesOffset: 4 }), { instanceOf: RangeError }, "times overlapping the ids");
  const times = new Float64Array(sealed.records.buffer, sealed.timesOffset, 1);
  times[0] = -5;
  t.throws(() => frameRecords(sealed), { instanceOf: RangeError }, "a time out of range");
});

test("the native framing refuses ids, times and strings that do not hold, and frames what does", (t) => {
  const str = (value: string): Buffer => Buffer.concat([Buffer.from([0, 0, 0, value.length]), Buffer.from(value, "latin1")]);
  const strs = Buffer.concat(["success", "genRandom", "r-1", "src", "p"].map(str));
  const offsets = new Uint32Array([0, 11, 24, 31, 38, 43]);
  const ids = (...values: number[]): Uint32Array => new Uint32Array(values);
  const good = ids(1, 2, 3, 4, 5, 0, 0, 0, 0);
  const times = new Float64Array([1_700_000_000_000]);
  const framed = frameSealed(good, times, strs, offsets, 1);
  const { fields } = decodeRecord(chainRecords(Buffer.alloc(32), framed, 1, 9).bodies, 0);
  t.deepEqual(fields, { seq: 9, time: 1_700_000_000_000, outcome: "success", action: "genRandom", requestId: "r-1", source: "src", projectId: "p", principalId: null, keyId: null, errorCode: null, detail: null });
  t.is(SEALED_FIELDS, 9);
  const refused = (what: string, ...args: Parameters<typeof frameSealed>): void => {
    t.throws(() => frameSealed(...args), { instanceOf: RangeError }, what);
  };
  refused("a required field null", ids(0, 2, 3, 4, 5, 0, 0, 0, 0), times, strs, offsets, 1);
  refused("an id beyond the strings", ids(1, 2, 3, 4, 6, 0, 0, 0, 0), times, strs, offsets, 1);
  refused("fewer ids than records", good, new Float64Array(2), strs, offsets, 2);
  for (const time of [1.5, -1, 2 ** 53, Number.NaN, Infinity]) refused(`time ${time}`, good, new Float64Array([time]), strs, offsets, 1);
  refused("offsets short of the strings", good, times, strs, new Uint32Array([0, 11, 24, 31, 38, 42]), 1);
  refused("offsets past the strings", good, times, strs, new Uint32Array([0, 11, 24, 31, 38, 44]), 1);
  refused("a string whose length prefix disagrees", good, times, Buffer.concat([strs.subarray(0, 42), Buffer.from("q")]).fill(9, 3, 4), offsets, 1);
  refused("offsets going back", good, times, strs, new Uint32Array([0, 24, 11, 31, 38, 43]), 1);
  // An offset past the end that a later one undercuts: the string before it must not be read (an
  // empty Buffer has no memory behind it at all, so reading its "length prefix" crashed the process).
  refused("an offset past the strings, then back", good, times, Buffer.alloc(0), new Uint32Array([0, 2 ** 30, 0]), 1);
  refused("an offset past a short string, then back", good, times, Buffer.alloc(2), new Uint32Array([0, 2 ** 30, 2]), 1);
  refused("no offsets", good, times, strs, new Uint32Array(0), 1);
  refused("ids of the wrong type", new Int32Array(9) as unknown as Uint32Array, times, strs, offsets, 1);
  refused("times of the wrong type", good, new Float32Array(1) as unknown as Float64Array, strs, offsets, 1);
  t.deepEqual(frameSealed(new Uint32Array(0), new Float64Array(0), Buffer.alloc(0), new Uint32Array([0]), 0), Buffer.alloc(0));
});

test("framing that does not hold exactly count bodies is refused", (t) => {
  const appends = new AuditAppends(1000);
  appends.add({ requestId: "r", projectId: "p", principalId: "u", source: "s", action: "genRandom", keyId: null }, "success", null);
  const records = frameRecords(appends.seal()).framed;
  const previous = Buffer.alloc(32);
  const invalid = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  t.throws(() => chainRecords(previous, records, 2, 1), invalid);
  t.throws(() => chainRecords(previous, records.subarray(0, records.length - 1), 1, 1), invalid);
  t.throws(() => chainRecords(previous, Buffer.concat([records, Buffer.alloc(1)]), 1, 1), invalid);
  const tiny = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0]);
  t.throws(() => chainRecords(previous, tiny, 1, 1), invalid, "a body shorter than format byte and seq");
  t.throws(() => chainRecords(Buffer.alloc(31), records, 1, 1), { instanceOf: TypeError });
  t.throws(() => chainRecords(previous, records, 1, 0), { instanceOf: RangeError });
  t.throws(() => chainRecords(previous, records, 1, Number.MAX_SAFE_INTEGER), { instanceOf: RangeError });
  t.deepEqual(chainRecords(previous, new Uint8Array(0), 0, 1), { bodies: Buffer.alloc(0), hashes: Buffer.alloc(0) });
});
