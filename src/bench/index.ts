/**
 * `hsmkit bench` as a library: runs the trials table (trials.ts) on each target (targets.ts), on
 * one thread or on worker threads (runner.ts), and returns the report whose JSON form is described
 * in docs/bench-schema.md (schema.ts).
 */
import { readFileSync } from "node:fs";
import { arch, cpus, platform, release, totalmem } from "node:os";
import { addon } from "../crypto/addon.js";
import { latencyStats, round, throughput } from "./stats.js";
import { openTarget, type OpenTarget, type TargetInfo, type TargetSpec } from "./targets.js";
import { runInThread, ThreadPool, type ThreadOutcome, type Timing } from "./runner.js";
import { expandTrials, type parseMechs } from "./trials.js";
import { BenchError, type TrialSpec } from "./types.js";

export { BenchError } from "./types.js";
export { parseMechs, parseSizes, OPERATIONS } from "./trials.js";
export { targetSpec, type TargetSpec } from "./targets.js";

export const SCHEMA_ID = "hsmkit-bench/1";

export interface BenchOptions {
  targets: TargetSpec[];
  mechs: ReturnType<typeof parseMechs>;
  sizes: number[];
  threads: number;
  timing: Timing;
  /** Ratio columns against the first target. */
  compare: boolean;
}

export interface PerThread {
  thread: number;
  session: string | null;
  ops: number;
  errors: number;
  elapsed_s: number;
  ops_per_s: number;
  mb_per_s: number;
}

export interface Row {
  target: string;
  mech: string;
  op: string;
  bytes: number;
  key_bits: number;
  threads: number;
  status: "ok" | "unsupported" | "failed";
  reason: string | null;
  ops: number;
  errors: number;
  errors_by_code: Record<string, number>;
  elapsed_s: number;
  ops_per_s: number;
  mb_per_s: number;
  p50_us: number | null;
  p99_us: number | null;
  latency_us: { mean: number | null; stddev: number | null; min: number | null; max: number | null; p50: number | null; p95: number | null; p99: number | null };
  per_thread: PerThread[];
  /** ops/s of this row over the first target's matching row (with --compare). */
  ratio: number | null;
  ratio_vs: string | null;
  /** KMS HTTP target rows only (per_thread is then per connection). */
  http?: HttpRowFacts;
}

/** What a KMS HTTP row adds (src/bench/http). */
export interface HttpRowFacts {
  url: string;
  connections: number;
  /** fresh: every request signed anew; pooled: one signature per second reused (src/bench/http/load.ts). */
  signing: "fresh" | "pooled";
  /** Responses by HTTP status, errors included. */
  status_counts: Record<string, number>;
  request_body_bytes: number;
  /** Mean bytes of a 2xx response, headers included. */
  response_bytes_mean: number;
  /** CPU the client process used (autocannon, signing) in cores: CPU seconds over elapsed seconds. */
  client_cpu_cores: number;
  /** Mean wall-clock µs to sign one request in the client (preemption included), or null when none was signed. */
  signing_us: number | null;
  /** Of client_cpu_cores, the part spent signing. */
  signing_cpu_cores: number;
}

export interface BenchReport {
  schema: typeof SCHEMA_ID;
  created: string;
  machine: {
    cpu: string; cores: number; arch: string; platform: string; os_release: string; memory_bytes: number;
    node: string; openssl: string; native_openssl: string | null; hsmkit: string;
  };
  config: {
    targets: string[]; mechs: string[]; sizes: number[]; threads: number;
    iterations: number | null; duration_s: number | null; warmup_s: number;
    timing: string; compare: boolean;
  };
  targets: TargetInfo[];
  rows: Row[];
}

export interface Progress {
  start(total: number): void;
  tick(label: string): void;
  stop(): void;
}

function hsmkitVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export function machineFacts(): BenchReport["machine"] {
  let native: string | null = null;
  try { native = addon.opensslVersion().runtime; } catch { /* native core not built */ }
  return {
    cpu: cpus()[0]?.model.trim() ?? "unknown", cores: cpus().length, arch: arch(), platform: platform(), os_release: release(),
    memory_bytes: totalmem(), node: process.versions.node, openssl: process.versions.openssl ?? "unknown", native_openssl: native,
    hsmkit: hsmkitVersion(),
  };
}

const nullable = (n: number): number | null => (Number.isFinite(n) ? round(n) : null);

/** One row from the outcomes of all threads of one trial on one target. */
export function aggregate(target: string, trial: TrialSpec, threads: number, outcomes: ThreadOutcome[]): Row {
  const base = { target, mech: trial.mech, op: `${trial.mech}/${trial.op}`, bytes: trial.bytes, key_bits: trial.keyBits, threads };
  const empty = { ops: 0, errors: 0, errors_by_code: {}, elapsed_s: 0, ops_per_s: 0, mb_per_s: 0, p50_us: null, p99_us: null,
    latency_us: { mean: null, stddev: null, min: null, max: null, p50: null, p95: null, p99: null }, per_thread: [], ratio: null, ratio_vs: null };
  const bad = outcomes.find((o) => o.status !== "ok");
  if (bad !== undefined && "reason" in bad) return { ...base, ...empty, status: bad.status, reason: bad.reason };
  const ok = outcomes.filter((o): o is Extract<ThreadOutcome, { status: "ok" }> => o.status === "ok");
  const start = Math.min(...ok.map((o) => o.startNs));
  const end = Math.max(...ok.map((o) => o.endNs));
  const ops = ok.reduce((s, o) => s + o.ops, 0);
  const errors = ok.reduce((s, o) => s + o.errors, 0);
  const errorsByCode: Record<string, number> = {};
  for (const o of ok) for (const [code, n] of Object.entries(o.errorsByCode)) errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
  const all = new Float64Array(ok.reduce((s, o) => s + o.samples.length, 0));
  let offset = 0;
  for (const o of ok) { all.set(o.samples, offset); offset += o.samples.length; }
  const stats = latencyStats(all);
  const elapsed = (end - start) / 1e9;
  const total = throughput(ops, trial.bytes, elapsed);
  return {
    ...base, ...empty, status: ops === 0 && errors > 0 ? "failed" : "ok",
    reason: ops === 0 && errors > 0 ? `every operation failed: ${Object.keys(errorsByCode).join(", ")}` : null,
    ops, errors, errors_by_code: errorsByCode, elapsed_s: round(elapsed), ops_per_s: round(total.ops_per_s), mb_per_s: round(total.mb_per_s),
    p50_us: nullable(stats.p50), p99_us: nullable(stats.p99),
    latency_us: { mean: nullable(stats.mean), stddev: nullable(stats.stddev), min: nullable(stats.min), max: nullable(stats.max), p50: nullable(stats.p50), p95: nullable(stats.p95), p99: nullable(stats.p99) },
    per_thread: ok.map((o) => {
      const seconds = (o.endNs - o.startNs) / 1e9;
      const t = throughput(o.ops, trial.bytes, seconds);
      return { thread: o.thread, session: o.session ?? null, ops: o.ops, errors: o.errors, elapsed_s: round(seconds), ops_per_s: round(t.ops_per_s), mb_per_s: round(t.mb_per_s) };
    }),
  };
}

/** Ratio columns: each row's ops/s over the first target's row for the same trial. */
export function addRatios(rows: Row[], baseline: string): void {
  for (const row of rows) {
    const base = rows.find((r) => r.target === baseline && r.op === row.op && r.bytes === row.bytes && r.key_bits === row.key_bits);
    if (base === undefined || base.status !== "ok" || row.status !== "ok" || base.ops_per_s === 0) continue;
    row.ratio = round(row.ops_per_s / base.ops_per_s, 3);
    row.ratio_vs = baseline;
  }
}

/** Runs the whole bench. Throws BenchError for a target that cannot be opened (bad path, wrong PIN…). */
export async function runBench(options: BenchOptions, progress?: Progress): Promise<BenchReport> {
  const trials = expandTrials(options.mechs, options.sizes);
  const rows: Row[] = [];
  const targets: TargetInfo[] = [];
  // The main thread opens every target before any trial runs: it validates path, token and PIN
  // with a clear message before minutes of measurement on the other targets could be lost to a
  // typo, and for a module it initializes the library once for the process and holds it until the
  // workers are done.
  const opened: OpenTarget[] = [];
  try {
    for (const spec of options.targets) opened.push(openTarget(spec));
    progress?.start(trials.length * options.targets.length);
    try {
      for (const [index, main] of opened.entries()) {
        const spec = options.targets[index]!;
        targets.push(main.info);
        if (options.threads === 1) {
          for (const trial of trials) {
            progress?.tick(`${spec.name} ${trial.mech}/${trial.op} ${trial.bytes} B`);
            rows.push(aggregate(spec.name, trial, 1, [runInThread(main, trial, options.timing)]));
          }
        } else {
          const pool = await ThreadPool.open(spec, options.threads, options.timing);
          try {
            for (const trial of trials) {
              progress?.tick(`${spec.name} ${trial.mech}/${trial.op} ${trial.bytes} B ×${options.threads}`);
              rows.push(aggregate(spec.name, trial, options.threads, await pool.run(trial)));
            }
          } finally {
            await pool.close();
          }
        }
      }
    } finally {
      progress?.stop();
    }
  } finally {
    for (const main of opened.reverse()) main.close();
  }
  if (options.compare && options.targets.length > 1) addRatios(rows, options.targets[0]!.name);
  return {
    schema: SCHEMA_ID,
    created: new Date().toISOString(),
    machine: machineFacts(),
    config: {
      targets: options.targets.map((t) => t.name),
      mechs: options.mechs.map((m) => `${m.operation.mech}@${m.keyBits.join("/")}`),
      sizes: options.sizes,
      threads: options.threads,
      iterations: options.timing.iterations ?? null,
      duration_s: options.timing.iterations === undefined ? options.timing.durationS : null,
      warmup_s: options.timing.warmupS,
      timing: "per-operation process.hrtime.bigint(); stddev n-1; nearest-rank percentiles",
      compare: options.compare,
    },
    targets,
    rows,
  };
}

/** Mechanisms that no target could run: the CLI exits non-zero for them. */
export function unsupportedEverywhere(report: BenchReport): Array<{ mech: string; reasons: string[] }> {
  const byMech = new Map<string, Row[]>();
  for (const row of report.rows) byMech.set(row.mech, [...(byMech.get(row.mech) ?? []), row]);
  const out: Array<{ mech: string; reasons: string[] }> = [];
  for (const [mech, rows] of byMech) {
    if (rows.every((r) => r.status === "unsupported")) out.push({ mech, reasons: [...new Set(rows.map((r) => `${r.target}: ${r.reason}`))] });
  }
  return out;
}

export function assertThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new BenchError(`--threads must be an integer from 1 to 256, got ${threads}`, 2);
}
