/**
 * Copies the write-ahead log into the database from a thread of its own, so that the writer's
 * thread seldom has to (docs/kms-store.md "Checkpoints of the write-ahead log").
 *
 * SQLite checkpoints automatically inside the COMMIT that finds the log past wal_autocheckpoint
 * frames: that COMMIT copies every frame not yet in the database and fsyncs the database file. On
 * the inline writer that is the event loop, and with 40 MB of log it stood still for 80–150 ms
 * every few seconds under load — every request in flight waited that long. Here a connection on
 * another thread runs a PASSIVE checkpoint every `intervalMs`: it copies what has been committed
 * since, without taking any lock a writer or reader waits for. When the log does reach the
 * automatic threshold, little is left for the writer's own checkpoint to copy, and that one —
 * which also restarts the log, as only a checkpoint finishing between two of the writer's
 * transactions can — stays short. If this thread falls behind or fails, the automatic checkpoint
 * still bounds the log, as it did without it.
 *
 * Durability does not depend on it: a checkpoint syncs the log before copying frames out of it and
 * the database after (synchronous=FULL on its connection), and copies only committed frames.
 */
import { Worker } from "node:worker_threads";

export interface WalCheckpointerOptions {
  /** Between two checkpoints, ms. */
  intervalMs: number;
  /** A checkpoint that failed (the automatic ones continue); said once per distinct message. */
  warn: (message: string) => void;
}

export interface WalCheckpointer {
  /** Stops checkpointing and closes the connection; idempotent. */
  close(): Promise<void>;
}

type Outbound = { type: "failed"; message: string } | { type: "closed" };

/** A checkpointer's thread holds little: a connection and a timer. */
const YOUNG_GENERATION_MB = 1;

/** Starts the checkpointer on the store database at `path`, which the writer has opened (and migrated) already. */
export function startWalCheckpointer(path: string, options: WalCheckpointerOptions): WalCheckpointer {
  if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) throw new RangeError("the checkpoint interval must be > 0 ms");
  const worker = new Worker(new URL("./wal-checkpointer-worker.js", import.meta.url), {
    workerData: { path, intervalMs: options.intervalMs },
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
  const said = new Set<string>();
  let exited = false;
  const gone = new Promise<void>((done) => {
    worker.once("exit", () => {
      exited = true;
      done();
    });
  });
  worker.on("message", (message: Outbound) => {
    if (message.type === "failed" && !said.has(message.message)) {
      said.add(message.message);
      options.warn(`hsmkit KMS store: a background checkpoint of the write-ahead log failed (the writer's own checkpoints continue): ${message.message}`);
    }
  });
  worker.on("error", (error) => options.warn(`hsmkit KMS store: the checkpointer thread failed (the writer's own checkpoints continue): ${error.message}`));
  // Never what keeps a process alive (after the listeners: adding one refs the worker's port again).
  worker.unref();
  let closing: Promise<void> | null = null;
  return {
    close: () => {
      closing ??= (async () => {
        if (!exited) {
          // Alive until it has closed its connection: the store's close awaits that.
          worker.ref();
          worker.postMessage({ type: "close" });
          await gone;
        }
      })();
      return closing;
    },
  };
}
