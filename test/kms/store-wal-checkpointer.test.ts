// The checkpointer thread (store/wal-checkpointer.ts) copies committed frames of the write-ahead
// log into the database while the store runs, so the writer's own automatic checkpoint (past
// 10 000 frames) finds little left to copy. Observed through the wal-index header in the -shm file
// (SQLite's file format, "WAL-Index Format"): mxFrame, the frames in the log, at byte 16, and
// nBackfill, the frames copied into the database, at byte 96, in the machine's byte order.
import test from "ava";
import { readFileSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DATABASE_FILE, openSqliteStore } from "../../src/kms/store/sqlite.js";
import { MAC, material, newKey, openStore, tempDir, WRITERS } from "./store-helpers.js";

const P = "project-a";

function walIndex(dir: string): { mxFrame: number; nBackfill: number } {
  const shm = readFileSync(join(dir, `${DATABASE_FILE}-shm`));
  const u32 = (at: number): number => (endianness() === "LE" ? shm.readUInt32LE(at) : shm.readUInt32BE(at));
  return { mxFrame: u32(16), nBackfill: u32(96) };
}

async function writeKeys(store: Awaited<ReturnType<typeof openStore>>, count: number): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => store.keys.create(newKey(P, { alias: `k-${i + j}` }), { version: material(`v${i + j}`) })));
  }
}

for (const writer of WRITERS) {
  test(`${writer} writer: committed frames reach the database without the writer checkpointing`, async (t) => {
    const dir = tempDir(t);
    const store = await openStore(t, { directory: dir, writer, walCheckpointMs: 10 });
    await writeKeys(store, 300);
    const written = walIndex(dir);
    // Far below the writer's automatic checkpoint (10 000 frames): only the checkpointer copies.
    t.true(written.mxFrame > 0 && written.mxFrame < 10_000);
    let index = written;
    for (let i = 0; i < 400 && !(index.nBackfill >= written.mxFrame); i++) {
      await sleep(10);
      index = walIndex(dir);
    }
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

test("walCheckpointMs must be a number of ms >= 0", async (t) => {
  const dir = tempDir(t);
  for (const walCheckpointMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, walCheckpointMs }), { instanceOf: RangeError });
  }
});
