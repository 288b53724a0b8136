/**
 * The real KMS thread (src/service/thread-worker.ts) with two additions for thread.test.ts: a call
 * whose requestId is "crash" makes the thread throw an uncaught exception, the way a bug in the
 * KMS thread would end it; one whose requestId is "exhaust" keeps allocating until the thread's
 * heap limit ends it, the way something growing without bound would. The listener is attached
 * before the real one, so the call never runs.
 */
import { parentPort } from "node:worker_threads";
import { unpackCall, type ToKmsThread } from "../../src/service/thread.js";

const hoard: unknown[] = [];

parentPort?.on("message", (batch: ToKmsThread[]) => {
  const ids = batch.flatMap((m) => (Array.isArray(m) ? [unpackCall(m).requestId] : []));
  if (ids.includes("crash")) throw new Error("simulated crash of the KMS thread");
  if (ids.includes("exhaust")) for (;;) hoard.push(new Array(64 * 1024).fill(hoard.length));
});

await import("../../src/service/thread-worker.js");
