// The audit chain's canonical encoding and checkpoint MAC input, byte for byte as
// docs/kms-store.md states them (rebuilt here independently from the description), their
// unambiguity, and the verifier over random logs: any single change is caught at its record.
import test from "ava";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { chainHash, encodeRecord, genesisHash, type ChainedFields } from "../../src/kms/audit/chain.js";
import { checkpointMacInput, makeCheckpoint, toAnchor, fromAnchor } from "../../src/kms/audit/checkpoints.js";
import { verifyRecords } from "../../src/kms/audit/verify.js";
import type { AuditCheckpoint, AuditRecord } from "../../src/kms/types.js";
import { MAC } from "./store-helpers.js";

const LOG_ID = Buffer.from("00112233445566778899aabbccddeeff", "hex");

const u64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string): Buffer => {
  const bytes = Buffer.from(s, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
};
const opt = (s: string | null): Buffer => (s === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), str(s)]));

const SAMPLE: ChainedFields = {
  seq: 7,
  time: 1_717_171_717_171,
  requestId: "req-1",
  projectId: "proj",
  principalId: null,
  source: "10.0.0.9",
  action: "encryptData",
  keyId: "0b1c2d3e-0000-4000-8000-000000000001",
  outcome: "failure",
  errorCode: "KMS.0209",
  detail: "é∑",
};

test("the record body is the documented layout", (t) => {
  const expected = Buffer.concat([
    Buffer.from([0x01]), u64(7), u64(1_717_171_717_171),
    str("failure"), str("encryptData"), str("req-1"), str("10.0.0.9"),
    opt("proj"), opt(null), opt("0b1c2d3e-0000-4000-8000-000000000001"), opt("KMS.0209"), opt("é∑"),
  ]);
  t.true(encodeRecord(SAMPLE).equals(expected));
  const genesis = createHash("sha256").update(Buffer.concat([Buffer.from("hsmkit-audit-genesis-v1\0"), LOG_ID])).digest();
  t.true(genesisHash(LOG_ID).equals(genesis));
  t.true(chainHash(genesis, SAMPLE).equals(createHash("sha256").update(Buffer.concat([genesis, expected])).digest()));
});

test("the checkpoint MAC input is the documented layout", (t) => {
  const hash = Buffer.alloc(32, 0xab);
  const input = checkpointMacInput(LOG_ID, { index: 3, seq: 3072, hash, time: 99, reason: "count" });
  t.true(input.equals(Buffer.concat([Buffer.from("hsmkit-audit-checkpoint-v1\0"), LOG_ID, u64(3), u64(3072), hash, u64(99), str("count")])));
  const checkpoint = makeCheckpoint(LOG_ID, { index: 3, seq: 3072, hash, time: 99, reason: "count" }, MAC);
  t.true(MAC.verifyMac(input, checkpoint.mac));
  const { logId, checkpoint: back } = fromAnchor(toAnchor(LOG_ID, checkpoint));
  t.true(logId.equals(LOG_ID));
  t.deepEqual(back, checkpoint);
  t.throws(() => fromAnchor({ ...toAnchor(LOG_ID, checkpoint), hash: "zz" }), { instanceOf: TypeError });
});

test("the encoding is unambiguous: null is not empty, and bytes cannot move between fields", (t) => {
  const a = encodeRecord({ ...SAMPLE, principalId: null });
  const b = encodeRecord({ ...SAMPLE, principalId: "" });
  t.false(a.equals(b));
  const c = encodeRecord({ ...SAMPLE, requestId: "ab", source: "c" });
  const d = encodeRecord({ ...SAMPLE, requestId: "a", source: "bc" });
  t.false(c.equals(d));
  t.false(encodeRecord({ ...SAMPLE, detail: null, errorCode: "x" }).equals(encodeRecord({ ...SAMPLE, detail: "x", errorCode: null })));
});

test("records that cannot be encoded are refused", (t) => {
  t.throws(() => encodeRecord({ ...SAMPLE, requestId: "bad \ud800 surrogate" }), { instanceOf: TypeError });
  t.throws(() => encodeRecord({ ...SAMPLE, detail: "\udc00" }), { instanceOf: TypeError });
  t.notThrows(() => encodeRecord({ ...SAMPLE, detail: "pair \ud83d\ude00 ok" }));
  t.throws(() => encodeRecord({ ...SAMPLE, action: "create-key" }), { instanceOf: TypeError });
  t.throws(() => encodeRecord({ ...SAMPLE, action: "" }), { instanceOf: TypeError });
  t.throws(() => encodeRecord({ ...SAMPLE, outcome: "ok" as never }), { instanceOf: TypeError });
  t.throws(() => encodeRecord({ ...SAMPLE, time: -1 }), { instanceOf: RangeError });
  t.throws(() => encodeRecord({ ...SAMPLE, seq: 1.5 }), { instanceOf: RangeError });
  t.throws(() => encodeRecord({ ...SAMPLE, time: 2 ** 53 }), { instanceOf: RangeError });
});

const nullable = (arb: fc.Arbitrary<string>): fc.Arbitrary<string | null> => fc.option(arb, { nil: null });

const recordFields = fc.record({
  time: fc.integer({ min: 0, max: 2 ** 45 }),
  requestId: fc.string(),
  projectId: nullable(fc.string()),
  principalId: nullable(fc.string()),
  source: fc.string(),
  action: fc.constantFrom("createKey", "encryptData", "decryptData", "genRandom"),
  keyId: nullable(fc.uuid()),
  outcome: fc.constantFrom("success" as const, "failure" as const, "denied" as const),
  errorCode: nullable(fc.constantFrom("KMS.0207", "KMS.0306")),
  detail: nullable(fc.string()),
});

function chain(fields: Array<Omit<ChainedFields, "seq">>): { records: AuditRecord[]; checkpoints: AuditCheckpoint[] } {
  let previous = genesisHash(LOG_ID);
  const records = fields.map((f, i) => {
    const record = { ...f, seq: i + 1 };
    previous = chainHash(previous, record);
    return { ...record, hash: previous };
  });
  const checkpoints: AuditCheckpoint[] = [];
  for (let seq = 4; seq <= records.length; seq += 4) {
    checkpoints.push(makeCheckpoint(LOG_ID, { index: checkpoints.length + 1, seq, hash: records[seq - 1]!.hash, time: seq, reason: "count" }, MAC));
  }
  return { records, checkpoints };
}

test("random logs verify; any one changed field is caught at its record", (t) => {
  fc.assert(
    fc.property(fc.array(recordFields, { minLength: 1, maxLength: 12 }), fc.nat(), fc.nat(), (fields, which, field) => {
      const { records, checkpoints } = chain(fields);
      const intact = verifyRecords(LOG_ID, MAC, records, checkpoints);
      if (!intact.ok || intact.records !== records.length) return false;
      const target = which % records.length;
      const names = ["time", "requestId", "projectId", "principalId", "source", "action", "keyId", "outcome", "errorCode", "detail"] as const;
      const name = names[field % names.length]!;
      const original = records[target]!;
      const changed: AuditRecord = { ...original };
      switch (name) {
        case "time": changed.time = original.time + 1; break;
        case "action": changed.action = original.action === "genRandom" ? "createKey" : "genRandom"; break;
        case "outcome": changed.outcome = original.outcome === "success" ? "denied" : "success"; break;
        case "requestId": case "source": changed[name] = original[name] + "x"; break;
        default: changed[name] = original[name] === null ? "" : null;
      }
      const tampered = records.map((r, i) => (i === target ? changed : r));
      const verdict = verifyRecords(LOG_ID, MAC, tampered, checkpoints);
      return !verdict.ok && verdict.firstBadSeq === target + 1 && verdict.problem === "record-hash";
    }),
    { numRuns: 300 },
  );
  t.pass();
});
