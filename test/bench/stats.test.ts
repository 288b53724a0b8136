// Statistics of src/bench on synthetic timings: exact values; the one timed loop runs a no-op and asserts counts only.
import test from "ava";
import { latencyStats, percentile, round, Samples, throughput } from "../../src/bench/stats.js";
import { aggregate, addRatios } from "../../src/bench/index.js";
import { MAX_SAMPLES, timeTrial, type ThreadOutcome } from "../../src/bench/runner.js";

test("nearest-rank percentiles", (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  t.is(percentile(sorted, 50), 50);
  t.is(percentile(sorted, 95), 95);
  t.is(percentile(sorted, 99), 99);
  t.is(percentile(sorted, 100), 100);
  t.is(percentile([7], 99), 7);
  t.is(percentile([1, 2, 3, 4, 5], 50), 3);
  t.true(Number.isNaN(percentile([], 50)));
});

test("latency statistics in microseconds from nanosecond samples, order-independent", (t) => {
  // 2, 4, 4, 4, 5, 5, 7, 9 µs: mean 5, sample stddev sqrt(32/7)
  const ns = [9, 4, 2, 5, 4, 7, 4, 5].map((us) => us * 1000);
  const s = latencyStats(ns);
  t.is(s.mean, 5);
  t.true(Math.abs(s.stddev - Math.sqrt(32 / 7)) < 1e-9);
  t.is(s.min, 2);
  t.is(s.max, 9);
  t.is(s.p50, 4);
  t.is(s.p95, 9);
  t.is(s.p99, 9);
  const one = latencyStats([1500]);
  t.deepEqual([one.mean, one.stddev, one.p99], [1.5, 0, 1.5]);
  t.true(Number.isNaN(latencyStats([]).mean));
});

test("a skewed distribution: p99 catches the tail that the mean hides", (t) => {
  const ns = [...Array.from({ length: 990 }, () => 10_000), ...Array.from({ length: 10 }, () => 1_000_000)];
  const s = latencyStats(ns);
  t.is(s.p50, 10);
  t.is(s.p95, 10);
  t.is(s.p99, 10);
  t.is(percentile(Float64Array.from(ns).sort(), 99.1), 1_000_000); // ns in, ns out
  t.is(s.mean, 19.9);
  t.is(s.max, 1000);
});

test("Samples grows past its initial capacity", (t) => {
  const samples = new Samples();
  for (let i = 0; i < 5000; i++) samples.push(i);
  t.is(samples.length, 5000);
  t.is(samples.values()[4999], 4999);
});

test("throughput and rounding", (t) => {
  t.deepEqual(throughput(1000, 1024, 0.5), { ops_per_s: 2000, mb_per_s: 2.048 });
  t.deepEqual(throughput(5, 10, 0), { ops_per_s: 0, mb_per_s: 0 });
  t.is(round(123456.789), 123500);
  t.is(round(0.000123456), 0.0001235);
});

function outcome(thread: number, startMs: number, endMs: number, samplesUs: number[], errorsByCode: Record<string, number> = {}): ThreadOutcome {
  const errors = Object.values(errorsByCode).reduce((a, b) => a + b, 0);
  return { status: "ok", thread, session: `s${thread}`, ops: samplesUs.length, errors, errorsByCode,
    startNs: startMs * 1e6, endNs: endMs * 1e6, samples: Float64Array.from(samplesUs.map((us) => us * 1000)) };
}

test("aggregate: per-thread and total throughput, merged latencies, errors by CKR code", (t) => {
  const trial = { mech: "aes-gcm", op: "encrypt", bytes: 1000, keyBits: 256 };
  // thread 0: 100 ops in [0, 100 ms]; thread 1: 300 ops in [50, 200 ms] → wall 200 ms, 400 ops.
  const row = aggregate("x", trial, 2, [
    outcome(0, 0, 100, Array.from({ length: 100 }, () => 10), { CKR_DEVICE_ERROR: 2 }),
    outcome(1, 50, 200, Array.from({ length: 300 }, () => 20), { CKR_DEVICE_ERROR: 1, CKR_SESSION_CLOSED: 4 }),
  ]);
  t.is(row.status, "ok");
  t.is(row.op, "aes-gcm/encrypt");
  t.is(row.ops, 400);
  t.is(row.elapsed_s, 0.2);
  t.is(row.ops_per_s, 2000);
  t.is(row.mb_per_s, 2);
  t.is(row.errors, 7);
  t.deepEqual(row.errors_by_code, { CKR_DEVICE_ERROR: 3, CKR_SESSION_CLOSED: 4 });
  t.is(row.latency_us.mean, 17.5);
  t.is(row.p50_us, 20);
  t.is(row.latency_us.min, 10);
  t.deepEqual(row.per_thread.map((p) => [p.thread, p.session, p.ops, p.ops_per_s, p.mb_per_s]), [[0, "s0", 100, 1000, 1], [1, "s1", 300, 2000, 2]]);
});

test("aggregate: an unsupported thread makes the row unsupported; all-failed makes it failed", (t) => {
  const trial = { mech: "find", op: "find", bytes: 0, keyBits: 0 };
  const unsupported = aggregate("native", trial, 1, [{ status: "unsupported", thread: 0, reason: "no" }]);
  t.is(unsupported.status, "unsupported");
  t.is(unsupported.reason, "no");
  t.is(unsupported.p50_us, null);
  const failed = aggregate("m", trial, 1, [outcome(0, 0, 1, [], { CKR_FUNCTION_FAILED: 100 })]);
  t.is(failed.status, "failed");
  t.regex(failed.reason!, /CKR_FUNCTION_FAILED/u);
});

test("ratios are ops/s against the first target's matching row", (t) => {
  const trial = { mech: "random", op: "generate", bytes: 32, keyBits: 0 };
  const a = aggregate("a", trial, 1, [outcome(0, 0, 100, Array.from({ length: 100 }, () => 1))]);
  const b = aggregate("b", trial, 1, [outcome(0, 0, 100, Array.from({ length: 250 }, () => 1))]);
  addRatios([a, b], "a");
  t.is(a.ratio, 1);
  t.is(b.ratio, 2.5);
  t.is(b.ratio_vs, "a");
});

test("past the latency-sample cap, every successful operation still counts toward ops and throughput", (t) => {
  // A no-op closure runs MAX_SAMPLES + 10 times in well under a second; only the counts are asserted.
  const outcome = timeTrial({ run() {} }, { iterations: MAX_SAMPLES + 10, durationS: 0, warmupS: 0 }, 0);
  if (outcome.status !== "ok") return t.fail(outcome.status);
  t.is(outcome.samples.length, MAX_SAMPLES);
  t.is(outcome.ops, MAX_SAMPLES + 10);
  t.is(aggregate("native", { mech: "random", op: "generate", bytes: 1, keyBits: 0 }, 1, [outcome]).ops, MAX_SAMPLES + 10);
});

test("a duration too short to time anything still times one operation: no \"ok\" row of zero", (t) => {
  const outcome = timeTrial({ run() {} }, { durationS: 1e-12, warmupS: 0 }, 0);
  if (outcome.status !== "ok") return t.fail(outcome.status);
  t.true(outcome.ops >= 1);
  t.is(outcome.samples.length, outcome.ops);
});
