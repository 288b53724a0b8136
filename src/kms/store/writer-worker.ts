/**
 * The writer thread (worker_threads): owns the store's write connection and runs batches sent by
 * writer.ts, one at a time, posting each result back after COMMIT has returned. Keeping COMMIT —
 * and its fsync — off the main thread lets the event loop serve requests while the disk works.
 *
 * Messages in:  { type: "batch", id, ops (packed: sqlite-writes.ts packOps) }  { type: "close" }
 * Messages out: { type: "ready", state }  { type: "failed", error }  { type: "batch", id, result }  { type: "closed" }
 */
import { parentPort, workerData } from "node:worker_threads";
import { openExecutor, serializeError, unpackOps, type PackedOp, type WriteExecutor } from "./sqlite-writes.js";

type Inbound = { type: "batch"; id: number; ops: PackedOp[] } | { type: "close" };

const port = parentPort;
if (port === null) throw new Error("writer-worker.js runs as a worker thread of the KMS store");

const { path } = workerData as { path: string };
let executor: WriteExecutor | null = null;
try {
  executor = openExecutor(path);
  port.postMessage({ type: "ready", state: executor.state });
} catch (error) {
  port.postMessage({ type: "failed", error: serializeError(error) });
  port.close();
}

port.on("message", (message: Inbound) => {
  if (executor === null) return;
  if (message.type === "batch") {
    const result = executor.runBatch(unpackOps(message.ops));
    port.postMessage({ type: "batch", id: message.id, result }, result.ok ? [result.hashes.buffer as ArrayBuffer] : []);
  } else {
    executor.close();
    executor = null;
    port.postMessage({ type: "closed" });
    port.close();
  }
});
