/**
 * `hsmkit bench --module http://…`: the KMS HTTP API of a running server, measured with autocannon
 * (load.ts) — each --mech operation (operations.ts) at each size, with --threads connections, every
 * request signed with the caller's AK/SK. Before the run it checks the endpoint and the
 * credentials, and finds or creates the CMK aliased hsmkit-bench (client.ts). The report has the
 * same shape as the other targets' (docs/bench-schema.md), each row with an `http` object.
 */
import { addRatios, machineFacts, SCHEMA_ID, type BenchReport, type Progress, type Row } from "../index.js";
import { latencyStats, round, throughput } from "../stats.js";
import type { TargetInfo } from "../targets.js";
import { BenchError } from "../types.js";
import { BENCH_KEY_ALIAS, endpointOf, kmsPath, prepareBenchKey, type KmsEndpoint } from "./client.js";
import type { BenchCredentials } from "./credentials.js";
import { runLoad, type LoadOutcome, type Signing } from "./load.js";
import { expandHttpTrials, type HttpOperation, type HttpTrial } from "./operations.js";

export { loadCredentials, DEFAULT_CREDENTIALS_FILE, type BenchCredentials } from "./credentials.js";
export { expandHttpTrials, HTTP_OPERATIONS, parseHttpMechs, plaintext } from "./operations.js";
export { runLoad, type LoadOutcome, type LoadOptions, type Signing } from "./load.js";
export { endpointOf, kmsCall, kmsPath, prepareBenchKey, signedHeaders, BENCH_KEY_ALIAS, type KmsEndpoint } from "./client.js";

export const HTTP_TARGET = "kms-http";

export interface HttpBenchOptions {
  /** --module values (http:// URLs); the first is the ratio baseline. */
  urls: string[];
  credentials: BenchCredentials;
  operations: HttpOperation[];
  sizes: number[];
  /** Concurrent connections (--threads). */
  connections: number;
  /** Seconds per trial, unless `iterations` (requests per connection) is given. */
  durationS: number;
  iterations?: number | undefined;
  warmupS: number;
  signing: Signing;
  compare: boolean;
}

/** Target names: kms-http, or kms-http@host[/prefix] for each of several endpoints. */
export function httpTargetNames(urls: readonly string[]): string[] {
  if (urls.length === 1) return [HTTP_TARGET];
  const names = urls.map((u) => { const url = new URL(u); return `${HTTP_TARGET}@${url.host}${url.pathname.replace(/\/+$/u, "")}`; });
  if (new Set(names).size !== names.length) throw new BenchError("the same KMS endpoint is given twice", 2);
  return names;
}

/** The row of one trial from its load outcome. */
export function httpRow(target: string, trial: HttpTrial, connections: number, signing: Signing, url: string, outcome: LoadOutcome): Row {
  const { operation, bytes } = trial;
  const elapsed = outcome.elapsedNs / 1e9;
  const total = throughput(outcome.ops, bytes, elapsed);
  const stats = latencyStats(outcome.samples);
  const nullable = (n: number): number | null => (Number.isFinite(n) ? round(n) : null);
  const failed = outcome.ops === 0;
  const codes = Object.entries(outcome.errorsByCode).sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ×${n}`);
  return {
    target, mech: operation.mech, op: operation.mech, bytes, key_bits: operation.keyBits, threads: connections,
    status: failed ? "failed" : "ok",
    reason: failed ? (outcome.errors > 0 ? `every request failed: ${codes.join(", ")}` : "no response in the whole run") : null,
    ops: outcome.ops, errors: outcome.errors, errors_by_code: outcome.errorsByCode,
    elapsed_s: round(elapsed), ops_per_s: round(total.ops_per_s), mb_per_s: round(total.mb_per_s),
    p50_us: nullable(stats.p50), p99_us: nullable(stats.p99),
    latency_us: { mean: nullable(stats.mean), stddev: nullable(stats.stddev), min: nullable(stats.min), max: nullable(stats.max), p50: nullable(stats.p50), p95: nullable(stats.p95), p99: nullable(stats.p99) },
    per_thread: outcome.perConnection.map((c, i) => {
      const t = throughput(c.ops, bytes, elapsed);
      return { thread: i, session: null, ops: c.ops, errors: c.errors, elapsed_s: round(elapsed), ops_per_s: round(t.ops_per_s), mb_per_s: round(t.mb_per_s) };
    }),
    ratio: null, ratio_vs: null,
    http: {
      url, connections, signing,
      status_counts: outcome.statusCounts,
      request_body_bytes: outcome.requestBodyBytes,
      response_bytes_mean: round(outcome.responseBytesMean),
      client_cpu_cores: elapsed > 0 ? round(outcome.clientCpuS / elapsed, 3) : 0,
      signing_us: outcome.signatures > 0 ? round(outcome.signingNs / outcome.signatures / 1000, 3) : null,
      signing_cpu_cores: elapsed > 0 ? round(outcome.signingNs / 1e9 / elapsed, 3) : 0,
    },
  };
}

async function measureTarget(name: string, endpoint: KmsEndpoint, options: HttpBenchOptions, trials: HttpTrial[], progress: Progress | undefined): Promise<{ info: TargetInfo; rows: Row[] }> {
  const key = await prepareBenchKey(endpoint);
  const info: TargetInfo = {
    name, kind: "http",
    note: `${options.connections} connection${options.connections === 1 ? "" : "s"}, ${options.signing} SDK-HMAC-SHA256 signing; CMK "${BENCH_KEY_ALIAS}"${key.created ? " (created for this run)" : ""}`,
    http: { url: endpoint.url, project_id: endpoint.credentials.projectId, key_id: key.keyId, key_alias: BENCH_KEY_ALIAS, credentials: endpoint.credentials.source },
  };
  const rows: Row[] = [];
  for (const trial of trials) {
    progress?.tick(`${name} ${trial.operation.mech} ${trial.bytes} B ×${options.connections}`);
    const shape = await trial.operation.prepare(endpoint, key.keyId, trial.bytes);
    const load = { endpoint, path: kmsPath(endpoint, shape.operation), body: shape.body, connections: options.connections, signing: options.signing };
    if (options.warmupS > 0 && options.iterations === undefined) await runLoad({ ...load, durationS: options.warmupS });
    const outcome = await runLoad({ ...load, durationS: options.durationS, amount: options.iterations === undefined ? undefined : options.iterations * options.connections });
    rows.push(httpRow(name, trial, options.connections, options.signing, endpoint.url, outcome));
  }
  return { info, rows };
}

/** Runs the KMS HTTP bench. Throws BenchError (exit 1) when an endpoint is unreachable or refuses the credentials. */
export async function runHttpBench(options: HttpBenchOptions, progress?: Progress): Promise<BenchReport> {
  const names = httpTargetNames(options.urls);
  const endpoints = options.urls.map((u) => endpointOf(u, options.credentials));
  const trials = expandHttpTrials(options.operations, options.sizes);
  const rows: Row[] = [];
  const targets: TargetInfo[] = [];
  progress?.start(trials.length * endpoints.length);
  try {
    for (let i = 0; i < endpoints.length; i++) {
      const measured = await measureTarget(names[i]!, endpoints[i]!, options, trials, progress);
      targets.push(measured.info);
      rows.push(...measured.rows);
    }
  } finally {
    progress?.stop();
  }
  if (options.compare && names.length > 1) addRatios(rows, names[0]!);
  return {
    schema: SCHEMA_ID,
    created: new Date().toISOString(),
    machine: machineFacts(),
    config: {
      targets: names,
      mechs: options.operations.map((o) => o.mech),
      sizes: options.sizes,
      threads: options.connections,
      iterations: options.iterations ?? null,
      duration_s: options.iterations === undefined ? options.durationS : null,
      warmup_s: options.iterations === undefined ? options.warmupS : 0,
      timing: `autocannon closed loop, ${options.connections} keep-alive connections with one request in flight each; latency per 2xx response (process.hrtime in autocannon), stddev n-1, nearest-rank percentiles; non-2xx responses are errors; ${options.signing} SDK-HMAC-SHA256 signing in the client process`,
      compare: options.compare,
    },
    targets,
    rows,
  };
}
