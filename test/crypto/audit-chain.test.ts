// The native audit chain (native/audit_chain.cc through src/crypto/audit-chain.ts) against the
// chain's definition in JavaScript (src/kms/audit/chain.ts): the same chain values and the same
// bodies, numbered, for any records; framing that does not hold is refused before anything is
// written.
import test from "ava";
import fc from "fast-check";
import { chainRecords } from "../../src/crypto/audit-chain.js";
import { chainHash, decodeRecord, genesisHash } from "../../src/kms/audit/chain.js";
import { AuditAppends } from "../../src/kms/store/audit-appends.js";
import type { AuditEvent, AuditOutcome } from "../../src/kms/types.js";

const text = (max: number): fc.Arbitrary<string> => fc.string({ unit: "binary", maxLength: max }).filter((s) => !/[\uD800-\uDFFF]/u.test(s));
const record = fc.record({
  time: fc.integer({ min: 0, max: 2 ** 48 }),
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
    const previous = genesisHash(Buffer.alloc(16, 7));
    const { bodies, hashes } = chainRecords(previous, sealed.records, sealed.count, firstSeq);
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
  }), { numRuns: 60 });
});

test("framing that does not hold exactly count bodies is refused", (t) => {
  const appends = new AuditAppends(1000);
  appends.add({ requestId: "r", projectId: "p", principalId: "u", source: "s", action: "genRandom", keyId: null }, "success", null);
  const { records } = appends.seal();
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
