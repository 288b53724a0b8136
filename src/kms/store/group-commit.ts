/**
 * Group commit: many writes, one transaction, one fsync. Writes are queued as they are submitted;
 * a batch — everything queued, up to `maxBatch` — goes to the writer as one transaction. While a
 * transaction runs (its COMMIT waiting for the disk), new writes queue up and form the next batch,
 * so under load the batch grows by itself to what arrives during one commit, and durability costs
 * one fsync per batch, not per write. Each write's promise settles only after its batch's COMMIT
 * is on disk (writer.ts), never before.
 *
 * Scheduling: the first write into an empty queue starts a batch on the next turn of the event
 * loop (setImmediate), so writes submitted in the same turn share it; `maxDelayMs` > 0 waits that
 * long instead, to gather more under light load at the cost of latency. A queue reaching
 * `maxBatch` starts its batch at once. At most `maxInFlight` batches are with the runner at a time;
 * the runner commits them in order.
 *
 * The runner does the transaction: in-process (the caller's thread blocks during COMMIT) or in the
 * writer thread (the event loop keeps serving requests while the disk works).
 */
import { performance } from "node:perf_hooks";

export interface GroupCommitOptions {
  /** Most writes per transaction (default 1024). 1 gives one transaction per write. */
  maxBatch: number;
  /** How long the first write of an idle period waits for company, ms (default 0: the next event-loop turn). */
  maxDelayMs: number;
  /**
   * Batches handed to the runner before the first has come back (default 2). With a writer
   * thread, a second batch waits in its queue while the first commits, so the writer goes from one
   * COMMIT straight to the next transaction instead of idling for a round trip. Batches still
   * commit one after the other, in order.
   */
  maxInFlight: number;
  /**
   * Most total weight per transaction when the committer was given a `weigh` function (the store
   * weighs batched audit records by their number; default Infinity). A batch always takes at
   * least one write. Smaller transactions under load let one commit while the event loop prepares
   * the next: with everything in one, the loop and the disk took turns.
   */
  maxWeight: number;
}

export const DEFAULT_GROUP_COMMIT: Readonly<GroupCommitOptions> = Object.freeze({ maxBatch: 1024, maxDelayMs: 0, maxInFlight: 2, maxWeight: Infinity });

/** The outcome of one transaction: a result per write (in order), or one error for all. */
export type RunOutcome<R> = { ok: true; results: R[]; ms: number } | { ok: false; error: Error; ms: number };

/** Runs a batch of writes as one transaction. */
export type BatchRunner<Op, R> = (ops: Op[]) => Promise<RunOutcome<R>>;

interface Entry<Op, R> {
  op: Op;
  resolve: (result: R) => void;
  reject: (error: Error) => void;
}

export interface GroupCommitStats {
  transactions: number;
  writes: number;
  failedTransactions: number;
  largestBatch: number;
  /** Time inside the runner (transactions, COMMIT included), ms. */
  commitMs: number;
  queued: number;
}

export class GroupCommitter<Op, R> {
  readonly #runner: BatchRunner<Op, R>;
  readonly #options: GroupCommitOptions;
  #queue: Array<Entry<Op, R>> = [];
  #inFlight = 0;
  #scheduled: NodeJS.Immediate | NodeJS.Timeout | null = null;
  readonly #stats = { transactions: 0, writes: 0, failedTransactions: 0, largestBatch: 0, commitMs: 0 };
  readonly #afterBatch: ((ops: readonly Op[], outcome: RunOutcome<R>) => void) | undefined;
  readonly #weigh: ((op: Op) => number) | undefined;

  /**
   * `afterBatch` sees every batch's outcome before any of its promises settles (the store updates
   * its view of the audit chain there).
   */
  constructor(
    runner: BatchRunner<Op, R>,
    options: Partial<GroupCommitOptions> = {},
    afterBatch?: (ops: readonly Op[], outcome: RunOutcome<R>) => void,
    weigh?: (op: Op) => number,
  ) {
    const maxBatch = options.maxBatch ?? DEFAULT_GROUP_COMMIT.maxBatch;
    const maxDelayMs = options.maxDelayMs ?? DEFAULT_GROUP_COMMIT.maxDelayMs;
    const maxInFlight = options.maxInFlight ?? DEFAULT_GROUP_COMMIT.maxInFlight;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`groupCommit.maxBatch must be a positive integer, not ${maxBatch}`);
    if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) throw new RangeError(`groupCommit.maxDelayMs must be >= 0, not ${maxDelayMs}`);
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`groupCommit.maxInFlight must be a positive integer, not ${maxInFlight}`);
    const maxWeight = options.maxWeight ?? DEFAULT_GROUP_COMMIT.maxWeight;
    if (!(maxWeight >= 1)) throw new RangeError(`groupCommit.maxWeight must be >= 1, not ${maxWeight}`);
    this.#runner = runner;
    this.#options = { maxBatch, maxDelayMs, maxInFlight, maxWeight };
    this.#afterBatch = afterBatch;
    this.#weigh = weigh;
  }

  /**
   * Starts a batch now if the runner has room, rather than on the next turn: for a caller whose
   * queued write just became big enough to be worth a transaction of its own (the store's encoded
   * audit records), so that committing it overlaps with preparing the next.
   */
  kick(): void {
    if (this.#inFlight >= this.#options.maxInFlight || this.#queue.length === 0) return;
    this.#cancelScheduled();
    void this.#runBatch();
  }

  /** Queues a write; resolves with its result after the COMMIT of the transaction holding it. */
  submit(op: Op): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ op, resolve, reject });
      this.#schedule();
    });
  }

  /** Writes queued, and batches with the runner. */
  get pending(): { queued: number; batches: number } {
    return { queued: this.#queue.length, batches: this.#inFlight };
  }

  stats(): GroupCommitStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  #schedule(): void {
    if (this.#inFlight >= this.#options.maxInFlight) return; // a batch ending starts the next
    if (this.#queue.length >= this.#options.maxBatch) {
      this.#cancelScheduled();
      void this.#runBatch();
      return;
    }
    if (this.#scheduled !== null) return;
    this.#scheduled = this.#options.maxDelayMs > 0
      ? setTimeout(() => this.#fire(), this.#options.maxDelayMs)
      : setImmediate(() => this.#fire());
  }

  #cancelScheduled(): void {
    if (this.#scheduled === null) return;
    clearTimeout(this.#scheduled as NodeJS.Timeout);
    clearImmediate(this.#scheduled as NodeJS.Immediate);
    this.#scheduled = null;
  }

  #fire(): void {
    this.#scheduled = null;
    if (this.#inFlight < this.#options.maxInFlight && this.#queue.length > 0) void this.#runBatch();
  }

  /** How many queued writes the next batch takes: at most maxBatch, and no more weight than maxWeight (at least one write). */
  #batchLength(): number {
    const limit = Math.min(this.#queue.length, this.#options.maxBatch);
    if (this.#weigh === undefined) return limit;
    let weight = 0;
    for (let take = 0; take < limit; take++) {
      weight += this.#weigh(this.#queue[take]!.op);
      if (take > 0 && weight > this.#options.maxWeight) return take;
    }
    return limit;
  }

  async #runBatch(): Promise<void> {
    this.#inFlight++;
    const batch = this.#queue.splice(0, this.#batchLength());
    const ops = batch.map((entry) => entry.op);
    let outcome: RunOutcome<R>;
    const started = performance.now();
    try {
      outcome = await this.#runner(ops);
    } catch (error) {
      outcome = { ok: false, error: error instanceof Error ? error : new Error(String(error)), ms: performance.now() - started };
    }
    this.#stats.commitMs += outcome.ms;
    if (outcome.ok) {
      this.#stats.transactions++;
      this.#stats.writes += batch.length;
      this.#stats.largestBatch = Math.max(this.#stats.largestBatch, batch.length);
    } else {
      this.#stats.failedTransactions++;
    }
    try {
      this.#afterBatch?.(ops, outcome);
    } finally {
      batch.forEach((entry, position) => {
        if (outcome.ok) entry.resolve(outcome.results[position]!);
        else entry.reject(outcome.error);
      });
      this.#inFlight--;
      // Writes that queued up during this transaction have waited long enough: go now.
      if (this.#queue.length > 0 && this.#inFlight < this.#options.maxInFlight) {
        this.#cancelScheduled();
        void this.#runBatch();
      }
    }
  }
}
