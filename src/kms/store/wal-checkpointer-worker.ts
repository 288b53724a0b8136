/**
 * The checkpointer's thread (wal-checkpointer.ts): its own connection to the store database, a
 * PASSIVE checkpoint every interval.
 *
 * Messages in:  { type: "close" }
 * Messages out: { type: "failed", message }
 */
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "./sqlite-writes.js";

const port = parentPort;
if (port === null) throw new Error("wal-checkpointer-worker.js runs as a worker thread of the KMS store");

const { path, intervalMs } = workerData as { path: string; intervalMs: number };

const failed = (error: unknown): void => port.postMessage({ type: "failed", message: (error as Error)?.message ?? String(error) });

let db: ReturnType<typeof openDatabase> | null = null;
try {
  db = openDatabase(path);
  // Only the writer's connection checkpoints automatically; this one checkpoints on its timer.
  db.pragma("wal_autocheckpoint = 0");
} catch (error) {
  failed(error);
}

const timer = db === null ? null : setInterval(() => {
  try {
    // PASSIVE: copies what it can without waiting for, or blocking, the writer and the readers.
    db?.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    failed(error);
  }
}, intervalMs);

port.on("message", (message: { type: string }) => {
  if (message.type !== "close") return;
  if (timer !== null) clearInterval(timer);
  // Never the last connection (the writer and the reader close after it), so closing does not
  // checkpoint or remove the log.
  db?.close();
  db = null;
  port.close();
});
if (db === null) port.close();
