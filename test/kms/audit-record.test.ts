// audit.record, the request path's append (store/audit-appends.ts): records encoded on the
// caller's thread, many to one write; each promise settles only after the commit that holds its
// record; a record that cannot be encoded is refused alone; the records, their usage counts and
// the chain are exactly what audit.append would have made.
import test from "ava";
import Database from "better-sqlite3";
import { join } from "node:path";
import { AuditBlockReader } from "../../src/kms/store/audit-reads.js";
import { DATABASE_FILE } from "../../src/kms/store/sqlite.js";
import type { AuditEvent } from "../../src/kms/types.js";
import { newKey, openStore, tempDir, WRITERS } from "./store-helpers.js";

const P = "project-r";

for (const writer of WRITERS) {
  test(`records share writes, each settles after its commit, and read back as written [${writer}]`, async (t) => {
    const dir = tempDir(t);
    const store = await openStore(t, { writer, directory: dir, checkpoints: { everyRecords: 100, everyMs: 0 } });
    const key = await store.keys.create(newKey(P));
    const observer = new Database(join(dir, DATABASE_FILE), { readonly: true });
    t.teardown(() => observer.close());
    const observed = new AuditBlockReader(observer);
    const before = store.stats();
    const head = (await store.audit.head()).seq;
    const events: AuditEvent[] = Array.from({ length: 600 }, (_, i) => ({
      time: 1_700_000_000_000 + i, requestId: `rec-${i}`, projectId: i % 7 === 0 ? null : P, principalId: i % 5 === 0 ? null : "u",
      source: "src", action: i % 2 === 0 ? "encryptData" : "decryptData", keyId: i % 3 === 0 ? null : key.keyId,
      detail: i % 11 === 0 ? `détail ✓ ${i}` : null,
    }));
    let visible = 0;
    await Promise.all(events.map((event, i) => store.audit.record(event, i % 4 === 0 ? "denied" : "success", i % 4 === 0 ? "KMS.0306" : null).then(() => {
      // Committed: another connection sees it now.
      if ([...observed.records({ afterSeq: head })].some((r) => r.requestId === event.requestId)) visible++;
    })));
    t.is(visible, events.length);
    const after = store.stats();
    t.true(after.transactions - before.transactions < 20, `${after.transactions - before.transactions} transactions for 600 records`);
    const { records } = await store.audit.query({ afterSeq: head, limit: 1000 });
    t.is(records.length, events.length);
    t.deepEqual(records.map((r) => r.seq), events.map((_, i) => head + i + 1));
    records.forEach((r, i) => {
      const e = events[i]!;
      t.deepEqual([r.requestId, r.time, r.projectId, r.principalId, r.source, r.action, r.keyId, r.detail], [e.requestId, e.time, e.projectId, e.principalId, e.source, e.action, e.keyId, e.detail]);
      t.is(r.outcome, i % 4 === 0 ? "denied" : "success");
    });
    t.deepEqual((await store.audit.head()).seq, head + events.length);
    await store.usage.flush();
    const usage = await store.usage.get(P, key.keyId);
    const successes = (action: string): number => events.filter((e, i) => i % 4 !== 0 && e.keyId !== null && e.projectId === P && e.action === action).length;
    t.is(usage.find((u) => u.action === "encryptData")?.count, successes("encryptData"));
    t.is(usage.find((u) => u.action === "decryptData")?.count, successes("decryptData"));
    const verdict = await store.audit.verify();
    t.true(verdict.ok);
  });
}

test("a record that cannot be encoded is refused alone, nothing appended", async (t) => {
  const store = await openStore(t, { writer: "inline" });
  const good = (requestId: string): AuditEvent => ({ requestId, projectId: P, principalId: "u", source: "s", action: "genRandom", keyId: null });
  const head = (await store.audit.head()).seq;
  const results = await Promise.allSettled([
    store.audit.record(good("a"), "success", null),
    store.audit.record({ ...good("b"), action: "not an action" }, "success", null),
    store.audit.record({ ...good("c"), source: "lone \uD800 surrogate" }, "success", null),
    store.audit.record(good("d"), "bogus" as never, null),
    store.audit.record(good("e"), "success", null),
  ]);
  t.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "rejected", "rejected", "fulfilled"]);
  for (const r of results) if (r.status === "rejected") t.true(r.reason instanceof TypeError);
  const { records } = await store.audit.query({ afterSeq: head, limit: 10 });
  t.deepEqual(records.map((r) => r.requestId), ["a", "e"]);
  t.true((await store.audit.verify()).ok);
});

test("a refused first record leaves its write empty, and a closed store refuses records", async (t) => {
  const store = await openStore(t, { writer: "worker" });
  await t.throwsAsync(store.audit.record({ requestId: "x", projectId: P, principalId: "u", source: "s", action: "1bad", keyId: null }, "success", null), { instanceOf: TypeError });
  await store.flush();
  t.true((await store.audit.verify()).ok);
  await store.close();
  await t.throwsAsync(store.audit.record({ requestId: "y", projectId: P, principalId: "u", source: "s", action: "genRandom", keyId: null }, "success", null), { message: /closed/ });
});

test("records still land when the committer starts a batch the moment it is submitted (maxBatch 1)", async (t) => {
  const store = await openStore(t, { writer: "worker", groupCommit: { maxBatch: 1 }, auditBatch: 4 });
  const head = (await store.audit.head()).seq;
  await Promise.all(Array.from({ length: 50 }, (_, i) =>
    store.audit.record({ requestId: `one-${i}`, projectId: P, principalId: "u", source: "s", action: "genRandom", keyId: null }, "success", null)));
  const { records } = await store.audit.query({ afterSeq: head, limit: 100 });
  t.deepEqual(records.map((r) => r.requestId), Array.from({ length: 50 }, (_, i) => `one-${i}`));
  t.true((await store.audit.verify()).ok);
});
