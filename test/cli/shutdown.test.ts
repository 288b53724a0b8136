// How `hsmkit serve` stops (src/cli/shutdown.ts): the first signal closes gracefully and exits 0;
// a close that fails exits 1; a close that never ends is given up at the deadline (exit 1, saying
// why), and its late end changes nothing; a second signal exits at once.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { shutdownOnSignals, type ShutdownOptions } from "../../src/cli/shutdown.js";

function harness(close: () => Promise<void>, deadlineMs = 30): { stop: (signal: NodeJS.Signals) => void; exits: number[]; now: Array<[number, string]>; logs: string[] } {
  const exits: number[] = [];
  const now: Array<[number, string]> = [];
  const logs: string[] = [];
  const options: ShutdownOptions = {
    close, deadlineMs,
    log: { info: (message) => logs.push(`info ${message}`), error: (message) => logs.push(`error ${message}`) },
    exit: (code) => exits.push(code),
    exitNow: (code, message) => now.push([code, message]),
  };
  return { stop: shutdownOnSignals(options), exits, now, logs };
}

test("a close that ends exits 0 once, and the deadline does not fire after it", async (t) => {
  const h = harness(async () => undefined);
  h.stop("SIGTERM");
  await sleep(80);
  t.deepEqual(h.exits, [0]);
  t.deepEqual(h.logs, ["info SIGTERM: shutting down (requests in flight finish; SIGTERM again to exit at once)", "info stopped"]);
});

test("a close that fails exits 1, saying so", async (t) => {
  const h = harness(() => Promise.reject(new Error("disk full")));
  h.stop("SIGINT");
  await sleep(80);
  t.deepEqual(h.exits, [1]);
  t.is(h.logs.at(-1), "error shutdown failed");
});

test("a close that never ends is given up at the deadline: exit 1, naming why; its late end changes nothing", async (t) => {
  let finish!: () => void;
  const h = harness(() => new Promise<void>((resolve) => (finish = resolve)), 20);
  h.stop("SIGTERM");
  for (let i = 0; i < 100 && h.exits.length === 0; i++) await sleep(10);
  t.deepEqual(h.exits, [1]);
  t.regex(h.logs.at(-1)!, /^error shutdown did not finish within .* exiting without closing the store; every acknowledged write is on disk/);
  finish();
  await sleep(20);
  t.deepEqual(h.exits, [1], "no second exit");
});

test("a second signal exits at once with status 1", async (t) => {
  const h = harness(() => new Promise<void>(() => undefined), 50);
  h.stop("SIGINT");
  h.stop("SIGINT");
  t.deepEqual(h.now, [[1, "hsmkit: SIGINT again: exiting without waiting for requests in flight\n"]]);
  t.deepEqual(h.exits, [], "before the deadline");
  // Let the deadline pass, so that no timer outlives the test.
  await sleep(80);
});
