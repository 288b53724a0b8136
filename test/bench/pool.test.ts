// The bench's thread pool ends cleanly even when one of its threads has already ended (a crash
// in native code, say): close() used to wait for an "exit" that a thread emits only once, and the
// process then fell out of its event loop mid-run with exit status 0.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import { ThreadPool } from "../../src/bench/runner.js";
import { targetSpec } from "../../src/bench/targets.js";

test("close() returns when a thread has ended before it", async (t) => {
  const pool = await ThreadPool.open(targetSpec("native", undefined, undefined), 2, { iterations: 1, durationS: 0, warmupS: 0 });
  const workers = (pool as unknown as { workers: Worker[] }).workers;
  await workers[0]!.terminate();
  const closed = pool.close().then(() => "closed");
  // Far beyond the pool's own 5 s grace for a stuck thread: only a close() that never returns loses.
  t.is(await Promise.race([closed, sleep(30_000, "still waiting", { ref: false })]), "closed");
});
