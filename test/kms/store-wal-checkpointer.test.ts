// The checkpointer thread (store/wal-checkpointer.ts) copies committed frames of the write-ahead
// log into the database while the store runs, so the writer's own automatic checkpoint (past
// 10 000 frames) finds little left to copy. Observed through the wal-index header in the -shm file
// (SQLite's file format, "WAL-Index Format"): mxFrame, the frames in the log, at byte 16, and
// nBackfill, the frames copied into the database, at byte 96, in the machine's byte order. The
// thread starts only once the log has grown to walCheckpointStartBytes.
import test from "ava";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DATABASE_FILE, openSqliteStore } from "../../src/kms/store/sqlite.js";
import { event, MAC, material, newKey, openStore, tempDir, testMac, WRITERS } from "./store-helpers.js";

const P = "project-a";

function walIndex(dir: string): { mxFrame: number; nBackfill: number } {
  const shm = readFileSync(join(dir, `${DATABASE_FILE}-shm`));
  const u32 = (at: number): number => (endianness() === "LE" ? shm.readUInt32LE(at) : shm.readUInt32BE(at));
  return { mxFrame: u32(16), nBackfill: u32(96) };
}

/** Waits (up to 4 s) until the checkpoints have copied the first `frames` frames of the log. */
async function backfilled(dir: string, frames: number): Promise<{ mxFrame: number; nBackfill: number }> {
  let index = walIndex(dir);
  for (let i = 0; i < 400 && !(index.nBackfill >= frames); i++) {
    await sleep(10);
    index = walIndex(dir);
  }
  return index;
}

/** This process's threads: new Worker() creates its thread before it returns, and it is gone once "exit" is emitted. */
const threads = (): number => readdirSync("/proc/self/task").length;

async function writeKeys(store: Awaited<ReturnType<typeof openStore>>, count: number): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => store.keys.create(newKey(P, { alias: `k-${i + j}` }), { version: material(`v${i + j}`) })));
  }
}

for (const writer of WRITERS) {
  test(`${writer} writer: committed frames reach the database without the writer checkpointing`, async (t) => {
    const dir = tempDir(t);
    const store = await openStore(t, { directory: dir, writer, walCheckpointMs: 10, walCheckpointStartBytes: 0 });
    await writeKeys(store, 300);
    const written = walIndex(dir);
    // Far below the writer's automatic checkpoint (10 000 frames): only the checkpointer copies.
    t.true(written.mxFrame > 0 && written.mxFrame < 10_000);
    const index = await backfilled(dir, written.mxFrame);
    t.true(index.nBackfill >= written.mxFrame, `${index.nBackfill} of ${written.mxFrame} frames copied`);
    await store.close();
    const reopened = await openSqliteStore({ directory: dir, mac: MAC, writer });
    t.is((await reopened.keys.list(P, { limit: 1000 })).items.length, 300);
    await reopened.close();
  });
}

test("without the checkpointer, the frames stay in the log until the writer's automatic checkpoint", async (t) => {
  const dir = tempDir(t);
  const store = await openStore(t, { directory: dir, writer: "inline", walCheckpointMs: 0 });
  await writeKeys(store, 300);
  await sleep(100);
  const index = walIndex(dir);
  t.true(index.mxFrame > 0);
  t.is(index.nBackfill, 0);
  await store.close();
});

test("the checkpointer starts once the log has reached walCheckpointStartBytes, not before", async (t) => {
  const dir = tempDir(t);
  const store = await openStore(t, { directory: dir, writer: "inline", walCheckpointMs: 10, walCheckpointStartBytes: 1024 * 1024 });
  await writeKeys(store, 50);
  const small = statSync(join(dir, `${DATABASE_FILE}-wal`)).size;
  t.true(small < 1024 * 1024, `${small} bytes of log`);
  await sleep(100);
  t.is(walIndex(dir).nBackfill, 0, "no checkpointer below the start size");
  // One batch per key: the log's size is looked at every 64 batches.
  for (let i = 0; statSync(join(dir, `${DATABASE_FILE}-wal`)).size < 1024 * 1024; i++) {
    await store.keys.create(newKey(P, { alias: `more-${i}` }), { version: material(`more-${i}`) });
  }
  for (let i = 0; i < 64; i++) await store.keys.create(newKey(P, { alias: `after-${i}` }), { version: material(`after-${i}`) });
  const written = walIndex(dir);
  const index = await backfilled(dir, written.mxFrame);
  t.true(index.nBackfill >= written.mxFrame, `${index.nBackfill} of ${written.mxFrame} frames copied`);
});

test("walCheckpointMs must be a number of ms >= 0, walCheckpointStartBytes an integer >= 0", async (t) => {
  const dir = tempDir(t);
  for (const walCheckpointMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, walCheckpointMs }), { instanceOf: RangeError });
  }
  for (const walCheckpointStartBytes of [-1, 1.5, Number.NaN]) {
    await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, walCheckpointStartBytes }), { instanceOf: RangeError });
  }
});

// Serial: the thread count is the whole process's, so no other test of this file may run meanwhile.
test.serial("an open that fails leaves no checkpointer thread behind", async (t) => {
  if (!existsSync("/proc/self/task")) {
    t.pass("no /proc/self/task to count threads in");
    return;
  }
  const dir = tempDir(t);
  const store = await openStore(t, { directory: dir, writer: "inline", walCheckpointMs: 0 });
  await store.keys.create(newKey(P, { alias: "one" }), { audit: event("createKey", P, null) });
  await store.close();
  const before = threads();
  // Another MAC key: the newest checkpoint's MAC does not verify, and the open is refused.
  await t.throwsAsync(openSqliteStore({ directory: dir, mac: testMac(Buffer.alloc(32, 0x11)), writer: "inline", walCheckpointMs: 10, walCheckpointStartBytes: 0 }),
    { code: "ERR_KMS_AUDIT_TAMPERED" });
  t.is(threads(), before);
  // The directory is free again and the store opens as it was.
  const reopened = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", walCheckpointMs: 0 });
  t.is((await reopened.keys.list(P, { limit: 10 })).items.length, 1);
  await reopened.close();
});
