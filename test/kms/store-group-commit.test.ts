// Group commit: concurrent writes share transactions (fewer commits, so fewer fsyncs, than writes),
// each write's promise settles only after its transaction committed, one refused write does not
// disturb its batch, and a transaction that fails as a whole rejects every write in it and leaves
// the audit chain where the last commit left it.
import test from "ava";
import Database from "better-sqlite3";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { GroupCommitter, type RunOutcome } from "../../src/kms/store/group-commit.js";
import { DATABASE_FILE } from "../../src/kms/store/sqlite.js";
import { openDatabase, reviveError, WriteExecutor, type SerializedError, type WriteOp } from "../../src/kms/store/sqlite-writes.js";
import { isStoreError } from "../../src/kms/store/errors.js";
import { KmsError } from "../../src/kms/errors.js";
import { verifyRecords } from "../../src/kms/audit/verify.js";
import { AuditBlockReader } from "../../src/kms/store/audit-reads.js";
import { auditRecords, event, MAC, newKey, openStore, tempDir, WRITERS } from "./store-helpers.js";

const P = "project-a";

/** A runner that records each batch and takes `ms` per transaction. */
function fakeRunner(ms = 5, fail?: (ops: number[]) => boolean): { runs: number[][]; run: (ops: number[]) => Promise<RunOutcome<number>> } {
  const runs: number[][] = [];
  return {
    runs,
    run: async (ops) => {
      runs.push(ops);
      await sleep(ms);
      if (fail?.(ops)) return { ok: false, error: new Error(`batch ${runs.length} failed`), ms };
      return { ok: true, results: ops.map((op) => op * 10), ms };
    },
  };
}

test.serial("writes of one event-loop turn share a batch; writes made while it runs form the next", async (t) => {
  const runner = fakeRunner(20);
  const committer = new GroupCommitter(runner.run);
  const first = [1, 2, 3].map((n) => committer.submit(n));
  await sleep(5); // the first batch is running now
  const second = [4, 5].map((n) => committer.submit(n));
  t.deepEqual(await Promise.all([...first, ...second]), [10, 20, 30, 40, 50]);
  t.deepEqual(runner.runs, [[1, 2, 3], [4, 5]]);
  t.like(committer.stats(), { transactions: 2, writes: 5, largestBatch: 3, queued: 0 });
});

test.serial("with a weight, a batch takes writes up to maxWeight (always at least one); kick() starts one at once", async (t) => {
  const runner = fakeRunner(10);
  // A write's weight is its value: 5 + 3 fit in 8, the 4 after them does not; a 9 alone still goes.
  const committer = new GroupCommitter<number, number>(runner.run, { maxWeight: 8, maxInFlight: 4 }, undefined, (op) => op);
  const writes = [5, 3, 4, 9, 1].map((n) => committer.submit(n));
  await Promise.all(writes);
  t.deepEqual(runner.runs, [[5, 3], [4], [9], [1]]);
  // kick(): no waiting for the next turn of the event loop.
  const kicked = committer.submit(2);
  committer.kick();
  t.is(runner.runs.length, 5, "started synchronously");
  t.is(await kicked, 20);
  t.throws(() => new GroupCommitter(runner.run, { maxWeight: 0 }), { instanceOf: RangeError });
});

test.serial("at most maxInFlight batches are with the runner; later writes wait and then go together", async (t) => {
  let concurrent = 0;
  let most = 0;
  const runs: number[][] = [];
  const committer = new GroupCommitter<number, number>(async (ops) => {
    runs.push(ops);
    most = Math.max(most, ++concurrent);
    await sleep(20);
    concurrent--;
    return { ok: true, results: ops, ms: 20 };
  }, { maxInFlight: 2 });
  const writes = [committer.submit(1)];
  await sleep(2);
  writes.push(committer.submit(2));
  await sleep(2);
  writes.push(committer.submit(3), committer.submit(4));
  await sleep(2);
  writes.push(committer.submit(5));
  t.deepEqual(await Promise.all(writes), [1, 2, 3, 4, 5]);
  t.is(most, 2);
  t.deepEqual(runs, [[1], [2], [3, 4, 5]]);
  t.throws(() => new GroupCommitter(async () => ({ ok: true, results: [], ms: 0 }), { maxInFlight: 0 }), { instanceOf: RangeError });
});

test.serial("maxBatch splits a queue; maxBatch 1 is one transaction per write", async (t) => {
  const runner = fakeRunner(1);
  const committer = new GroupCommitter(runner.run, { maxBatch: 4 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => committer.submit(i)));
  t.deepEqual(runner.runs.map((ops) => ops.length), [4, 4, 2]);
  const single = fakeRunner(1);
  const one = new GroupCommitter(single.run, { maxBatch: 1 });
  await Promise.all(Array.from({ length: 5 }, (_, i) => one.submit(i)));
  t.is(single.runs.length, 5);
});

test.serial("maxDelayMs gathers writes across event-loop turns", async (t) => {
  const runner = fakeRunner(1);
  const committer = new GroupCommitter(runner.run, { maxDelayMs: 300 });
  const writes = [committer.submit(1)];
  await sleep(5);
  writes.push(committer.submit(2));
  await sleep(5);
  writes.push(committer.submit(3));
  await Promise.all(writes);
  t.deepEqual(runner.runs, [[1, 2, 3]]);
});

test.serial("a failed transaction rejects every write in it, and only those; afterBatch sees it before they settle", async (t) => {
  const runner = fakeRunner(5, (ops) => ops.includes(3));
  const seen: string[] = [];
  const committer = new GroupCommitter(runner.run, {}, (ops, outcome) => seen.push(`${ops.join(",")}:${outcome.ok}`));
  const batch1 = [1, 2, 3].map((n) => committer.submit(n).then((value) => {
    seen.push(`resolved ${value}`);
    return value;
  }));
  const results = await Promise.allSettled(batch1);
  t.true(results.every((r) => r.status === "rejected"));
  t.is(seen[0], "1,2,3:false");
  t.is(await committer.submit(4), 40, "the next batch runs");
  t.like(committer.stats(), { transactions: 1, failedTransactions: 1 });
});

test("options are checked", (t) => {
  const runner = fakeRunner();
  t.throws(() => new GroupCommitter(runner.run, { maxBatch: 0 }), { instanceOf: RangeError });
  t.throws(() => new GroupCommitter(runner.run, { maxDelayMs: -1 }), { instanceOf: RangeError });
});

for (const writer of WRITERS) {
  test(`store [${writer}]: 300 concurrent durable writes take far fewer transactions; each is committed when it resolves`, async (t) => {
    const dir = tempDir(t);
    const store = await openStore(t, { writer, directory: dir, checkpoints: { everyRecords: 100_000, everyMs: 0 } });
    const observer = new Database(join(dir, DATABASE_FILE), { readonly: true });
    t.teardown(() => observer.close());
    const observed = new AuditBlockReader(observer);
    const keyById = observer.prepare("SELECT alias FROM keys WHERE project_id = ? AND key_id = ?").pluck();
    const before = store.stats().transactions;
    const N = 300;
    let visibleAtResolve = 0;
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < N; i++) {
      if (i % 3 === 0) {
        const key = newKey(P);
        writes.push(store.keys.create(key).then(() => {
          // Another connection sees it at the moment the promise resolves: it was committed.
          if (keyById.get(P, key.keyId) === key.alias) visibleAtResolve++;
        }));
      } else {
        const requestId = `concurrent-${i}`;
        writes.push(store.audit.append({ ...event("encryptData", P, null, { requestId }), outcome: "success" }).then((record) => {
          if (observed.record(record.seq)?.requestId === requestId) visibleAtResolve++;
        }));
      }
    }
    await Promise.all(writes);
    const transactions = store.stats().transactions - before;
    t.log(`${N} writes in ${transactions} transactions (largest ${store.stats().largestBatch})`);
    t.is(visibleAtResolve, N);
    t.true(transactions < N / 10, `${transactions} transactions`);
  });

  test(`store [${writer}]: audit records get seqs in the order they were submitted, without gaps`, async (t) => {
    const store = await openStore(t, { writer });
    const base = (await store.audit.head()).seq;
    const records = await Promise.all(Array.from({ length: 200 }, (_, i) =>
      store.audit.append({ ...event("genRandom", P, null, { requestId: `order-${i}` }), outcome: "success" })));
    t.deepEqual(records.map((r) => r.seq), Array.from({ length: 200 }, (_, i) => base + i + 1));
    t.deepEqual(records.map((r) => r.requestId), Array.from({ length: 200 }, (_, i) => `order-${i}`));
    t.true((await store.audit.verify()).ok);
  });

  test(`store [${writer}]: one refused write in a batch fails alone`, async (t) => {
    const store = await openStore(t, { writer });
    await store.keys.create(newKey(P, { alias: "taken" }));
    const before = store.stats().transactions;
    const results = await Promise.allSettled([
      store.keys.create(newKey(P, { alias: "a" })),
      store.keys.create(newKey(P, { alias: "taken" })),
      store.audit.append({ ...event("genRandom", P, null), outcome: "success" }),
      store.keys.create(newKey(P, { alias: "b" })),
    ]);
    t.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    t.is(((results[1] as PromiseRejectedResult).reason as KmsError).code, "KMS.1104");
    t.is(store.stats().transactions - before, 1, "all four in one transaction");
    t.is(await store.keys.count(P), 3);
  });

  test(`store [${writer}]: maxBatch 1 commits every write on its own`, async (t) => {
    const store = await openStore(t, { writer, groupCommit: { maxBatch: 1 } });
    const before = store.stats().transactions;
    await Promise.all(Array.from({ length: 20 }, () => store.audit.append({ ...event("genRandom", P, null), outcome: "success" })));
    t.is(store.stats().transactions - before, 20);
  });
}

test("the writer's connection: WAL, synchronous=FULL, foreign keys, secure_delete", (t) => {
  const db = openDatabase(join(tempDir(t), "x.sqlite"));
  t.teardown(() => db.close());
  t.is(db.pragma("journal_mode", { simple: true }), "wal");
  t.is(db.pragma("synchronous", { simple: true }), 2, "2 = FULL");
  t.is(db.pragma("foreign_keys", { simple: true }), 1);
  t.is(db.pragma("secure_delete", { simple: true }), 1);
});

test("a transaction that fails as a whole (disk full) rejects all its writes and the chain resumes from the last commit", (t) => {
  const path = join(tempDir(t), DATABASE_FILE);
  const db = openDatabase(path);
  t.teardown(() => db.close());
  const executor = new WriteExecutor(db);
  const append = (requestId: string, detail: string | null = null): WriteOp => ({
    op: "audit.append",
    record: { time: 1, requestId, projectId: P, principalId: null, source: "t", action: "genRandom", keyId: null, detail, outcome: "success", errorCode: null },
  });
  const ok = executor.runBatch([append("a"), append("b")]);
  t.true(ok.ok);
  // Cap the file at its current size: the next big batch cannot fit.
  const pages = db.pragma("page_count", { simple: true }) as number;
  db.pragma(`max_page_count = ${pages + 2}`);
  const big = "x".repeat(64 * 1024);
  const failed = executor.runBatch([append("c", big), append("d", big), { op: "key.create", key: newKey(P), version: null, maxCustomKeys: null, existingAlias: "fail", now: 1, audit: null }]);
  t.false(failed.ok);
  // Every write of the batch gets the contract's "not made durable", naming SQLite's reason.
  const error = reviveError((failed as { error: SerializedError }).error);
  t.true(isStoreError(error, "ERR_KMS_STORE_WRITE_FAILED"), String(error));
  t.regex(error.message, /SQLITE_FULL/);
  t.false(db.inTransaction);
  db.pragma("max_page_count = 1073741823");
  const after = executor.runBatch([append("e")]);
  t.true(after.ok);
  t.is((after as { firstSeq: number }).firstSeq, 3, "seq continues from the last committed record");
  const rows = auditRecords(db);
  t.deepEqual(rows.map((r) => r.requestId), ["a", "b", "e"]);
  const logId = db.prepare("SELECT value FROM meta WHERE name = 'log_id'").pluck().get() as Buffer;
  t.true(verifyRecords(logId, MAC, rows, []).ok, "the chain is intact");
  t.is(db.prepare("SELECT count(*) FROM keys").pluck().get(), 0);
});

test("worker writer: a write that cannot be sent to the writer thread (a value structured clone refuses) fails alone and does not keep the process alive", async (t) => {
  const dir = tempDir(t);
  const store = new URL("../../src/kms/store/sqlite.js", import.meta.url).href;
  // The child ends its script without closing the store: an idle worker writer lets it exit; one
  // still waiting for an answer that will never come kept it running for ever.
  const script = `
    const { openSqliteStore } = await import(${JSON.stringify(store)});
    const s = await openSqliteStore({ directory: ${JSON.stringify(dir)}, mac: { mac: () => Buffer.alloc(32), verifyMac: () => true }, writer: "worker" });
    const key = { projectId: "p", keyId: "00000000-0000-4000-8000-000000000001", domainId: "d", alias: "a", keySpec: "AES_256", keyUsage: "ENCRYPT_DECRYPT", origin: "kms", state: 2, defaultKey: false };
    await s.keys.create({ ...key, description: () => 1 }, { version: { material: Buffer.alloc(40) } }).catch((e) => console.log("refused", e.name));
    await s.keys.create({ ...key, description: "fine" }, { version: { material: Buffer.alloc(40) } });
    console.log("next write committed");
  `;
  // A file, not --eval: the writer thread would inherit --input-type and fail to start.
  const child = join(dir, "child.mjs");
  writeFileSync(child, script);
  const result = await new Promise<{ error: Error | null; stdout: string }>((resolve) => {
    execFile(process.execPath, [child], { timeout: 60_000 }, (error, stdout) => resolve({ error, stdout }));
  });
  t.is(result.error, null, "the child exited by itself");
  t.is(result.stdout, "refused DataCloneError\nnext write committed\n");
});
