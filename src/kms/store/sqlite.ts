/**
 * The embedded KMS store: SQLite through better-sqlite3, in `<directory>/kms.sqlite` (WAL; a
 * commit is on disk before it is acknowledged), behind the KmsStore interface (store.ts). docs/kms-store.md describes the
 * design; in short:
 *
 * - Writes are data (WriteOp) queued into a group commit (group-commit.ts) and run by one writer
 *   (sqlite-writes.ts) — on a worker thread when the process has a core for it, else on this one
 *   (writer.ts) — one transaction per batch. A write's promise resolves after its batch's COMMIT
 *   is on disk.
 * - Reads run on a read-only connection of this thread (sqlite-reads.ts).
 * - The audit chain's head lives in the writer, which gives each record its seq and chain value
 *   inside the transaction that commits it. This side follows the committed head from the batch
 *   results and writes MACed checkpoints after every `checkpoints.everyRecords` records, every
 *   `checkpoints.everyMs`, on close, and on open after a crash ("recovery").
 * - On open the records after the newest checkpoint are verified (and that checkpoint's MAC):
 *   a store whose log end does not verify refuses to open (StoreError ERR_KMS_AUDIT_TAMPERED)
 *   rather than chain new records onto a forgery. verifyAuditDatabase() checks such a database
 *   without opening it as a store.
 * - Usage counters are derived from committed audit records (store.ts UsageStore).
 * - One process owns the directory (lock.ts).
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { MalformedBlock } from "../audit/blocks.js";
import { checkFields, type ChainHead } from "../audit/chain.js";
import {
  checkpointMacValid, DEFAULT_CHECKPOINT_POLICY, makeCheckpoint, toAnchor, type AuditMac, type CheckpointPolicy,
} from "../audit/checkpoints.js";
import { ChainVerifier, type AuditVerification, type AuditVerifyFailure, type VerifyOptions, type VerifyStart } from "../audit/verify.js";
import type {
  AuditCheckpoint, AuditEvent, AuditInput, AuditOutcome, AuditRecord, CheckpointReason, CredentialRecord, GrantRecord, KeyRecord,
  KeyVersionRecord, PrincipalRecord, ProjectRecord, RoleRecord, TagRecord, UsageRecord,
} from "../types.js";
import { StoreError } from "./errors.js";
import { GroupCommitter, type GroupCommitOptions, type RunOutcome } from "./group-commit.js";
import { StoreLock } from "./lock.js";
import type { Migration } from "./migrations.js";
import { asBuffer, reviveCheckpoint, reviveCredential, reviveVersion } from "./rows.js";
import { AuditAppends, eventFields, usageSums } from "./audit-appends.js";
import { exportAuditLog, SqliteReader, verifyAuditLog } from "./sqlite-reads.js";
import {
  openDatabase, reviveError, type AuditDraft, type OutcomeDraft, type StoreResult, type UsageDelta, type WriteOp,
} from "./sqlite-writes.js";
import {
  markFailureAudited, type AuditLog, type AuditSink, type GrantStore, type KeyStore, type KmsStore, type PrincipalStore, type ProjectStore,
  type StoreStats, type TagStore, type UsageStore,
} from "./store.js";
import type { SyncFunction } from "./wal-sync.js";
import { startWalCheckpointer, type WalCheckpointer } from "./wal-checkpointer.js";
import { defaultWriterMode, startInlineWriter, startWorkerWriter, type Writer, type WriterMode } from "./writer.js";

/** The database's file name inside the store directory. */
export const DATABASE_FILE = "kms.sqlite";

export interface SqliteStoreOptions {
  /** The store's directory (created, mode 0700, if absent): kms.sqlite, its -wal and -shm, kms.lock. */
  directory: string;
  /** The checkpoint MAC (the token's HMAC key; audit/checkpoints.ts). */
  mac: AuditMac;
  /** Where transactions run: "worker" or "inline" (writer.ts). Default: "worker" when the process may use more than one core, else "inline". */
  writer?: WriterMode;
  /** Batch size and delay (group-commit.ts). */
  groupCommit?: Partial<GroupCommitOptions>;
  /**
   * Audit records (audit.record) per batch before it is handed to the writer without waiting for
   * the next turn of the event loop; a transaction carries at most twice that (default 128; see
   * docs/kms-store.md "Audit blocks").
   */
  auditBatch?: number;
  /** When checkpoints are written (audit/checkpoints.ts). */
  checkpoints?: Partial<CheckpointPolicy>;
  /** How often accumulated usage counts are written, ms (default 1000). */
  usageFlushMs?: number;
  /** Operator messages: a stale lock taken over, a background checkpoint or usage write that failed. Default: process.emitWarning. */
  warn?: (message: string) => void;
  /**
   * What open() verifies of the audit log before appending to it: "tail" (default) — the newest
   * checkpoint and the records after it, cheap whatever the log's size; "full" — the whole log,
   * as audit.verify() does. Either way a failure refuses the open (ERR_KMS_AUDIT_TAMPERED).
   */
  verifyOnOpen?: "tail" | "full";
  /** Another migration list (tests; "inline" writer only). */
  migrations?: readonly Migration[];
  /** Stands in for the fdatasync of the write-ahead log (tests; "inline" writer only; wal-sync.ts). */
  walSync?: SyncFunction;
  /**
   * How often a thread of its own copies the write-ahead log into the database, ms (default 200;
   * 0: never, the writer's automatic checkpoints alone; wal-checkpointer.ts).
   */
  walCheckpointMs?: number;
  /**
   * The size the write-ahead log must reach before that thread starts, bytes (default 4 MiB; 0: at
   * open). Starting a thread costs ~0.1 s of CPU, and a store that never writes this much (a
   * developer's, a test's) has no long automatic checkpoint to avoid.
   */
  walCheckpointStartBytes?: number;
}

const defaultWarn = (message: string): void => process.emitWarning(message, { code: "HSMKIT_KMS_STORE" });

function tampered(verification: AuditVerifyFailure): StoreError {
  return new StoreError("ERR_KMS_AUDIT_TAMPERED",
    `the audit log does not verify (${verification.problem}): ${verification.message}. ` +
    "The store will not append to it; run the audit verification to examine it (or check that the MAC key is this log's)",
    { verification });
}

function draftOf(event: AuditEvent): AuditDraft {
  const fields = eventFields(event, "success", null);
  // Refuse a record that cannot be encoded before anything is written (the writer trusts these).
  checkFields(fields);
  const { seq: _seq, outcome: _outcome, errorCode: _errorCode, ...draft } = fields;
  return draft;
}

/** An audit.append's record: the caller's event and outcome, checked. */
function outcomeDraftOf(input: AuditInput): OutcomeDraft {
  const fields = eventFields(input, input.outcome, input.errorCode ?? null);
  checkFields(fields);
  const { seq: _seq, ...record } = fields;
  return record;
}

const DEFAULT_AUDIT_BATCH = 128;
/** Frequent enough that a writer's automatic checkpoint finds at most a few hundred frames left to copy at full load. */
const DEFAULT_WAL_CHECKPOINT_MS = 200;
/** A tenth of the log the writer's automatic checkpoint waits for (10 000 pages of 4 KiB). */
const DEFAULT_WAL_CHECKPOINT_START_BYTES = 4 << 20;
/** Batches between two looks at the log's size, until the checkpointer has started. */
const LOG_SIZE_EVERY = 64;

/** When the checkpointer thread runs (walCheckpointMs) and starts (walCheckpointStartBytes). */
interface WalCheckpointing {
  intervalMs: number;
  startBytes: number;
}

/** What the store queues: the writer's ops, and the request path's audit records not yet sealed (sealed when their batch starts). */
type StoreOp = WriteOp | { op: "audit.pending"; pending: AuditAppends };

/** An audit.records write's value, as expandResults reports it. */
interface RecordsWritten {
  firstSeq: number;
  count: number;
  lastHash: Buffer;
  /** Flat, by string ids of the batch (audit-appends.ts FramedRecords.usage). */
  usage: number[];
}

const optionalDraft = (event: AuditEvent | undefined): AuditDraft | null => (event === undefined ? null : draftOf(event));

function unwrap(result: StoreResult): unknown {
  if (!result.ok) {
    const error = reviveError(result.error);
    throw result.audit === null ? error : markFailureAudited(error);
  }
  return result.value;
}

/**
 * The database and its -wal and -shm files readable by their owner only. They hold wrapped keys
 * and sealed secrets, nothing in the clear, but SQLite makes its files 0644 (the -wal and -shm
 * take the database's mode), and a copy of the database is what an offline attack on a weak
 * sealer or root key would start from. A new database is created 0600 before SQLite opens it (an
 * empty file is a new database to SQLite); an existing store's files are tightened
 * (tightenOwnerOnly).
 */
function createOwnerOnly(path: string): void {
  if (process.platform === "win32") return;
  try {
    closeSync(openSync(path, "wx", 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/** Tightens a store's files, once its writer has found the database to be a store (a foreign file is left as it was found). */
function tightenOwnerOnly(path: string): void {
  if (process.platform === "win32") return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/** Opens (creating and migrating as needed) the store in `options.directory`. */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const mode = options.writer ?? defaultWriterMode();
  if (mode !== "worker" && mode !== "inline") throw new TypeError(`writer must be "worker" or "inline", not ${String(mode)}`);
  if (options.migrations !== undefined && mode !== "inline") throw new TypeError("custom migrations need the inline writer");
  if (options.walSync !== undefined && mode !== "inline") throw new TypeError("walSync needs the inline writer");
  if (typeof options.mac?.mac !== "function" || typeof options.mac.verifyMac !== "function") throw new TypeError("options.mac must provide mac() and verifyMac()");
  const policy: CheckpointPolicy = { ...DEFAULT_CHECKPOINT_POLICY, ...options.checkpoints };
  if (!Number.isSafeInteger(policy.everyRecords) || policy.everyRecords < 1) throw new RangeError("checkpoints.everyRecords must be a positive integer");
  if (!Number.isFinite(policy.everyMs) || policy.everyMs < 0) throw new RangeError("checkpoints.everyMs must be >= 0");
  const usageFlushMs = options.usageFlushMs ?? 1000;
  if (!Number.isFinite(usageFlushMs) || usageFlushMs <= 0) throw new RangeError("usageFlushMs must be > 0");
  const warn = options.warn ?? defaultWarn;
  const walCheckpointMs = options.walCheckpointMs ?? DEFAULT_WAL_CHECKPOINT_MS;
  if (!Number.isFinite(walCheckpointMs) || walCheckpointMs < 0) throw new RangeError("walCheckpointMs must be >= 0");
  const walCheckpointStartBytes = options.walCheckpointStartBytes ?? DEFAULT_WAL_CHECKPOINT_START_BYTES;
  if (!Number.isSafeInteger(walCheckpointStartBytes) || walCheckpointStartBytes < 0) throw new RangeError("walCheckpointStartBytes must be an integer >= 0");

  mkdirSync(options.directory, { recursive: true, mode: 0o700 });
  const lock = StoreLock.acquire(options.directory, warn);
  const path = join(options.directory, DATABASE_FILE);
  createOwnerOnly(path);
  let writer: Writer | undefined;
  let reader: SqliteReader | undefined;
  try {
    writer = mode === "inline" ? startInlineWriter(path, options.migrations, options.walSync) : await startWorkerWriter(path);
    tightenOwnerOnly(path);
    reader = new SqliteReader(openDatabase(path, { readonly: true }));
    const checkpointing = walCheckpointMs > 0 ? { intervalMs: walCheckpointMs, startBytes: walCheckpointStartBytes } : null;
    const store = new SqliteStore(path, lock, writer, reader, options, policy, usageFlushMs, warn);
    if (options.verifyOnOpen === "full") {
      const verdict = await store.audit.verify();
      if (!verdict.ok) throw tampered(verdict);
    } else if (options.verifyOnOpen !== undefined && options.verifyOnOpen !== "tail") {
      throw new TypeError(`verifyOnOpen must be "tail" or "full", not ${String(options.verifyOnOpen)}`);
    }
    await store.recoverAfterOpen(checkpointing);
    return store;
  } catch (error) {
    reader?.close();
    await writer?.close();
    lock.release();
    throw error;
  }
}

/**
 * Verifies the audit log of the store database at `path` (a store directory's kms.sqlite) without
 * opening it as a store: no lock, read-only, while a server may be using it. For `hsmkit audit verify`.
 */
export async function verifyAuditDatabase(path: string, mac: AuditMac, options: VerifyOptions = {}): Promise<AuditVerification> {
  const db = openDatabase(path, { readonly: true });
  try {
    const logId = asBuffer(db.prepare("SELECT value FROM meta WHERE name = 'log_id'").pluck().get() as Uint8Array);
    return await verifyAuditLog(db, logId, mac, options);
  } finally {
    db.close();
  }
}

export class SqliteStore implements KmsStore {
  readonly #path: string;
  readonly #lock: StoreLock;
  readonly #writer: Writer;
  readonly #reader: SqliteReader;
  /** The checkpointer thread (wal-checkpointer.ts) once started; what starts it, from the end of the open until then. */
  #walCheckpointer: WalCheckpointer | null = null;
  #walCheckpointing: WalCheckpointing | null = null;
  #batchesSinceLogSize = 0;
  readonly #committer: GroupCommitter<StoreOp, StoreResult>;
  /** Encoded audit records waiting for their group commit (audit-appends.ts). */
  #appends: AuditAppends | null = null;
  readonly #auditBatch: number;
  readonly #mac: AuditMac;
  readonly #policy: CheckpointPolicy;
  readonly #usageFlushMs: number;
  readonly #warn: (message: string) => void;
  readonly #logId: Buffer;
  #head: ChainHead;
  #lastCheckpoint: AuditCheckpoint | null;
  #checkpointing: Promise<AuditCheckpoint | null> | null = null;
  /** Usage counts not yet written, by key (JSON [projectId, keyId]) and action. */
  /** By project, then key id: a batch's sums are added without building a joined key per sum. */
  #usage = new Map<string, Map<string, Map<string, { count: number; lastUsedAt: number }>>>();
  /** Counts in a usage write not yet acknowledged, and the seq that write records as usage_seq. */
  #usageInFlight: UsageDelta[] | null = null;
  #usageInFlightSeq = 0;
  #usageFlushing: Promise<void> | null = null;
  /** The usage counts (written and pending) include every audit record up to this seq. */
  #usageThroughSeq: number;
  readonly #timers: NodeJS.Timeout[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;
  #recovered = false;

  /** Use openSqliteStore. */
  constructor(
    path: string, lock: StoreLock, writer: Writer, reader: SqliteReader, options: SqliteStoreOptions,
    policy: CheckpointPolicy, usageFlushMs: number, warn: (message: string) => void,
  ) {
    this.#path = path;
    this.#lock = lock;
    this.#writer = writer;
    this.#reader = reader;
    this.#mac = options.mac;
    this.#policy = policy;
    this.#usageFlushMs = usageFlushMs;
    this.#warn = warn;
    this.#logId = writer.state.logId;
    this.#head = writer.state.head;
    this.#lastCheckpoint = writer.state.lastCheckpoint;
    this.#usageThroughSeq = writer.state.usageSeq;
    // Batched records are sealed the moment their batch goes to the writer: later ones start anew.
    const run = (ops: StoreOp[]): ReturnType<Writer["run"]> => writer.run(ops.map((op) => (op.op === "audit.pending" ? { op: "audit.records", appends: op.pending.seal() } : op)));
    this.#auditBatch = options.auditBatch ?? DEFAULT_AUDIT_BATCH;
    if (!Number.isSafeInteger(this.#auditBatch) || this.#auditBatch < 1) throw new RangeError("auditBatch must be a positive integer");
    this.#committer = new GroupCommitter(run, { maxWeight: 2 * this.#auditBatch, ...options.groupCommit }, (ops, outcome) => this.#afterBatch(ops, outcome),
      (op) => (op.op === "audit.pending" ? op.pending.count : 1));
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /** Where transactions run. */
  get writerMode(): WriterMode {
    return this.#writer.mode;
  }

  /** The schema migrations applied when this store was opened. */
  get migration(): Writer["state"]["migration"] {
    return this.#writer.state.migration;
  }

  // Internals ---------------------------------------------------------------------------------

  #reads(): SqliteReader {
    if (this.#closed) throw new StoreError("ERR_KMS_STORE_CLOSED", "the KMS store is closed");
    return this.#reader;
  }

  /** Submits an internal write (allowed while closing). */
  #submit(op: StoreOp): Promise<unknown> {
    return this.#committer.submit(op).then(unwrap);
  }

  /** Submits a caller's write. */
  #write<T>(build: () => WriteOp, revive?: (value: T) => T): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreError("ERR_KMS_STORE_CLOSED", "the KMS store is closed"));
    let op: WriteOp;
    try {
      op = build();
    } catch (error) {
      return Promise.reject(error);
    }
    const done = this.#committer.submit(op);
    return revive === undefined ? (done.then(unwrap) as Promise<T>) : done.then((result) => revive(unwrap(result) as T));
  }

  /**
   * Starts the checkpointer thread once the write-ahead log has reached its start size; the size is
   * looked at every LOG_SIZE_EVERY batches (a stat: the log only grows while the store is open).
   */
  #startCheckpointerIfDue(): void {
    const due = this.#walCheckpointing;
    if (due === null || this.#closed) return;
    if (due.startBytes > 0) {
      let size = 0;
      try {
        size = statSync(`${this.#path}-wal`).size;
      } catch {
        // No log yet: nothing to copy either.
      }
      if (size < due.startBytes) return;
    }
    this.#walCheckpointing = null;
    this.#walCheckpointer = startWalCheckpointer(this.#path, { intervalMs: due.intervalMs, warn: this.#warn });
  }

  /** Follows the committed chain head, usage and checkpoints from each batch's results. */
  #afterBatch(ops: readonly StoreOp[], outcome: RunOutcome<StoreResult>): void {
    if (this.#walCheckpointing !== null && ++this.#batchesSinceLogSize >= LOG_SIZE_EVERY) {
      this.#batchesSinceLogSize = 0;
      this.#startCheckpointerIfDue();
    }
    if (!outcome.ok) {
      if (ops.some((op) => op.op === "usage.flush")) this.#usageFlushFailed();
      return;
    }
    outcome.results.forEach((result, position) => {
      const op = ops[position]!;
      if (op.op === "audit.pending") {
        if (result.ok) this.#recorded(op.pending, result.value as RecordsWritten);
        return;
      }
      if (result.audit !== null) {
        const record = result.audit;
        this.#head = { seq: record.seq, hash: record.hash };
        this.#count(record);
      }
      if (op.op === "audit.checkpoint" && result.ok) this.#lastCheckpoint = reviveCheckpoint(result.value as AuditCheckpoint);
      if (op.op === "usage.flush") {
        if (result.ok) this.#usageInFlight = null;
        else this.#usageFlushFailed();
      }
    });
    if (this.#head.seq - (this.#lastCheckpoint?.seq ?? 0) >= this.#policy.everyRecords) this.#background(this.#checkpoint("count"));
  }

  #background(work: Promise<unknown>): void {
    work.catch((error: Error) => {
      if (!(error instanceof StoreError && error.code === "ERR_KMS_STORE_CLOSED")) this.#warn(`hsmkit KMS store: ${error.message}`);
    });
  }

  /** Takes in committed batched records: the head moves to the last, their usage is counted. */
  #recorded(pending: AuditAppends, written: RecordsWritten): void {
    if (written.count === 0) return;
    const lastSeq = written.firstSeq + written.count - 1;
    this.#head = { seq: lastSeq, hash: written.lastHash };
    if (lastSeq > this.#usageThroughSeq) this.#usageThroughSeq = lastSeq;
    for (const sum of usageSums(written.usage, pending.strings)) this.#addUsage(sum.projectId, sum.keyId, sum.action, sum.count, sum.lastUsedAt);
  }

  /** Adds a committed audit record to the usage counts (successes on a key only). */
  #count(record: AuditRecord): void {
    if (record.seq > this.#usageThroughSeq) this.#usageThroughSeq = record.seq;
    if (record.outcome !== "success" || record.keyId === null || record.projectId === null) return;
    this.#addUsage(record.projectId, record.keyId, record.action, 1, record.time);
  }

  #addUsage(projectId: string, keyId: string, action: string, count: number, lastUsedAt: number): void {
    let keys = this.#usage.get(projectId);
    if (keys === undefined) this.#usage.set(projectId, (keys = new Map()));
    let actions = keys.get(keyId);
    if (actions === undefined) keys.set(keyId, (actions = new Map()));
    const entry = actions.get(action);
    if (entry === undefined) actions.set(action, { count, lastUsedAt });
    else {
      entry.count += count;
      entry.lastUsedAt = Math.max(entry.lastUsedAt, lastUsedAt);
    }
  }

  #usageFlushFailed(): void {
    for (const entry of this.#usageInFlight ?? []) this.#addUsage(entry.projectId, entry.keyId, entry.action, entry.count, entry.lastUsedAt);
    this.#usageInFlight = null;
  }

  #flushUsage(): Promise<void> {
    if (this.#usageFlushing !== null) return this.#usageFlushing.then(() => this.#flushUsage());
    if (this.#usage.size === 0) return Promise.resolve();
    const entries: UsageDelta[] = [];
    for (const [projectId, keys] of this.#usage) {
      for (const [keyId, actions] of keys) {
        for (const [action, { count, lastUsedAt }] of actions) entries.push({ projectId, keyId, action, count, lastUsedAt });
      }
    }
    this.#usage = new Map();
    this.#usageInFlight = entries;
    this.#usageInFlightSeq = this.#usageThroughSeq;
    const flushing = this.#submit({ op: "usage.flush", entries, throughSeq: this.#usageThroughSeq }).then(() => undefined);
    // Only the caller hears of a failure: this one is kept to chain the next flush after it, and
    // a rejection nobody awaits would end the process (unhandled). The counts are back in
    // #usage by then (#usageFlushFailed), so the chained flush retries them.
    const settled = (): void => {
      this.#usageFlushing = null;
    };
    this.#usageFlushing = flushing.then(settled, settled);
    return flushing;
  }

  /** Writes a checkpoint at the committed head if records were added since the last one. */
  #checkpoint(reason: CheckpointReason): Promise<AuditCheckpoint | null> {
    if (this.#checkpointing !== null) {
      // One at a time; a manual or closing checkpoint must cover what came after the running one.
      return reason === "count" || reason === "interval" ? this.#checkpointing : this.#checkpointing.then(() => this.#checkpoint(reason), () => this.#checkpoint(reason));
    }
    const last = this.#lastCheckpoint;
    if (this.#head.seq <= (last?.seq ?? 0)) return Promise.resolve(last);
    let checkpoint: AuditCheckpoint;
    try {
      checkpoint = makeCheckpoint(this.#logId, { index: (last?.index ?? 0) + 1, seq: this.#head.seq, hash: this.#head.hash, time: Date.now(), reason }, this.#mac);
    } catch (error) {
      return Promise.reject(new StoreError("ERR_KMS_STORE_WRITE_FAILED", `audit checkpoint not written: the MAC failed: ${(error as Error).message}`, { cause: error }));
    }
    const running = this.#submit({ op: "audit.checkpoint", checkpoint }).then(() => this.#lastCheckpoint);
    this.#checkpointing = running;
    const clear = (): void => {
      if (this.#checkpointing === running) this.#checkpointing = null;
    };
    running.then(clear, clear);
    return running;
  }

  /**
   * Internal: called once by openSqliteStore (later calls do nothing). Checks the end of the audit log (the newest checkpoint's MAC
   * and chain value, and the records after it), recounts usage the last run did not write, writes a
   * "recovery" checkpoint over records a crash left without one, and starts the timers and — as
   * `checkpointing` says — the checkpointer thread.
   */
  async recoverAfterOpen(checkpointing: WalCheckpointing | null): Promise<void> {
    if (this.#recovered) return;
    this.#recovered = true;
    const last = this.#lastCheckpoint;
    // A block that cannot be read (audit-reads.ts) makes the log one that does not verify, as in
    // verify(): refused as tampered, with the verdict, like any other.
    const unreadable = (error: unknown): never => {
      if (!(error instanceof MalformedBlock)) throw error;
      throw tampered({ ok: false, problem: "malformed", firstBadSeq: error.firstSeq, checkpointIndex: null, message: error.message, records: 0 });
    };
    let start: VerifyStart | undefined;
    if (last !== null) {
      const fail = (problem: AuditVerifyFailure["problem"], firstBadSeq: number | null, message: string): StoreError =>
        tampered({ ok: false, problem, firstBadSeq, checkpointIndex: last.index, message, records: 0 });
      if (!checkpointMacValid(this.#logId, last, this.#mac)) throw fail("checkpoint-mac", null, `checkpoint ${last.index} (at record ${last.seq}) has a wrong MAC`);
      let record: AuditRecord | undefined;
      try {
        record = this.#reader.auditRecord(last.seq);
      } catch (error) {
        unreadable(error);
      }
      if (record === undefined) throw fail("truncated", this.#head.seq + 1, `checkpoint ${last.index} vouches for records up to ${last.seq}, but the log ends at ${this.#head.seq}`);
      if (!record.hash.equals(last.hash)) throw fail("checkpoint-mismatch", null, `the chain value at record ${last.seq} is not the one checkpoint ${last.index} vouches for`);
      start = { seq: last.seq, hash: last.hash, checkpointIndex: last.index };
    }
    const verifier = new ChainVerifier(this.#logId, this.#mac, [], start === undefined ? {} : { start });
    try {
      for (const record of this.#reader.auditAfter(start?.seq ?? 0)) if (!verifier.push(record)) break;
    } catch (error) {
      if (!(error instanceof MalformedBlock)) throw error;
      verifier.malformed(error.message);
    }
    const verdict = verifier.finish();
    if (!verdict.ok) throw tampered(verdict);

    const usageSeq = this.#usageThroughSeq;
    try {
      for (const record of this.#reader.auditAfter(usageSeq)) this.#count(record);
    } catch (error) {
      unreadable(error);
    }
    if (this.#head.seq > (last?.seq ?? 0)) await this.#checkpoint("recovery");

    const every = (ms: number, work: () => Promise<unknown>): void => {
      const timer = setInterval(() => this.#background(work()), ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#usageFlushMs, () => this.#flushUsage());
    if (this.#policy.everyMs > 0) every(this.#policy.everyMs, () => this.#checkpoint("interval"));
    // Last: an open that fails closes the writer, the reader and the lock (openSqliteStore) but
    // has no store to close, so a thread started before this point would outlive it, holding a
    // connection to a database this process no longer owns.
    this.#walCheckpointing = checkpointing;
    this.#startCheckpointerIfDue();
  }

  // The interface ------------------------------------------------------------------------------

  readonly projects: ProjectStore = {
    create: (project, options = {}) =>
      this.#write<ProjectRecord>(() => ({ op: "project.create", project, now: Date.now(), audit: optionalDraft(options.audit) })),
    get: async (projectId) => this.#reads().project(projectId),
    list: async (domainId) => this.#reads().projects(domainId),
  };

  readonly keys: KeyStore = {
    create: (key, options = {}) => this.#write<KeyRecord>(() => ({
      op: "key.create",
      key,
      version: options.version ?? null,
      maxCustomKeys: options.maxCustomKeys ?? null,
      existingAlias: options.existingAlias ?? "fail",
      now: Date.now(),
      audit: optionalDraft(options.audit),
    })),
    get: async (projectId, keyId) => this.#reads().key(projectId, keyId),
    getByAlias: async (projectId, alias) => this.#reads().keyByAlias(projectId, alias),
    getForUse: async (projectId, keyId, version) => this.#reads().keyForUse(projectId, keyId, version),
    list: async (projectId, request) => this.#reads().keys(projectId, request),
    count: async (projectId, options = {}) => this.#reads().countKeys(projectId, options.customOnly === true),
    update: (projectId, keyId, patch, options = {}) => this.#write<KeyRecord>(() => ({
      op: "key.update", projectId, keyId, patch, guard: options.guard ?? null, now: Date.now(), audit: optionalDraft(options.audit),
    })),
    addVersion: (projectId, keyId, version, options = {}) => this.#write<{ key: KeyRecord; version: KeyVersionRecord }>(
      () => ({
        op: "key.addVersion", projectId, keyId, version, guard: options.guard ?? null, ifRevision: options.ifRevision ?? null, now: Date.now(), audit: optionalDraft(options.audit),
      }),
      (value) => ({ key: value.key, version: reviveVersion(value.version) }),
    ),
    getVersion: async (projectId, keyId, version) => this.#reads().version(projectId, keyId, version),
    listVersions: async (projectId, keyId) => this.#reads().versions(projectId, keyId),
    destroy: (projectId, keyId, options = {}) => this.#write<KeyRecord>(() => ({
      op: "key.destroy", projectId, keyId, guard: options.guard ?? null, dueBy: options.dueBy ?? null, audit: optionalDraft(options.audit),
    })),
    listDueForDeletion: async (now, limit) => this.#reads().dueForDeletion(now, limit),
    listDueForRotation: async (now, limit) => this.#reads().dueForRotation(now, limit),
  };

  readonly tags: TagStore = {
    put: (projectId, keyId, tags, options = {}) => this.#write<TagRecord[]>(() => ({
      op: "tags.put", projectId, keyId, tags: tags.map(({ key, value }) => ({ key, value })), maxTags: options.maxTagsPerKey ?? 10,
      guard: options.guard ?? null, audit: optionalDraft(options.audit),
    })),
    delete: (projectId, keyId, tagKeys, options = {}) => this.#write<number>(() => ({
      op: "tags.delete", projectId, keyId, tagKeys: [...tagKeys], guard: options.guard ?? null, audit: optionalDraft(options.audit),
    })),
    list: async (projectId, keyId) => this.#reads().tags(projectId, keyId),
    listProject: async (projectId) => this.#reads().projectTags(projectId),
    listProjectByKey: async (projectId) => this.#reads().projectTagsByKey(projectId),
    count: async (projectId, keyId) => this.#reads().countTags(projectId, keyId),
  };

  readonly grants: GrantStore = {
    create: (grant, options = {}) => this.#write<GrantRecord>(() => {
      if (!Array.isArray(grant.operations) || !grant.operations.every((operation) => typeof operation === "string")) {
        throw new TypeError("grant.operations must be an array of operation names");
      }
      return {
        op: "grant.create", projectId: grant.projectId, keyId: grant.keyId,
        grant: { ...grant, operations: [...grant.operations], grantId: grant.grantId ?? randomBytes(32).toString("hex") },
        maxGrants: options.maxGrantsPerKey ?? 100, now: Date.now(), guard: options.guard ?? null, audit: optionalDraft(options.audit),
      };
    }),
    get: async (projectId, keyId, grantId) => this.#reads().grant(projectId, keyId, grantId),
    list: async (projectId, keyId, page) => this.#reads().grants(projectId, keyId, page),
    listRetirable: async (projectId, retiringPrincipal, page) => this.#reads().retirableGrants(projectId, retiringPrincipal, page),
    findForGrantee: async (projectId, keyId, granteePrincipal) => this.#reads().grantsForGrantee(projectId, keyId, granteePrincipal),
    count: async (projectId, keyId) => this.#reads().countGrants(projectId, keyId),
    keyIdOf: async (projectId, grantId) => this.#reads().grantKeyId(projectId, grantId),
    delete: (projectId, keyId, grantId, options = {}) => this.#write<GrantRecord>(() => ({
      op: "grant.delete", projectId, keyId, grantId, guard: options.guard ?? null, audit: optionalDraft(options.audit),
    })),
  };

  readonly principals: PrincipalStore = {
    create: (principal, options = {}) => this.#write<PrincipalRecord>(() => ({
      op: "principal.create", principal, now: Date.now(), audit: optionalDraft(options.audit),
    })),
    get: async (principalId) => this.#reads().principal(principalId),
    list: async (domainId) => this.#reads().principalsOf(domainId),
    update: (principalId, patch, options = {}) => this.#write<PrincipalRecord>(() => ({
      op: "principal.update", principalId, patch, audit: optionalDraft(options.audit),
    })),
    createCredential: (credential, options = {}) => this.#write<CredentialRecord>(() => {
      if (typeof credential.secret?.sealer !== "string" || !(credential.secret.blob instanceof Uint8Array)) {
        throw new TypeError("credential.secret must be a SealedSecret (secrets.ts sealCredentialSecret)");
      }
      return { op: "credential.create", credential, now: Date.now(), audit: optionalDraft(options.audit) };
    }, reviveCredential),
    getCredential: async (accessKey) => this.#reads().credential(accessKey),
    listCredentials: async (principalId) => this.#reads().credentials(principalId),
    updateCredential: (accessKey, patch, options = {}) => this.#write<CredentialRecord>(
      () => ({ op: "credential.update", accessKey, patch, audit: optionalDraft(options.audit) }),
      reviveCredential,
    ),
    deleteCredential: (accessKey, options = {}) => this.#write<boolean>(() => ({
      op: "credential.delete", accessKey, audit: optionalDraft(options.audit),
    })),
    addRole: (principalId, projectId, role, options = {}) => this.#write<RoleRecord>(() => ({
      op: "role.add", principalId, projectId, role, now: Date.now(), audit: optionalDraft(options.audit),
    })),
    removeRole: (principalId, projectId, role, options = {}) => this.#write<boolean>(() => ({
      op: "role.remove", principalId, projectId, role, audit: optionalDraft(options.audit),
    })),
    listRoles: async (principalId, projectId) => this.#reads().roles(principalId, projectId),
  };

  readonly usage: UsageStore = {
    get: async (projectId, keyId) => {
      const written = this.#reads().usage(projectId, keyId);
      if (written === undefined) return [];
      const byAction = new Map<string, UsageRecord>(written.records.map((record) => [record.action, { ...record }]));
      const add = (action: string, count: number, lastUsedAt: number): void => {
        const record = byAction.get(action);
        if (record === undefined) byAction.set(action, { projectId, keyId, action, count, lastUsedAt });
        else {
          record.count += count;
          record.lastUsedAt = Math.max(record.lastUsedAt, lastUsedAt);
        }
      };
      for (const [action, entry] of this.#usage.get(projectId)?.get(keyId) ?? []) add(action, entry.count, entry.lastUsedAt);
      // A usage write the writer has committed but whose acknowledgement has not arrived yet is in
      // the rows read above already: its usage_seq shows it.
      const inFlight = this.#usageInFlight !== null && written.throughSeq < this.#usageInFlightSeq ? this.#usageInFlight : [];
      for (const entry of inFlight) {
        if (entry.projectId === projectId && entry.keyId === keyId) add(entry.action, entry.count, entry.lastUsedAt);
      }
      return [...byAction.values()].sort((a, b) => (a.action < b.action ? -1 : a.action > b.action ? 1 : 0));
    },
    flush: () => this.#flushUsage(),
  };

  readonly audit: AuditLog = this.#auditLog();

  #auditLog(): AuditLog {
    const store = this;
    return {
      get logId(): Buffer {
        return Buffer.from(store.#logId);
      },
      append: (input: AuditInput) => this.#write<AuditRecord>(() => ({ op: "audit.append", record: outcomeDraftOf(input) })),
      record: (event, outcome, errorCode) => this.#record(event, outcome, errorCode),
      query: async (filter) => this.#reads().auditQuery(filter),
      head: async () => ({ seq: this.#head.seq, hash: Buffer.from(this.#head.hash) }),
      checkpoint: () => (this.#closed ? Promise.reject(new StoreError("ERR_KMS_STORE_CLOSED", "the KMS store is closed")) : this.#checkpoint("manual")),
      anchor: async () => {
        this.#reads();
        return this.#lastCheckpoint === null ? null : toAnchor(this.#logId, this.#lastCheckpoint);
      },
      verify: async (options) => {
        this.#reads();
        const db = openDatabase(this.#path, { readonly: true });
        try {
          return await verifyAuditLog(db, this.#logId, this.#mac, options);
        } finally {
          db.close();
        }
      },
      export: async (out: AuditSink, filter) => {
        this.#reads();
        const db = openDatabase(this.#path, { readonly: true });
        try {
          return await exportAuditLog(db, this.#logId, out, filter);
        } finally {
          db.close();
        }
      },
    };
  }

  /** audit.record: joins the batched records of the next group commit and awaits its commit. */
  #record(event: AuditEvent, outcome: AuditOutcome, errorCode: string | null): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError("ERR_KMS_STORE_CLOSED", "the KMS store is closed"));
    const current = this.#appends;
    const joining = current !== null && current.open;
    const pending = joining ? current : new AuditAppends(this.#auditBatch);
    try {
      pending.add(event, outcome, errorCode);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!joining) {
      // Submitted with its first record in: the committer may start (and seal) it at once, when
      // its queue is full or it commits every write alone.
      this.#appends = pending;
      pending.done = this.#committer.submit({ op: "audit.pending", pending }).then((result) => {
        unwrap(result);
      });
    }
    if (!pending.open) this.#committer.kick();
    return pending.done!;
  }

  async flush(): Promise<void> {
    if (this.#closed) throw new StoreError("ERR_KMS_STORE_CLOSED", "the KMS store is closed");
    await this.#submit({ op: "noop" });
  }

  stats(): StoreStats {
    return this.#committer.stats();
  }

  unwritable(): string | undefined {
    return this.#writer.failure?.message;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const timer of this.#timers) clearInterval(timer);
      try {
        // Let every write already submitted commit first, so the closing checkpoint covers them.
        await this.#submit({ op: "noop" });
        await this.#flushUsage();
        await this.#checkpoint("close");
      } catch (error) {
        this.#warn(`hsmkit KMS store: closing: ${(error as Error).message}`);
      } finally {
        // The writer's connection last: the last connection to close checkpoints the WAL into the
        // database and removes it, which a read-only connection cannot do.
        await this.#walCheckpointer?.close();
        this.#reader.close();
        await this.#writer.close();
        this.#lock.release();
      }
    })();
    return this.#closing;
  }
}
