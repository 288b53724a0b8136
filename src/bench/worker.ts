/**
 * One bench thread (see ThreadPool in runner.ts): opens its own target and session, then prepares
 * and runs the trials it is sent, in lock step with the other threads.
 */
import { parentPort, workerData } from "node:worker_threads";
import { prepareTrial, timeTrial, type FromWorker, type ThreadOutcome, type Timing, type ToWorker } from "./runner.js";
import { openTarget, type OpenTarget, type TargetSpec } from "./targets.js";
import { BenchError } from "./types.js";

const { spec, timing, thread } = workerData as { spec: TargetSpec; timing: Timing; thread: number };
const port = parentPort!;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

let target: OpenTarget | undefined;
try {
  target = openTarget(spec);
  post({ type: "opened", session: target.session });
} catch (error) {
  post({ type: "error", message: error instanceof Error ? error.message : String(error), exitCode: error instanceof BenchError ? error.exitCode : 1 });
}

let pending: ReturnType<typeof prepareTrial> | undefined;
port.on("message", (message: ToWorker) => {
  try {
    if (message.type === "close") {
      target?.close();
      port.close();
      return;
    }
    if (target === undefined) return;
    if (message.type === "prepare") {
      pending = prepareTrial(target, message.trial);
      post({ type: "prepared", ok: !("status" in pending) });
      return;
    }
    const prepared = pending;
    pending = undefined;
    let outcome: ThreadOutcome;
    if (prepared === undefined) outcome = { status: "failed", thread, reason: "run before prepare" };
    else if ("status" in prepared) outcome = { ...prepared, thread };
    else outcome = timeTrial(prepared, timing, thread, target.session);
    post({ type: "result", outcome }, outcome.status === "ok" ? [outcome.samples.buffer as ArrayBuffer] : []);
  } catch (error) {
    post({ type: "error", message: `thread ${thread}: ${error instanceof Error ? error.message : String(error)}`, exitCode: 1 });
  }
});
