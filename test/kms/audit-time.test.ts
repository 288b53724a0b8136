// Audit record times from a clock that steps: records dated earlier than those before them (an
// NTP step back, a restart with an earlier clock) are found by time queries and verify; a time no
// export could write (past the year 9999) never enters the log.
import test from "ava";
import { readAuditExport, verifyAuditExport } from "../../src/kms/audit/export.js";
import { event, MAC, openStore, tempDir } from "./store-helpers.js";

const P = "project-a";
/** 9999-12-31T23:59:59.999Z: the last millisecond ISO 8601 writes with four year digits. */
const LAST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

test("records dated before the ones ahead of them in the log are found by time windows, verify, and export, also after a restart", async (t) => {
  const directory = tempDir(t);
  // Blocks of one record each: each batch is its own block, so the windows below must find
  // blocks whose time_high (carried from the block before) is later than all their records.
  let store = await openStore(t, { directory, checkpoints: { everyRecords: 3, everyMs: 0 } });
  const times = [5_000, 9_000, 2_000, 3_000, 9_500, 1_000];
  for (const [i, time] of times.entries()) {
    if (i === 4) {
      await store.close();
      store = await openStore(t, { directory, checkpoints: { everyRecords: 3, everyMs: 0 } });
    }
    await store.audit.append({ ...event("genRandom", P, null, { time }), outcome: "success" });
  }
  const timesIn = async (from: number, to: number): Promise<number[]> =>
    (await store.audit.query({ from, to, limit: 100 })).records.map((r) => r.time);
  t.deepEqual(await timesIn(1_000, 4_000), [2_000, 3_000, 1_000], "in log order");
  t.deepEqual(await timesIn(0, 1_001), [1_000], "the last record, dated before every other");
  t.deepEqual(await timesIn(4_000, 9_001), [5_000, 9_000]);
  t.deepEqual((await store.audit.query({ projectId: P, action: "genRandom", from: 2_500, to: 3_500 })).records.map((r) => r.time), [3_000]);
  t.true((await store.audit.verify()).ok);
  const lines: string[] = [];
  await store.audit.checkpoint();
  await store.audit.export((line) => void lines.push(line));
  t.true((await verifyAuditExport(lines, MAC)).ok);
});

test("a record dated past the year 9999 is refused at append (no export could write it); the last millisecond of 9999 round-trips", async (t) => {
  const store = await openStore(t);
  for (const time of [LAST_MS + 1, 8.64e15, 8.64e15 + 1, 2 ** 53 - 1]) {
    await t.throwsAsync(store.audit.append({ ...event("genRandom", P, null, { time }), outcome: "success" }), { instanceOf: RangeError }, String(time));
  }
  t.is((await store.audit.head()).seq, 0, "nothing appended");
  await store.audit.append({ ...event("genRandom", P, null, { time: LAST_MS }), outcome: "success" });
  await store.audit.checkpoint();
  const lines: string[] = [];
  t.is(await store.audit.export((line) => void lines.push(line)), 1);
  t.is((await readAuditExport(lines)).records[0]?.time, LAST_MS);
  t.true((await verifyAuditExport(lines, MAC)).ok);
});
