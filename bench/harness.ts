/**
 * Timing for throughput trials: calibrate an iteration count to about `runSeconds`, then time
 * `runs` runs of it and keep the median, so one slow run on this shared VM does not decide a
 * figure. Compare figures only as ratios within one run.
 */
import { performance } from "node:perf_hooks";

/** Runs `iterations` operations; may be async. Returns how many operations it did, if not `iterations`. */
export type Body = (iterations: number) => void | number | Promise<void | number>;

export interface Trial {
  target: string;
  op: string;
  bytes: number;
  /** Messages per call (1 for single calls). */
  batch: number;
  /** Operations one iteration of `body` performs. */
  opsPerIteration: number;
  body: Body;
}

export interface Measurement {
  target: string;
  op: string;
  bytes: number;
  batch: number;
  ops_per_s: number;
  mb_per_s: number;
  runs: number[];
}

export interface TimingOptions {
  runSeconds: number;
  runs: number;
}

async function timed(body: Body, iterations: number): Promise<number> {
  const start = performance.now();
  await body(iterations);
  return (performance.now() - start) / 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Calibrates, then returns the median of `runs` timed runs. */
export async function measure(trial: Trial, options: TimingOptions): Promise<Measurement> {
  let iterations = 1;
  let seconds = await timed(trial.body, iterations); // also warms up
  while (seconds < options.runSeconds / 8) {
    iterations *= seconds <= 0 ? 16 : Math.min(16, Math.max(2, Math.ceil(options.runSeconds / 4 / seconds)));
    seconds = await timed(trial.body, iterations);
  }
  iterations = Math.max(1, Math.round((iterations * options.runSeconds) / seconds));
  const rates: number[] = [];
  for (let r = 0; r < options.runs; r++) {
    rates.push((iterations * trial.opsPerIteration) / (await timed(trial.body, iterations)));
  }
  const opsPerSecond = median(rates);
  return {
    target: trial.target,
    op: trial.op,
    bytes: trial.bytes,
    batch: trial.batch,
    ops_per_s: Math.round(opsPerSecond),
    mb_per_s: Math.round(((opsPerSecond * trial.bytes) / 1e6) * 10) / 10,
    runs: rates.map(Math.round),
  };
}
