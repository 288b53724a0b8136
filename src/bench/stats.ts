/**
 * Statistics of one trial from per-operation latencies.
 *
 * Timing method: every operation is timed on its own with `process.hrtime.bigint()` (a monotonic,
 * nanosecond clock shared by all threads of the process; its own cost, ~30–60 ns a call on the
 * team's VM, is inside each sample). Standard deviation is the sample one (n − 1); percentiles
 * are nearest-rank on the sorted samples (p-th percentile = the ⌈p/100 · n⌉-th smallest).
 */

/** A growable list of latencies in nanoseconds, stored as doubles (exact below 2^53 ns). */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(ns: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = ns;
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

export interface LatencyStats {
  /** Microseconds. */
  mean: number;
  stddev: number;
  min: number;
  max: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Nearest-rank percentile of ascending `sorted` (p in 0..100]. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Latency statistics in microseconds from samples in nanoseconds (all NaN when there are none). */
export function latencyStats(samplesNs: ArrayLike<number>): LatencyStats {
  const n = samplesNs.length;
  if (n === 0) return { mean: NaN, stddev: NaN, min: NaN, max: NaN, p50: NaN, p95: NaN, p99: NaN };
  const sorted = Float64Array.from(samplesNs).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (sorted[i]! - mean) ** 2;
  const stddev = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  const us = (ns: number): number => ns / 1000;
  return {
    mean: us(mean),
    stddev: us(stddev),
    min: us(sorted[0]!),
    max: us(sorted[n - 1]!),
    p50: us(percentile(sorted, 50)),
    p95: us(percentile(sorted, 95)),
    p99: us(percentile(sorted, 99)),
  };
}

/** Operations per second and MB/s (10^6 B/s) for `ops` operations of `bytes` in `seconds`. */
export function throughput(ops: number, bytes: number, seconds: number): { ops_per_s: number; mb_per_s: number } {
  if (!(seconds > 0)) return { ops_per_s: 0, mb_per_s: 0 };
  const opsPerSecond = ops / seconds;
  return { ops_per_s: opsPerSecond, mb_per_s: (opsPerSecond * bytes) / 1e6 };
}

/** Rounds to `digits` significant digits, for JSON and tables (NaN becomes null in JSON by the caller). */
export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}
