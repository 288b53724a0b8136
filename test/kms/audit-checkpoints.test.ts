// When the store writes checkpoints: every N records, after a quiet interval with records not yet
// covered, on close, on demand, and on open after a crash ("recovery"); each is MACed with the
// injected key and chains into verify()'s verdict.
import test from "ava";
import { checkpointMacInput } from "../../src/kms/audit/checkpoints.js";
import { openSqliteStore } from "../../src/kms/store/sqlite.js";
import { setTimeout as sleep } from "node:timers/promises";
import { event, MAC, openStore, rawDb, tempDir } from "./store-helpers.js";
import { checkpointFromRow, type CheckpointRow } from "../../src/kms/store/rows.js";

const P = "project-a";
const append = (store: Awaited<ReturnType<typeof openStore>>, n: number): Promise<unknown> =>
  Promise.all(Array.from({ length: n }, () => store.audit.append({ ...event("genRandom", P, null), outcome: "success" })));

function checkpointsIn(dir: string) {
  const db = rawDb(dir);
  try {
    return (db.prepare("SELECT * FROM audit_checkpoints ORDER BY idx").all() as CheckpointRow[]).map(checkpointFromRow);
  } finally {
    db.close();
  }
}

test("every N records, and on close", async (t) => {
  const dir = tempDir(t);
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", checkpoints: { everyRecords: 5, everyMs: 0 } });
  for (let i = 0; i < 12; i++) await append(store, 1);
  await store.flush();
  const logId = store.audit.logId;
  await store.close();
  const checkpoints = checkpointsIn(dir);
  t.deepEqual(checkpoints.map((c) => [c.index, c.reason]), [[1, "count"], [2, "count"], [3, "close"]]);
  t.true(checkpoints[0]!.seq >= 5 && checkpoints[1]!.seq >= 10 && checkpoints[1]!.seq - checkpoints[0]!.seq >= 5);
  t.is(checkpoints[2]!.seq, 12);
  for (const checkpoint of checkpoints) t.true(MAC.verifyMac(checkpointMacInput(logId, checkpoint), checkpoint.mac));
});

test("after a quiet interval with records not yet covered", async (t) => {
  const store = await openStore(t, { writer: "inline", checkpoints: { everyRecords: 1000, everyMs: 100 } });
  await append(store, 3);
  for (let waited = 0; waited < 3000 && (await store.audit.anchor()) === null; waited += 50) await sleep(50);
  const anchor = await store.audit.anchor();
  t.like(anchor, { index: 1, seq: 3, reason: "interval" });
  await sleep(300);
  t.is((await store.audit.anchor())?.index, 1, "no new checkpoint without new records");
});

test("on demand: covers what is committed; without new records it returns the newest", async (t) => {
  const store = await openStore(t, { writer: "worker", checkpoints: { everyRecords: 1000, everyMs: 0 } });
  t.is(await store.audit.checkpoint(), null, "an empty log has none");
  await append(store, 4);
  const first = await store.audit.checkpoint();
  t.like(first, { index: 1, seq: 4, reason: "manual" });
  t.deepEqual(await store.audit.checkpoint(), first);
  const verdict = await store.audit.verify();
  t.like(verdict, { ok: true, records: 4, checkpoints: 1, unanchored: 0 });
});

test("a MAC that fails does not lose records: they stay unanchored and the next checkpoint covers them", async (t) => {
  let broken = true;
  const warnings: string[] = [];
  const mac = { mac: (data: Buffer) => { if (broken) throw new Error("token removed"); return MAC.mac(data); }, verifyMac: MAC.verifyMac };
  const store = await openStore(t, { writer: "inline", mac, checkpoints: { everyRecords: 2, everyMs: 0 }, warn: (m) => warnings.push(m) });
  await append(store, 3);
  await store.flush();
  t.is(await store.audit.anchor(), null);
  await t.throwsAsync(store.audit.checkpoint(), { message: /the MAC failed: token removed/ });
  t.true(warnings.some((w) => /token removed/.test(w)));
  broken = false;
  t.like(await store.audit.checkpoint(), { index: 1, seq: 3 });
  t.like(await store.audit.verify(), { ok: true, records: 3, unanchored: 0 });
});
