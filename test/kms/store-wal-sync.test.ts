// The inline writer's durability (store/wal-sync.ts): its COMMITs do not sync the write-ahead log
// themselves, so a write may be acknowledged only after an fdatasync of that log which began after
// the write's COMMIT; syncs coalesce and acknowledge in commit order; a failed sync fails every
// waiting and later write, and a reopened store carries on from what is in the file. The syncs go
// through a gate that can hold them; held, nothing is acknowledged.
import test from "ava";
import { fdatasync, fstatSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { isStoreError } from "../../src/kms/store/errors.js";
import { DATABASE_FILE, openSqliteStore } from "../../src/kms/store/sqlite.js";
import type { SyncFunction } from "../../src/kms/store/wal-sync.js";
import { MAC, event, newKey, openStore, tempDir } from "./store-helpers.js";

const P = "project-a";

/** Syncs that pass through to fdatasync, or wait while the gate is held. */
class SyncGate {
  held = false;
  fail = false;
  readonly fds = new Set<number>();
  readonly waiting: Array<() => void> = [];
  calls = 0;
  readonly sync: SyncFunction = (fd, done) => {
    this.calls++;
    this.fds.add(fd);
    if (this.fail) {
      setImmediate(() => done(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" })));
    } else if (this.held) {
      this.waiting.push(() => fdatasync(fd, done));
    } else {
      fdatasync(fd, done);
    }
  };

  releaseOne(): void {
    this.waiting.shift()!();
  }
}

async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A promise's state, without waiting for it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return { settled: () => settled, promise };
}

test("a write is acknowledged only after an fdatasync of the write-ahead log that began after its COMMIT; syncs coalesce in order", async (t) => {
  const gate = new SyncGate();
  const dir = tempDir(t);
  const store = await openStore(t, { directory: dir, writer: "inline", walSync: gate.sync });
  t.is(store.writerMode, "inline");
  await store.keys.create(newKey(P));

  gate.held = true;
  const first = newKey(P);
  const w1 = track(store.keys.create(first));
  await until(() => gate.waiting.length === 1, "the first sync");
  // COMMITted (a read sees the key), not yet acknowledged.
  t.truthy(await store.keys.get(P, first.keyId));
  await sleep(30);
  t.false(w1.settled(), "acknowledged before its sync returned");

  // A second write COMMITs while the first sync is out: that sync cannot cover it.
  const second = newKey(P);
  const w2 = track(store.keys.create(second));
  await until(async () => (await store.keys.get(P, second.keyId)) !== undefined, "the second COMMIT");
  t.is(gate.waiting.length, 1, "one sync at a time");
  gate.releaseOne();
  await w1.promise;
  await sleep(30);
  t.false(w2.settled(), "acknowledged by a sync that began before its COMMIT");
  await until(() => gate.waiting.length === 1, "the second sync");
  gate.releaseOne();
  t.is((await w2.promise).keyId, second.keyId);

  // Every sync went to the database's write-ahead log.
  const wal = statSync(join(dir, `${DATABASE_FILE}-wal`));
  t.true(gate.fds.size >= 1);
  for (const fd of gate.fds) t.is(fstatSync(fd).ino, wal.ino);
  gate.held = false;
});

test("many writes committed during one sync are acknowledged by the next one, all together", async (t) => {
  const gate = new SyncGate();
  const store = await openStore(t, { writer: "inline", walSync: gate.sync });
  await store.keys.create(newKey(P));
  gate.held = true;
  const head = track(store.keys.create(newKey(P)));
  await until(() => gate.waiting.length === 1, "the first sync");
  const callsBefore = gate.calls;
  const rest = Array.from({ length: 50 }, () => track(store.keys.create(newKey(P))));
  await until(async () => (await store.keys.list(P, { limit: 1000 })).items.length === 52, "the later COMMITs");
  t.is(gate.calls, callsBefore, "a sync per COMMIT while one is out");
  gate.releaseOne();
  await head.promise;
  await until(() => gate.waiting.length === 1, "the covering sync");
  t.false(rest.some((w) => w.settled()));
  gate.releaseOne();
  await Promise.all(rest.map((w) => w.promise));
  t.is(gate.calls, callsBefore + 1);
  gate.held = false;
});

test("a failed sync fails the writes waiting for it and every later one; the store reopened carries on", async (t) => {
  const gate = new SyncGate();
  const dir = tempDir(t);
  const warnings: string[] = [];
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", walSync: gate.sync, warn: (m) => warnings.push(m) });
  const kept = await store.keys.create(newKey(P));
  t.is(store.unwritable(), undefined);

  gate.fail = true;
  const lost = await t.throwsAsync(store.keys.create(newKey(P)));
  t.true(isStoreError(lost) && lost.code === "ERR_KMS_STORE_WRITE_FAILED", String(lost));
  t.regex(lost!.message, /write-ahead log could not be synced to disk \(EIO\).*restart/);
  gate.fail = false;
  // The disk may have dropped what that sync was to keep, whatever later syncs say.
  const later = await t.throwsAsync(store.keys.create(newKey(P)));
  t.true(isStoreError(later) && later.code === "ERR_KMS_STORE_WRITE_FAILED", String(later));
  // For health checks: nothing can be acknowledged until a restart.
  t.regex(store.unwritable() ?? "", /could not be synced.*restart/);
  await store.close();

  const reopened = await openStore(t, { directory: dir, writer: "inline" });
  t.truthy(await reopened.keys.get(P, kept.keyId));
  const fresh = await reopened.keys.create(newKey(P));
  t.truthy(await reopened.keys.get(P, fresh.keyId));
  const verdict = await reopened.audit.verify();
  t.true(verdict.ok, JSON.stringify(verdict));
});

test("walSync is refused with the worker writer, whose COMMITs sync themselves", async (t) => {
  await t.throwsAsync(openSqliteStore({ directory: tempDir(t), mac: MAC, writer: "worker", walSync: () => {} }), { instanceOf: TypeError, message: /inline/ });
});

test("after a failed sync, a usage write fails to its caller alone (no unhandled rejection), and close() finishes with a warning", async (t) => {
  const gate = new SyncGate();
  const warnings: string[] = [];
  const store = await openSqliteStore({ directory: tempDir(t), mac: MAC, writer: "inline", walSync: gate.sync, usageFlushMs: 60_000, warn: (m) => warnings.push(m) });
  const key = await store.keys.create(newKey(P));
  await store.audit.append({ ...event("encryptData", P, key.keyId), outcome: "success" });
  gate.fail = true;
  await t.throwsAsync(store.usage.flush(), { code: "ERR_KMS_STORE_WRITE_FAILED" });
  // An unhandled rejection surfaces after the microtasks of this turn.
  await sleep(20);
  await store.close();
  t.true(warnings.some((m) => /closing: .*could not be synced/.test(m)), warnings.join("\n"));
});
