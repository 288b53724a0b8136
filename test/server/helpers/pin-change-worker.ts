/**
 * The real KMS thread (src/service/thread-worker.ts) with one addition for health.test.ts: before
 * a call whose requestId is CHANGE_PIN_REQUEST runs, the token's PIN is changed under the service
 * (./token-pin.ts). The listener is attached before the real one, so the change comes first.
 */
import { parentPort } from "node:worker_threads";
import { unpackCall, type ToKmsThread } from "../../../src/service/thread.js";
import { CHANGE_PIN_REQUEST, changeTokenPin } from "./token-pin.js";

parentPort?.on("message", (batch: ToKmsThread[]) => {
  if (batch.some((m) => Array.isArray(m) && unpackCall(m).requestId === CHANGE_PIN_REQUEST)) changeTokenPin();
});

await import("../../../src/service/thread-worker.js");
