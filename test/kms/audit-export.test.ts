// Audit queries (by key, time, action, outcome, project; paging), denied and failed requests in
// the log, checkpoints and anchors through the store, and the JSON-lines export: it round-trips,
// a complete export verifies on its own (and a doctored one does not), a filtered one is for reading.
import test from "ava";
import { createReadStream, createWriteStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { finished } from "node:stream/promises";
import { KmsError } from "../../src/kms/errors.js";
import { AuditExportFormatError, readAuditExport, verifyAuditExport } from "../../src/kms/audit/export.js";
import type { AuditRecord } from "../../src/kms/types.js";
import { event, MAC, newKey, openStore, tempDir } from "./store-helpers.js";

const P = "project-a";
const Q = "project-b";

async function populated(t: Parameters<typeof openStore>[0]) {
  const store = await openStore(t, { checkpoints: { everyRecords: 7, everyMs: 0 } });
  const k1 = await store.keys.create(newKey(P, { alias: "k1" }), { audit: event("createKey", P, null, { time: 1000 }) });
  const k2 = await store.keys.create(newKey(P, { alias: "k2" }), { audit: event("createKey", P, null, { time: 1001 }) });
  const kq = await store.keys.create(newKey(Q, { alias: "kq" }), { audit: event("createKey", Q, null, { time: 1002 }) });
  for (let i = 0; i < 10; i++) {
    await store.audit.append({ ...event(i % 2 ? "encryptData" : "decryptData", P, i % 3 ? k1.keyId : k2.keyId, { time: 2000 + i }), outcome: "success" });
  }
  // A denied request: authorization refused it before anything was done.
  await store.audit.append({ ...event("disableKey", P, k1.keyId, { time: 3000, principalId: "intruder" }), outcome: "denied", errorCode: "KMS.0306" });
  // A failed one: allowed, but the key is in the wrong state (recorded atomically with the refused change).
  await t.throwsAsync(store.keys.update(P, k2.keyId, { state: 2 }, {
    guard: { states: { 2: "KMS.1201" } }, audit: event("enableKey", P, k2.keyId, { time: 3001 }),
  }), { instanceOf: KmsError });
  await store.audit.append({ ...event("genRandom", P, null, { time: 3002, detail: "512 bits" }), outcome: "success" });
  await store.audit.append({ ...event("encryptData", Q, kq.keyId, { time: 3003 }), outcome: "success" });
  return { store, k1, k2, kq };
}

test("query by key, time, action, outcome and project, with paging", async (t) => {
  const { store, k1, k2, kq } = await populated(t);
  const all = (await store.audit.query({ limit: 1000 })).records;
  t.is(all.length, 17);
  t.deepEqual(all.map((r) => r.seq), Array.from({ length: 17 }, (_, i) => i + 1));
  const byKey = (await store.audit.query({ projectId: P, keyId: k1.keyId })).records;
  t.true(byKey.length > 0 && byKey.every((r) => r.keyId === k1.keyId));
  t.is(byKey.length, all.filter((r) => r.keyId === k1.keyId).length);
  t.deepEqual((await store.audit.query({ projectId: Q, keyId: k1.keyId })).records, [], "a key is queried within its project");
  t.deepEqual((await store.audit.query({ projectId: Q })).records.map((r) => r.keyId), [null, kq.keyId]);
  const window = (await store.audit.query({ from: 2003, to: 2006 })).records;
  t.deepEqual(window.map((r) => r.time), [2003, 2004, 2005]);
  t.deepEqual((await store.audit.query({ projectId: P, action: "createKey" })).records.map((r) => r.time), [1000, 1001]);
  t.deepEqual((await store.audit.query({ action: "decryptData", keyId: k2.keyId })).records.length, all.filter((r) => r.action === "decryptData" && r.keyId === k2.keyId).length);
  const denied = (await store.audit.query({ outcome: "denied" })).records;
  t.like(denied, [{ action: "disableKey", principalId: "intruder", keyId: k1.keyId, errorCode: "KMS.0306", outcome: "denied" }]);
  const failed = (await store.audit.query({ outcome: "failure" })).records;
  t.like(failed, [{ action: "enableKey", keyId: k2.keyId, errorCode: "KMS.1201", outcome: "failure", time: 3001 }]);
  // Paging.
  const seen: number[] = [];
  let afterSeq: number | undefined;
  do {
    const page = await store.audit.query({ projectId: P, limit: 4, afterSeq });
    seen.push(...page.records.map((r) => r.seq));
    afterSeq = page.nextSeq ?? undefined;
  } while (afterSeq !== undefined);
  t.deepEqual(seen, all.filter((r) => r.projectId === P).map((r) => r.seq));
  await t.throwsAsync(store.audit.query({ limit: 0 }), { instanceOf: KmsError });
});

test("a paging marker that is not a record seq is refused (KMS.1602), not read as another position", async (t) => {
  const { store } = await populated(t);
  const all = (await store.audit.query({ projectId: P, limit: 1000 })).records;
  t.deepEqual((await store.audit.query({ projectId: P, afterSeq: 0 })).records, all);
  t.deepEqual((await store.audit.query({ projectId: P, afterSeq: all.at(-1)!.seq })).records, []);
  // A marker handed on as text (as the HTTP API prints it) silently skipped records when "2" + 1
  // became "21"; NaN gave an empty page, as if the log had ended.
  for (const afterSeq of ["2", Number.NaN, -1, 2.5, Infinity, 2 ** 53]) {
    await t.throwsAsync(store.audit.query({ projectId: P, afterSeq: afterSeq as number }), { instanceOf: KmsError, code: "KMS.1602" }, `afterSeq ${String(afterSeq)}`);
  }
});

test("time bounds that are not ms since the epoch are refused (KMS.0308, as the HTTP schema does), not read as an empty window", async (t) => {
  const { store } = await populated(t);
  t.deepEqual((await store.audit.query({ from: 0, to: 2 ** 53 - 1 })).records.length, 17);
  const lines: string[] = [];
  for (const bound of [Number.NaN, -1, 2.5, Infinity, -Infinity, 2 ** 53, "2000"]) {
    for (const name of ["from", "to"] as const) {
      await t.throwsAsync(store.audit.query({ [name]: bound as number }), { instanceOf: KmsError, code: "KMS.0308" }, `query ${name} ${String(bound)}`);
      await t.throwsAsync(store.audit.export((line) => void lines.push(line), { [name]: bound as number }), { instanceOf: KmsError, code: "KMS.0308" }, `export ${name} ${String(bound)}`);
    }
  }
  t.deepEqual(lines, [], "nothing exported");
});

test("append refuses records it could not encode", async (t) => {
  const store = await openStore(t);
  await t.throwsAsync(store.audit.append({ ...event("encrypt-data", P, null), outcome: "success" }), { instanceOf: TypeError });
  await t.throwsAsync(store.audit.append({ ...event("encryptData", P, null), outcome: "maybe" as never }), { instanceOf: TypeError });
  await t.throwsAsync(store.audit.append({ ...event("encryptData", P, null, { requestId: "\ud800" }), outcome: "success" }), { instanceOf: TypeError });
  t.is((await store.audit.head()).seq, 0);
});

test("a complete export round-trips and verifies on its own; a doctored one does not", async (t) => {
  const { store } = await populated(t);
  await store.audit.checkpoint();
  const anchor = (await store.audit.anchor())!;
  t.is(anchor.seq, 17, "a manual checkpoint covers everything");
  t.is(anchor.reason, "manual");
  const lines: string[] = [];
  t.is(await store.audit.export((line) => void lines.push(line)), 17);
  const read = await readAuditExport(lines);
  t.true(read.header.complete);
  t.is(read.header.logId, store.audit.logId.toString("hex"));
  t.deepEqual(read.records, (await store.audit.query({ limit: 1000 })).records);
  t.is(read.checkpoints.at(-1)?.seq, 17);
  const verdict = await verifyAuditExport(lines, MAC, { anchor });
  t.true(verdict.ok);
  if (verdict.ok) t.like(verdict, { records: 17, headSeq: 17, unanchored: 0, anchorChecked: true });

  const doctored = lines.map((line) => {
    const value = JSON.parse(line) as { type: string; seq?: number; outcome?: string };
    return value.type === "record" && value.seq === 14 ? JSON.stringify({ ...value, outcome: "success", errorCode: null }) : line;
  });
  const bad = await verifyAuditExport(doctored, MAC);
  t.false(bad.ok);
  if (!bad.ok) t.is(bad.firstBadSeq, 14, "the denied request turned into a success is named");
  const cut = lines.filter((line) => !line.includes('"seq":17,"time"'));
  const truncated = await verifyAuditExport(cut, MAC);
  t.like(truncated, { ok: false, problem: "truncated", firstBadSeq: 17 });
});

test("an export to a file stream reads back line by line", async (t) => {
  const { store } = await populated(t);
  const file = join(tempDir(t), "audit.jsonl");
  const out = createWriteStream(file);
  const count = await store.audit.export(out);
  out.end();
  await finished(out);
  const read = await readAuditExport(createInterface({ input: createReadStream(file), crlfDelay: Infinity }));
  t.is(read.records.length, count);
  const records: AuditRecord[] = read.records;
  t.true(records.every((r) => Buffer.isBuffer(r.hash) && r.hash.length === 32));
  t.deepEqual(records, (await store.audit.query({ limit: 1000 })).records);
});

test("a filtered export holds the matching records and says it cannot be verified", async (t) => {
  const { store, k1 } = await populated(t);
  const lines: string[] = [];
  const count = await store.audit.export((line) => void lines.push(line), { projectId: P, keyId: k1.keyId });
  const read = await readAuditExport(lines);
  t.false(read.header.complete);
  t.is(read.records.length, count);
  t.deepEqual(read.checkpoints, []);
  t.true(read.records.every((r) => r.keyId === k1.keyId));
  await t.throwsAsync(verifyAuditExport(lines, MAC), { instanceOf: AuditExportFormatError });
});

test("export lines out of place or malformed are refused with their line number", async (t) => {
  const { store } = await populated(t);
  const lines: string[] = [];
  await store.audit.export((line) => void lines.push(line));
  const cases: Array<[string, string[]]> = [
    ["no header", lines.slice(1)],
    ["two headers", [lines[0]!, ...lines]],
    ["checkpoint after records", [...lines, lines.find((l) => l.includes('"type":"checkpoint"'))!]],
    ["bad json", [lines[0]!, "{"]],
    ["bad time", [lines[0]!, lines.at(-1)!.replace(/"time":"[^"]+"/, '"time":"yesterday"')]],
    ["bad hash", [lines[0]!, lines.at(-1)!.replace(/"hash":"[0-9a-f]+"/, '"hash":"00"')]],
  ];
  for (const [name, input] of cases) {
    const error = await t.throwsAsync(readAuditExport(input), { instanceOf: AuditExportFormatError }, name);
    t.is(error?.code, "ERR_KMS_AUDIT_EXPORT_FORMAT", name);
  }
});
