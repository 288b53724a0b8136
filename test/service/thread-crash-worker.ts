/**
 * The real KMS thread (src/service/thread-worker.ts) with one addition for thread.test.ts: a call
 * whose requestId is "crash" makes the thread throw an uncaught exception, the way a bug in the
 * KMS thread would end it. The listener is attached before the real one, so the call never runs.
 */
import { parentPort } from "node:worker_threads";
import { unpackCall, type ToKmsThread } from "../../src/service/thread.js";

parentPort?.on("message", (batch: ToKmsThread[]) => {
  if (batch.some((m) => Array.isArray(m) && unpackCall(m).requestId === "crash")) throw new Error("simulated crash of the KMS thread");
});

await import("../../src/service/thread-worker.js");
