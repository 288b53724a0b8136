/**
 * Durability of the inline writer's commits without blocking its thread (docs/kms-store.md
 * "Durability"). SQLite in WAL mode with synchronous=FULL fsyncs the write-ahead log inside every
 * COMMIT, so an inline writer's event loop stood still for each fsync (1–3 ms here) while 256
 * requests waited for it — on one core, the core idled. With synchronous=NORMAL, COMMIT only
 * write()s its frames into the log; the writer then fdatasyncs the log on libuv's thread pool and
 * acknowledges the batch after that returns. The bytes on disk when a batch is acknowledged are
 * the same as with FULL: the frames of every COMMIT before the fdatasync began. SQLite still syncs
 * by itself where NORMAL does (the log's header when it restarts the log, and the log and the
 * database around each checkpoint).
 *
 * Syncs coalesce: while one runs, the batches committed meanwhile wait for the next, which covers
 * them all, so a batch is acknowledged after the first fdatasync that began after its COMMIT.
 * Acknowledgements keep commit order.
 *
 * A failed fdatasync breaks the syncer for good: after one, Linux may have dropped the dirty pages
 * and cleared the error, so a later sync that succeeds proves nothing about the earlier frames
 * ("fsyncgate"). Every waiting and later batch fails, and the store must be reopened, which
 * recovers from what is actually in the file.
 */
import { closeSync, fdatasync, fstatSync, openSync, statSync } from "node:fs";
import { StoreError } from "./errors.js";

/** How the log is synced: fs.fdatasync, or a test's stand-in. */
export type SyncFunction = (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;

interface Waiter {
  /** The number of COMMITs this waiter needs on disk. */
  commits: number;
  resolve: () => void;
  reject: (error: StoreError) => void;
}

export class WalSyncer {
  readonly #fd: number;
  readonly #sync: SyncFunction;
  /** COMMITs written to the log so far. */
  #committed = 0;
  #syncing = false;
  #broken: StoreError | null = null;
  #closed = false;
  readonly #waiters: Waiter[] = [];
  #idle: (() => void) | null = null;

  /**
   * Opens the log at `walPath`, which SQLite has created (a connection in WAL mode holds it open,
   * so the file stays the same one for as long as that connection does). Read-only: this fd only
   * ever syncs.
   */
  constructor(walPath: string, sync: SyncFunction = fdatasync) {
    this.#sync = sync;
    let fd: number;
    try {
      fd = openSync(walPath, "r");
    } catch (error) {
      throw new StoreError("ERR_KMS_STORE_WRITE_FAILED", `cannot open the write-ahead log ${walPath} to sync it (${(error as Error).message})`, { cause: error });
    }
    if (fstatSync(fd).ino !== statSync(walPath).ino) {
      closeSync(fd);
      throw new StoreError("ERR_KMS_STORE_WRITE_FAILED", `the write-ahead log ${walPath} was replaced while it was being opened`);
    }
    this.#fd = fd;
  }

  /** Why the syncer can no longer make commits durable, or null. */
  get broken(): StoreError | null {
    return this.#broken;
  }

  /** Call right after each COMMIT returns: resolves once that commit's frames are on disk. */
  committed(): Promise<void> {
    if (this.#broken !== null) return Promise.reject(this.#broken);
    if (this.#closed) return Promise.reject(new StoreError("ERR_KMS_STORE_CLOSED", "the store's writer is closed"));
    const commits = ++this.#committed;
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ commits, resolve, reject });
      if (!this.#syncing) this.#start();
    });
  }

  /** Waits for the syncs of every commit so far, then closes the log's fd. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#syncing) await new Promise<void>((done) => (this.#idle = done));
    closeSync(this.#fd);
  }

  #start(): void {
    this.#syncing = true;
    const covers = this.#committed;
    this.#sync(this.#fd, (error) => {
      this.#syncing = false;
      if (error !== null) {
        this.#broken = new StoreError(
          "ERR_KMS_STORE_WRITE_FAILED",
          `the write-ahead log could not be synced to disk (${error.code ?? error.message}); the store accepts no more writes: restart to recover from what is on disk`,
          { cause: error },
        );
        for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#broken);
      } else {
        let settled = 0;
        while (settled < this.#waiters.length && this.#waiters[settled]!.commits <= covers) this.#waiters[settled++]!.resolve();
        this.#waiters.splice(0, settled);
        if (this.#waiters.length > 0) {
          this.#start();
          return;
        }
      }
      this.#idle?.();
      this.#idle = null;
    });
  }
}
