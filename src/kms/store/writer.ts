/**
 * The two ways to run the SQLite writer behind the group commit:
 * - "worker": a worker thread owns the write connection (writer-worker.ts). COMMIT's fsync
 *   happens there, so the event loop keeps serving requests — and keeps filling the next batch —
 *   while the disk works. Best with a core to spare: the transaction's CPU leaves the event loop.
 * - "inline": the write connection lives on the caller's thread. A batch's transaction runs
 *   synchronously; its COMMIT writes the log without syncing it, and the batch is acknowledged
 *   after an fdatasync of the log on libuv's thread pool (wal-sync.ts), so the event loop serves
 *   requests while the disk works here too. No thread hand-offs: the cheaper of the two when the
 *   process has one core.
 */
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import type { Migration } from "./migrations.js";
import type { BatchRunner, RunOutcome } from "./group-commit.js";
import { StoreError } from "./errors.js";
import { WalSyncer, type SyncFunction } from "./wal-sync.js";
import { reviveCheckpoint } from "./rows.js";
import {
  expandResults, openExecutor, packOps, reviveError, type BatchResult, type SerializedError, type StoreResult, type WriteOp,
  type WriterState,
} from "./sqlite-writes.js";

export type WriterMode = "worker" | "inline";

/**
 * The writer for a process that may use `cores` cores (default: the ones it may run on, which
 * taskset and cgroup cpusets limit): the thread pays for itself only on a core of its own.
 * Measured with the Kms on the emulator, 256 requests in flight (docs/BENCHMARKS.md): on one core
 * "inline" gave ~25 % more operations per second than "worker"; on two, "worker" up to ~20 % more.
 */
export function defaultWriterMode(cores: number = availableParallelism()): WriterMode {
  return cores > 1 ? "worker" : "inline";
}

export interface Writer {
  readonly mode: WriterMode;
  /** What the writer found when it opened the database (after migrating it). */
  readonly state: WriterState;
  /** Runs a batch as one transaction; resolves after COMMIT with each write's result and audit record. */
  readonly run: BatchRunner<WriteOp, StoreResult>;
  /**
   * Why the writer can commit nothing more until the store is reopened (a failed sync of the log,
   * the writer thread gone), or null; null too once it was merely closed.
   */
  readonly failure: StoreError | null;
  /** Closes the write connection (after the running batch, if any). Idempotent. */
  close(): Promise<void>;
}

function toOutcome(ops: readonly WriteOp[], result: BatchResult): RunOutcome<StoreResult> {
  if (!result.ok) return { ok: false, error: reviveError(result.error), ms: result.ms };
  try {
    return { ok: true, results: expandResults(ops, result), ms: result.ms };
  } catch (error) {
    return { ok: false, error: new StoreError("ERR_KMS_STORE_WRITE_FAILED", `the writer's report does not match the batch: ${(error as Error).message}`), ms: result.ms };
  }
}

function reviveState(state: WriterState): WriterState {
  return {
    ...state,
    logId: Buffer.from(state.logId),
    head: { seq: state.head.seq, hash: Buffer.from(state.head.hash) },
    lastCheckpoint: state.lastCheckpoint === null ? null : reviveCheckpoint(state.lastCheckpoint),
  };
}

/** The writer on this thread. `sync` stands in for fdatasync (tests). */
export function startInlineWriter(path: string, migrations?: readonly Migration[], sync?: SyncFunction): Writer {
  const executor = openExecutor(path, migrations);
  let syncer: WalSyncer;
  try {
    syncer = new WalSyncer(executor.syncOutside(), sync);
  } catch (error) {
    executor.close();
    throw error;
  }
  let closing: Promise<void> | null = null;
  return {
    mode: "inline",
    state: executor.state,
    get failure() {
      return syncer.broken;
    },
    run: async (ops) => {
      if (closing !== null) return { ok: false, error: new StoreError("ERR_KMS_STORE_CLOSED", "the store's writer is closed"), ms: 0 };
      // Nothing more is committed once a sync failed: the store's view may run ahead of the disk.
      if (syncer.broken !== null) return { ok: false, error: syncer.broken, ms: 0 };
      const started = performance.now();
      const result = executor.runBatch(ops);
      // A batch that rolled back wrote nothing to wait for.
      if (!result.ok) return toOutcome(ops, result);
      try {
        await syncer.committed();
      } catch (error) {
        return { ok: false, error: error as StoreError, ms: performance.now() - started };
      }
      return toOutcome(ops, { ...result, ms: performance.now() - started });
    },
    close: () => {
      closing ??= (async () => {
        // The last batches' syncs finish before the connection's close checkpoints the log.
        await syncer.close();
        executor.close();
      })();
      return closing;
    },
  };
}

type Outbound =
  | { type: "ready"; state: WriterState }
  | { type: "failed"; error: SerializedError }
  | { type: "batch"; id: number; result: BatchResult }
  | { type: "closed" };

const WRITER_YOUNG_GENERATION_MB = 4;

/** The writer on its own thread; resolves once it has opened and migrated the database. */
export function startWorkerWriter(path: string): Promise<Writer> {
  // A small young generation: the writer's garbage is a few tens of KB per transaction, and V8's
  // default (semi-spaces growing to 16 MB) kept ~48 MB resident for it; with 4 MB the writer's CPU
  // per transaction is the same (measured) and the process's RSS ~50 MB lower.
  const worker = new Worker(new URL("./writer-worker.js", import.meta.url), { workerData: { path }, resourceLimits: { maxYoungGenerationSizeMb: WRITER_YOUNG_GENERATION_MB } });
  const inFlight = new Map<number, (result: BatchResult) => void>();
  let nextId = 1;
  let broken: StoreError | null = null;
  let closing: Promise<void> | null = null;
  let onClosed: (() => void) | null = null;

  const breakAll = (error: StoreError): void => {
    broken ??= error;
    for (const settle of inFlight.values()) settle({ ok: false, error: { kind: "store", code: broken.code, message: broken.message }, ms: 0 });
    inFlight.clear();
    onClosed?.();
  };

  return new Promise<Writer>((resolve, reject) => {
    let ready = false;
    worker.on("message", (message: Outbound) => {
      switch (message.type) {
        case "ready": {
          ready = true;
          // An idle writer does not keep the process alive; one with a batch in flight does.
          worker.unref();
          const writer: Writer = {
            mode: "worker",
            state: reviveState(message.state),
            get failure() {
              return broken?.code === "ERR_KMS_STORE_WRITE_FAILED" ? broken : null;
            },
            run: (ops) => {
              if (broken !== null) return Promise.resolve({ ok: false, error: broken, ms: 0 });
              if (closing !== null) return Promise.resolve({ ok: false, error: new StoreError("ERR_KMS_STORE_CLOSED", "the store's writer is closed"), ms: 0 });
              const id = nextId++;
              return new Promise<BatchResult>((settle) => {
                inFlight.set(id, settle);
                worker.ref();
                // Encoded audit records move to the writer without a copy.
                const transfer: ArrayBuffer[] = [];
                for (const op of ops) if (op.op === "audit.records") transfer.push(op.appends.records.buffer as ArrayBuffer);
                try {
                  worker.postMessage({ type: "batch", id, ops: packOps(ops) }, transfer);
                } catch (error) {
                  // Not sent (a value that cannot be cloned): no answer will come, so nothing may
                  // wait for one — nor keep the process alive.
                  inFlight.delete(id);
                  if (inFlight.size === 0) worker.unref();
                  throw error;
                }
              }).then((result) => toOutcome(ops, result));
            },
            close: () => {
              closing ??= new Promise<void>((done) => {
                if (broken !== null) {
                  done();
                  return;
                }
                onClosed = done;
                worker.ref();
                worker.postMessage({ type: "close" });
              });
              return closing;
            },
          };
          resolve(writer);
          break;
        }
        case "failed":
          reject(reviveError(message.error));
          break;
        case "batch": {
          const settle = inFlight.get(message.id);
          inFlight.delete(message.id);
          if (inFlight.size === 0) worker.unref();
          settle?.(message.result);
          break;
        }
        case "closed":
          broken ??= new StoreError("ERR_KMS_STORE_CLOSED", "the store's writer is closed");
          onClosed?.();
          break;
      }
    });
    worker.on("error", (error) => {
      const failure = new StoreError("ERR_KMS_STORE_WRITE_FAILED", `the store's writer thread failed: ${error.message}`, { cause: error });
      if (!ready) reject(failure);
      breakAll(failure);
    });
    worker.on("exit", (code) => {
      const failure = new StoreError("ERR_KMS_STORE_WRITE_FAILED", `the store's writer thread exited (code ${code})`);
      if (!ready) reject(failure);
      breakAll(failure);
    });
  });
}
