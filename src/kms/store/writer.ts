/**
 * The two ways to run the SQLite writer behind the group commit:
 * - "worker" (default): a worker thread owns the write connection (writer-worker.ts). COMMIT's
 *   fsync happens there, so the event loop keeps serving requests — and keeps filling the next
 *   batch — while the disk works.
 * - "inline": the write connection lives on the caller's thread; a batch runs synchronously, and
 *   the event loop waits for each COMMIT. Simpler, no thread; fine for the CLI and tools.
 */
import { Worker } from "node:worker_threads";
import type { Migration } from "./migrations.js";
import type { BatchRunner, RunOutcome } from "./group-commit.js";
import { StoreError } from "./errors.js";
import { reviveCheckpoint } from "./rows.js";
import {
  expandResults, openExecutor, packOps, reviveError, type BatchResult, type SerializedError, type StoreResult, type WriteOp,
  type WriterState,
} from "./sqlite-writes.js";

export type WriterMode = "worker" | "inline";

export interface Writer {
  readonly mode: WriterMode;
  /** What the writer found when it opened the database (after migrating it). */
  readonly state: WriterState;
  /** Runs a batch as one transaction; resolves after COMMIT with each write's result and audit record. */
  readonly run: BatchRunner<WriteOp, StoreResult>;
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

/** The writer on this thread. */
export function startInlineWriter(path: string, migrations?: readonly Migration[]): Writer {
  const executor = openExecutor(path, migrations);
  let closed = false;
  return {
    mode: "inline",
    state: executor.state,
    run: (ops) => {
      if (closed) return Promise.resolve({ ok: false, error: new StoreError("ERR_KMS_STORE_CLOSED", "the store's writer is closed"), ms: 0 });
      return Promise.resolve(toOutcome(ops, executor.runBatch(ops)));
    },
    close: () => {
      closed = true;
      executor.close();
      return Promise.resolve();
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
