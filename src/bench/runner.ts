/**
 * Running trials: in this thread (`runInThread`), or on N worker threads with one target and one
 * session each (`ThreadPool`), all threads starting each trial together.
 *
 * Per-operation timing with process.hrtime.bigint() (see stats.ts). Failed operations are not
 * timed; they are counted by CKR code (or by error name for software targets). A trial stops early
 * after 100 failures in a row with no success, so a broken mechanism cannot spin for --duration.
 */
import { Worker } from "node:worker_threads";
import { ckrOf } from "../kms/backend/pkcs11.js";
import { Samples } from "./stats.js";
import { openTarget, type OpenTarget, type TargetSpec } from "./targets.js";
import { OPERATIONS } from "./trials.js";
import { BenchError, Unsupported, type TrialSpec } from "./types.js";

export interface Timing {
  /** Operations per thread; when set, --duration is ignored. */
  iterations?: number | undefined;
  durationS: number;
  warmupS: number;
}

export type ThreadOutcome =
  | { status: "ok"; thread: number; session?: string | undefined; ops: number; errors: number; errorsByCode: Record<string, number>; startNs: number; endNs: number; samples: Float64Array }
  | { status: "unsupported" | "failed"; thread: number; reason: string };

const MAX_CONSECUTIVE_FAILURES = 100;
export const MAX_SAMPLES = 5_000_000;

function errorCode(error: unknown): string {
  const ckr = ckrOf(error);
  if (ckr !== undefined) return ckr.name;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "ERROR";
}

function describe(error: unknown): string {
  const ckr = ckrOf(error);
  if (ckr !== undefined) return `${ckr.name}${ckr.method ? ` from ${ckr.method}` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** Prepares a trial on an open target: the timed closure, or why it cannot run. */
export function prepareTrial(target: OpenTarget, spec: TrialSpec): { run(): void; cleanup?: () => void } | { status: "unsupported" | "failed"; reason: string } {
  const op = OPERATIONS.find((o) => o.mech === spec.mech);
  if (op === undefined) return { status: "failed", reason: `unknown mechanism ${spec.mech}` };
  try {
    return op.prepare(target.ctx, spec);
  } catch (error) {
    if (error instanceof Unsupported) return { status: "unsupported", reason: error.message };
    const ckr = ckrOf(error);
    // A token that refuses the mechanism, its key size or its parameters does not support the trial.
    if (ckr !== undefined && ["CKR_MECHANISM_INVALID", "CKR_MECHANISM_PARAM_INVALID", "CKR_KEY_SIZE_RANGE", "CKR_TEMPLATE_INCONSISTENT", "CKR_ATTRIBUTE_VALUE_INVALID", "CKR_DOMAIN_PARAMS_INVALID", "CKR_CURVE_NOT_SUPPORTED"].includes(ckr.name)) {
      return { status: "unsupported", reason: `setting up ${spec.mech} failed with ${describe(error)}` };
    }
    return { status: "failed", reason: `setting up ${spec.mech} failed: ${describe(error)}` };
  }
}

/** Times a prepared trial in this thread: warm-up, then iterations or duration. */
export function timeTrial(prepared: { run(): void; cleanup?: () => void }, timing: Timing, thread: number, session?: string): ThreadOutcome {
  const { run, cleanup } = prepared;
  const clock = process.hrtime.bigint;
  const once = (): void => {
    try {
      run();
    } finally {
      cleanup?.();
    }
  };
  if (timing.warmupS > 0) {
    const until = clock() + BigInt(Math.round(timing.warmupS * 1e9));
    let failures = 0;
    while (clock() < until && failures < MAX_CONSECUTIVE_FAILURES) {
      try { once(); failures = 0; } catch { failures++; }
    }
  }
  const samples = new Samples();
  const errorsByCode: Record<string, number> = {};
  // Counted apart from the samples: past MAX_SAMPLES the latencies stop growing but the throughput must not.
  let ops = 0;
  let errors = 0;
  let consecutive = 0;
  const limit = timing.iterations;
  // At least 1 ns: a duration that rounds to nothing would time no operation and report an "ok" row of none.
  const durationNs = BigInt(Math.max(1, Math.round(timing.durationS * 1e9)));
  const start = clock();
  let now = start;
  for (let i = 0; limit !== undefined ? i < limit : now - start < durationNs; i++) {
    const t0 = clock();
    try {
      run();
      now = clock();
      ops++;
      if (samples.length < MAX_SAMPLES) samples.push(Number(now - t0));
      consecutive = 0;
    } catch (error) {
      now = clock();
      errors++;
      const code = errorCode(error);
      errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      if (++consecutive >= MAX_CONSECUTIVE_FAILURES && ops === 0) break;
    }
    if (cleanup !== undefined) {
      try { cleanup(); } catch { /* counted through the next operation if it matters */ }
    }
  }
  return { status: "ok", thread, session, ops, errors, errorsByCode, startNs: Number(start), endNs: Number(now), samples: samples.values().slice() };
}

export function runInThread(target: OpenTarget, spec: TrialSpec, timing: Timing, thread = 0): ThreadOutcome {
  const prepared = prepareTrial(target, spec);
  if ("status" in prepared) return { ...prepared, thread };
  return timeTrial(prepared, timing, thread, target.session);
}

/** Messages between the pool and src/bench/worker.ts. */
export type ToWorker = { type: "prepare"; trial: TrialSpec } | { type: "run" } | { type: "close" };
export type FromWorker =
  | { type: "opened"; session?: string | undefined }
  | { type: "prepared"; ok: boolean }
  | { type: "result"; outcome: ThreadOutcome }
  | { type: "error"; message: string; exitCode: number };

/** N worker threads, each with its own target and session, running trials in lock step. */
export class ThreadPool {
  private constructor(
    private readonly workers: Worker[],
    /** Settled when each thread has ended, however: a thread that ended (a crash) emits "exit" no more. */
    private readonly exited: Array<Promise<void>>,
    private readonly inboxes: Array<FromWorker[]>,
    private readonly waiters: Array<((m: FromWorker) => void) | undefined>,
  ) {}

  static async open(spec: TargetSpec, threads: number, timing: Timing): Promise<ThreadPool> {
    const workers: Worker[] = [];
    const exited: Array<Promise<void>> = [];
    const inboxes: Array<FromWorker[]> = [];
    const waiters: Array<((m: FromWorker) => void) | undefined> = [];
    for (let thread = 0; thread < threads; thread++) {
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: { spec, timing, thread } });
      inboxes.push([]);
      waiters.push(undefined);
      const deliver = (message: FromWorker): void => {
        const waiter = waiters[thread];
        if (waiter !== undefined) {
          waiters[thread] = undefined;
          waiter(message);
        } else inboxes[thread]!.push(message);
      };
      worker.on("message", deliver);
      worker.on("error", (error) => deliver({ type: "error", message: `thread ${thread}: ${error.message}`, exitCode: 1 }));
      exited.push(new Promise<void>((resolve) => worker.once("exit", () => resolve())));
      worker.on("exit", (code) => { if (code !== 0) deliver({ type: "error", message: `thread ${thread} exited with code ${code}`, exitCode: 1 }); });
      workers.push(worker);
    }
    const pool = new ThreadPool(workers, exited, inboxes, waiters);
    const opened = await pool.all();
    const failure = opened.find((m) => m.type === "error");
    if (failure !== undefined && failure.type === "error") {
      await pool.close();
      throw new BenchError(failure.message, failure.exitCode);
    }
    return pool;
  }

  private next(thread: number): Promise<FromWorker> {
    const queued = this.inboxes[thread]!.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve) => { this.waiters[thread] = resolve; });
  }

  private all(): Promise<FromWorker[]> {
    return Promise.all(this.workers.map((_, thread) => this.next(thread)));
  }

  private send(message: ToWorker): void {
    for (const worker of this.workers) worker.postMessage(message);
  }

  /** Prepares the trial on every thread, then starts them together; one outcome per thread. */
  async run(trial: TrialSpec): Promise<ThreadOutcome[]> {
    this.send({ type: "prepare", trial });
    const prepared = await this.all();
    const error = prepared.find((m) => m.type === "error");
    if (error !== undefined && error.type === "error") throw new BenchError(error.message, error.exitCode);
    this.send({ type: "run" });
    const results = await this.all();
    return results.map((m, thread) => (m.type === "result" ? m.outcome : { status: "failed", thread, reason: m.type === "error" ? m.message : "no result" }));
  }

  /** The sessions the threads opened (hex handles), for the report. */
  async close(): Promise<void> {
    this.send({ type: "close" });
    await Promise.all(this.workers.map(async (worker, thread) => {
      const stuck = setTimeout(() => void worker.terminate(), 5000);
      try {
        await this.exited[thread];
      } finally {
        clearTimeout(stuck);
      }
    }));
  }
}

export { openTarget };
