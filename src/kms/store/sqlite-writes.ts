/**
 * The SQLite writer: runs a batch of writes as one transaction. It owns the write connection and
 * the audit chain's head, and runs either on its own thread (writer-worker.ts, the default) or on
 * the caller's (inline). Writes arrive as plain data (WriteOp), never as closures, so they can
 * cross the thread boundary — and so each is exactly one of the operations the store interface
 * names.
 *
 * A batch: BEGIN IMMEDIATE; each write inside its own SAVEPOINT, so one write refused by the data
 * (a KmsError) is rolled back alone while the others stand; the audit record of an atomic write is
 * appended inside the same savepoint on success, or after its rollback with outcome "failure";
 * COMMIT. If the transaction as a whole fails (an I/O error, a full disk — SQLite then rolls it
 * back itself — or COMMIT failing), every write in it fails and the chain head returns to where the
 * batch began, so the next batch chains from the last committed record.
 */
import Database from "better-sqlite3";
import { performance } from "node:perf_hooks";
import { BlockBuilder, TermAnchors } from "../audit/blocks.js";
import { chainRecords } from "../../crypto/audit-chain.js";
import { genesisHash, HASH_LENGTH, LOG_ID_LENGTH, type ChainHead } from "../audit/chain.js";
import { KMS_ERRORS, KmsError, type KmsErrorCode } from "../errors.js";
import type {
  AuditCheckpoint, AuditOutcome, AuditRecord, CredentialStatus, GrantRecord, KeyPatch, KeyRecord, KeyState,
  KeyVersionRecord, NewCredential, NewGrant, NewKey, NewKeyVersion, NewPrincipal, NewProject, Role, TagRecord,
} from "../types.js";
import { StoreError, type StoreErrorCode } from "./errors.js";
import { checkStoreFile, migrate, MIGRATIONS, type Migration, type MigrationReport } from "./migrations.js";
import {
  asBuffer, checkpointFromRow, credentialFromRow, GRANT_KEY_ID_SQL, grantFromRow, keyFromRow, principalFromRow, projectFromRow,
  roleFromRow, tagFromRow, type CheckpointRow, type CredentialRow, type GrantRow, type KeyRow, type PrincipalRow,
  type ProjectRow, type RoleRow, type TagRow,
} from "./rows.js";
import type { KeyGuard } from "./store.js";
import { frameRecords, type SealedAppends } from "./audit-appends.js";

/** What the writer reports for an "audit.records" write. */
export interface RecordsAppended {
  count: number;
  /** The usage the records add (FramedRecords.usage: string ids and numbers), for the store to count once the write has committed. */
  usage: number[];
}

/** An audit record before the writer gives it a seq and a chain value. */
export interface AuditDraft {
  time: number;
  requestId: string;
  projectId: string | null;
  principalId: string | null;
  source: string;
  action: string;
  keyId: string | null;
  detail: string | null;
}

export interface OutcomeDraft extends AuditDraft {
  outcome: AuditOutcome;
  errorCode: string | null;
}

/** Usage counts accumulated for one (key, action). */
export interface UsageDelta {
  projectId: string;
  keyId: string;
  action: string;
  count: number;
  lastUsedAt: number;
}

type Audited = { audit: AuditDraft | null };
type Keyed = { projectId: string; keyId: string; guard: KeyGuard | null } & Audited;

/** Every write the store makes. `now` is the time the store took the request. */
export type WriteOp =
  | { op: "noop" }
  | ({ op: "project.create"; project: NewProject; now: number } & Audited)
  | ({ op: "key.create"; key: NewKey; version: NewKeyVersion | null; maxCustomKeys: number | null; existingAlias: "fail" | "return"; now: number } & Audited)
  | ({ op: "key.update"; patch: KeyPatch; now: number } & Keyed)
  | ({ op: "key.addVersion"; version: NewKeyVersion; ifRevision: number | null; now: number } & Keyed)
  | ({ op: "key.destroy"; dueBy: number | null } & Keyed)
  | ({ op: "tags.put"; tags: Array<{ key: string; value: string }>; maxTags: number } & Keyed)
  | ({ op: "tags.delete"; tagKeys: string[] } & Keyed)
  | ({ op: "grant.create"; grant: NewGrant & { grantId: string }; maxGrants: number; now: number } & Keyed)
  | ({ op: "grant.delete"; grantId: string } & Keyed)
  | ({ op: "principal.create"; principal: NewPrincipal; now: number } & Audited)
  | ({ op: "principal.update"; principalId: string; patch: { name?: string; disabled?: boolean } } & Audited)
  | ({ op: "credential.create"; credential: NewCredential; now: number } & Audited)
  | ({ op: "credential.update"; accessKey: string; patch: { status?: CredentialStatus; expiresAt?: number | null; description?: string } } & Audited)
  | ({ op: "credential.delete"; accessKey: string } & Audited)
  | ({ op: "role.add"; principalId: string; projectId: string; role: Role; now: number } & Audited)
  | ({ op: "role.remove"; principalId: string; projectId: string; role: Role } & Audited)
  | { op: "audit.append"; record: OutcomeDraft }
  | { op: "audit.records"; appends: SealedAppends }
  | { op: "audit.checkpoint"; checkpoint: AuditCheckpoint }
  | { op: "usage.flush"; entries: UsageDelta[]; throughSeq: number };

/** An error as plain data, to cross the thread boundary and be rebuilt as the same class. */
export type SerializedError =
  | { kind: "kms"; code: KmsErrorCode; detail: string | null }
  | { kind: "store"; code: StoreErrorCode; message: string }
  | { kind: "error"; name: string; message: string; code: string | null };

/**
 * A write's result as the writer reports it, kept small because batches cross a thread boundary
 * by structured clone: `1` is an audit.append that succeeded; otherwise ok/value or ok/error, and
 * whether an audit record was appended for the write (its success record, or its failure record).
 * The records themselves are not sent back: the store rebuilds them from the drafts it sent and
 * the batch's chain values (expandResults).
 */
export type OpResult =
  | 1
  | { ok: true; value: unknown; audited: boolean }
  | { ok: false; error: SerializedError; audited: boolean };

export type BatchResult =
  /** `hashes`: the chain value of each audit record appended, 32 bytes each, from seq `firstSeq` on. */
  | { ok: true; results: OpResult[]; firstSeq: number; hashes: Uint8Array; ms: number }
  | { ok: false; error: SerializedError; ms: number };

/** A write's result with its audit record rebuilt: what the store's promises settle with. */
export type StoreResult =
  | { ok: true; value: unknown; audit: AuditRecord | null }
  | { ok: false; error: SerializedError; audit: AuditRecord | null };

/**
 * An audit.append as a flat tuple for the trip to the writer thread: structured clone copies a
 * tuple of strings several times faster than the same fields as an object, and appends are most
 * of the traffic. Other writes travel as they are.
 */
type PackedAppend = [
  time: number, requestId: string, projectId: string | null, principalId: string | null, source: string, action: string,
  keyId: string | null, detail: string | null, outcome: AuditOutcome, errorCode: string | null,
];

export type PackedOp = WriteOp | PackedAppend;

export function packOps(ops: readonly WriteOp[]): PackedOp[] {
  return ops.map((op) => {
    if (op.op !== "audit.append") return op;
    const r = op.record;
    return [r.time, r.requestId, r.projectId, r.principalId, r.source, r.action, r.keyId, r.detail, r.outcome, r.errorCode];
  });
}

export function unpackOps(packed: readonly PackedOp[]): WriteOp[] {
  return packed.map((op) => {
    if (!Array.isArray(op)) return op;
    const [time, requestId, projectId, principalId, source, action, keyId, detail, outcome, errorCode] = op;
    return { op: "audit.append", record: { time, requestId, projectId, principalId, source, action, keyId, detail, outcome, errorCode } };
  });
}

/** The code a failed atomic write's audit record carries. */
export function failureCode(error: SerializedError): string {
  return error.kind === "kms" ? error.code : "KMS.0101";
}

/**
 * Rebuilds each write's audit record (seq and chain value from the writer, the rest from the
 * draft in the op) and, for audit.append, its value. `ops` are the ops of the batch, in order.
 */
export function expandResults(ops: readonly WriteOp[], result: Extract<BatchResult, { ok: true }>): StoreResult[] {
  let seq = result.firstSeq;
  let offset = 0;
  const hashes = result.hashes;
  const next = (draft: AuditDraft, outcome: AuditOutcome, errorCode: string | null): AuditRecord => {
    const hash = Buffer.allocUnsafe(HASH_LENGTH);
    hash.set(hashes.subarray(offset, offset + HASH_LENGTH));
    offset += HASH_LENGTH;
    return {
      seq: seq++, time: draft.time, requestId: draft.requestId, projectId: draft.projectId, principalId: draft.principalId,
      source: draft.source, action: draft.action, keyId: draft.keyId, outcome, errorCode, detail: draft.detail, hash,
    };
  };
  return result.results.map((opResult, position): StoreResult => {
    const op = ops[position]!;
    if (op.op === "audit.records" && opResult !== 1 && opResult.ok) {
      // The records' chain values: skipped here, the store needs only the last (the new head).
      const { count, usage } = opResult.value as RecordsAppended;
      const firstSeq = seq;
      seq += count;
      offset += count * HASH_LENGTH;
      const last = Buffer.from(hashes.subarray(offset - HASH_LENGTH, offset));
      return { ok: true, value: { firstSeq, count, lastHash: last, usage }, audit: null };
    }
    if (opResult === 1) {
      if (op.op !== "audit.append") throw new Error(`writer result 1 for a ${op.op}`);
      const record = next(op.record, op.record.outcome, op.record.errorCode);
      return { ok: true, value: record, audit: record };
    }
    let audit: AuditRecord | null = null;
    if (opResult.audited) {
      const draft = "audit" in op ? op.audit : null;
      if (draft === null || draft === undefined) throw new Error(`writer reports an audit record for a ${op.op} without one`);
      audit = opResult.ok ? next(draft, "success", null) : next(draft, "failure", failureCode(opResult.error));
    }
    return opResult.ok ? { ok: true, value: opResult.value, audit } : { ok: false, error: opResult.error, audit };
  });
}

/** What the writer found on open. */
export interface WriterState {
  logId: Buffer;
  head: ChainHead;
  lastCheckpoint: AuditCheckpoint | null;
  /** Usage counters include the audit records up to this seq. */
  usageSeq: number;
  migration: MigrationReport;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof KmsError) return { kind: "kms", code: error.code, detail: error.detail ?? null };
  if (error instanceof StoreError) return { kind: "store", code: error.code, message: error.message };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { kind: "error", name: error.name, message: error.message, code: typeof code === "string" ? code : null };
  }
  return { kind: "error", name: "Error", message: String(error), code: null };
}

export function reviveError(error: SerializedError): Error {
  switch (error.kind) {
    case "kms":
      return new KmsError(error.code, error.detail ?? undefined);
    case "store":
      return new StoreError(error.code, error.message);
    default: {
      const revived = error.name === "TypeError" ? new TypeError(error.message) : error.name === "RangeError" ? new RangeError(error.message) : new Error(error.message);
      if (error.name !== revived.name) Object.defineProperty(revived, "name", { value: error.name });
      if (error.code !== null) Object.assign(revived, { code: error.code });
      return revived;
    }
  }
}

/**
 * Opens the database file with the store's settings: WAL, synchronous=FULL (a commit is on disk
 * when COMMIT returns; the inline writer then hands the sync to wal-sync.ts), foreign keys, secure_delete (deleted rows are overwritten, not left in free
 * pages), a larger automatic-checkpoint interval, and a busy timeout for the rare moments a reader
 * meets a checkpoint.
 */
export function openDatabase(path: string, options: { readonly?: boolean } = {}): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, options.readonly === true ? { readonly: true, fileMustExist: true } : {});
    db.pragma("busy_timeout = 5000");
    // Before the first change to the file: one that is not a store is refused as it was found.
    checkStoreFile(db);
    if (options.readonly === true) {
      db.pragma("query_only = ON");
    } else {
      const mode = db.pragma("journal_mode = WAL", { simple: true });
      if (mode !== "wal") throw new StoreError("ERR_KMS_STORE_FOREIGN", `${path} cannot use write-ahead logging (journal_mode is ${String(mode)})`);
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      db.pragma("secure_delete = ON");
      // Copy the WAL into the database every ~40 MB rather than every ~4 MB (SQLite's default): an
      // automatic checkpoint runs inside some COMMIT and fsyncs the database file, so fewer, larger
      // ones cost the writer less (measured: about +10 % durable appends/s).
      db.pragma("wal_autocheckpoint = 10000");
    }
    return db;
  } catch (error) {
    db?.close();
    const code = (error as { code?: unknown })?.code;
    if (code === "SQLITE_NOTADB") {
      throw new StoreError("ERR_KMS_STORE_FOREIGN", `${path} is not an hsmkit KMS store (not a SQLite database)`, { cause: error });
    }
    if (typeof code === "string" && code.startsWith("SQLITE_CORRUPT")) {
      throw new StoreError("ERR_KMS_STORE_CORRUPT", `${path} is damaged (${code}): restore it from a backup`, { cause: error });
    }
    throw error;
  }
}

const guardCode = (code: string): KmsErrorCode => {
  if (!Object.hasOwn(KMS_ERRORS, code)) throw new TypeError(`guard code ${code} is not a KMS error code`);
  return code as KmsErrorCode;
};

function checkGuard(row: KeyRow, guard: KeyGuard | null): void {
  if (guard === null) return;
  if (row.default_key === 1 && guard.defaultKey !== undefined) throw new KmsError(guardCode(guard.defaultKey), "guard: default key");
  const code = guard.states?.[row.state as KeyState];
  if (code !== undefined) throw new KmsError(guardCode(code), `guard: key state ${row.state}`);
}

/** Thrown inside a batch when SQLite has already rolled the whole transaction back. */
class TransactionLost extends Error {
  constructor(readonly original: unknown) {
    super("the transaction was rolled back by SQLite");
  }
}

/**
 * Why a batch failed as a whole, as every write in it gets it: ERR_KMS_STORE_WRITE_FAILED (the
 * contract's "not made durable") naming SQLite's reason, whatever the error was — a SQLITE_FULL or
 * SQLITE_IOERR is no answer of the data, and a KmsError one write met is not the others' answer.
 */
function notCommitted(error: unknown): StoreError {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: unknown })?.code;
  const reason = `${typeof code === "string" ? `${code}: ` : ""}${error instanceof Error ? error.message : String(error)}`;
  return new StoreError("ERR_KMS_STORE_WRITE_FAILED", `the transaction was not committed (${reason})`, { cause: error });
}

const bool = (value: boolean): number => (value ? 1 : 0);

export class WriteExecutor {
  readonly #db: Database.Database;
  #head: ChainHead;
  #lastCheckpoint: AuditCheckpoint | null;
  /** The records appended in the running batch: written as one audit block before COMMIT. */
  readonly #block = new BlockBuilder();
  /** Which terms of the next block need an anchor (audit/blocks.ts "Search terms"). */
  readonly #anchors = new TermAnchors();
  /** The newest block's time_high (migrations.ts, audit_blocks). */
  #timeHigh = 0;
  readonly #state: WriterState;
  readonly #s;

  constructor(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS) {
    this.#db = db;
    const migration = migrate(db, migrations);
    const prepare = (sql: string): Database.Statement => db.prepare(sql);
    this.#s = {
      begin: prepare("BEGIN IMMEDIATE"),
      commit: prepare("COMMIT"),
      rollback: prepare("ROLLBACK"),
      savepoint: prepare("SAVEPOINT op"),
      release: prepare("RELEASE op"),
      rollbackTo: prepare("ROLLBACK TO op"),
      meta: prepare("SELECT value FROM meta WHERE name = ?").pluck(),
      setMeta: prepare("UPDATE meta SET value = ? WHERE name = ?"),
      lastBlock: prepare("SELECT first_seq, last_seq, time_high, hashes FROM audit_blocks ORDER BY first_seq DESC LIMIT 1"),
      blockOf: prepare("SELECT first_seq, hashes FROM audit_blocks WHERE first_seq <= ? ORDER BY first_seq DESC LIMIT 1"),
      lastCheckpoint: prepare("SELECT * FROM audit_checkpoints ORDER BY idx DESC LIMIT 1"),
      insertBlock: prepare("INSERT INTO audit_blocks (first_seq, last_seq, min_time, time_high, bodies, hashes) VALUES (?, ?, ?, ?, ?, ?)"),
      insertTerm: prepare("INSERT OR IGNORE INTO audit_terms_by_block (first_seq, project_id, term) VALUES (?, ?, ?)"),
      insertAnchor: prepare("INSERT OR IGNORE INTO audit_block_terms (project_id, term, first_seq) VALUES (?, ?, ?)"),
      insertCheckpoint: prepare("INSERT INTO audit_checkpoints (idx, seq, hash, time, reason, mac) VALUES (?, ?, ?, ?, ?, ?)"),
      key: prepare("SELECT * FROM keys WHERE project_id = ? AND key_id = ?"),
      keyBySeq: prepare("SELECT * FROM keys WHERE seq = ?"),
      aliasTaken: prepare("SELECT * FROM keys WHERE project_id = ? AND alias = ?"),
      countCustom: prepare("SELECT count(*) FROM keys WHERE project_id = ? AND default_key = 0").pluck(),
      insertKey: prepare(`INSERT INTO keys (project_id, key_id, domain_id, alias, description, key_spec, key_usage, origin, state, default_key,
          created_at, updated_at, deletion_date, rotation_enabled, rotation_interval_days, last_rotated_at, rotation_count, current_version, revision,
          rotation_enabled_at)
        VALUES (@project_id, @key_id, @domain_id, @alias, @description, @key_spec, @key_usage, @origin, @state, @default_key,
          @created_at, @updated_at, @deletion_date, @rotation_enabled, @rotation_interval_days, @last_rotated_at, @rotation_count, @current_version, @revision,
          @rotation_enabled_at)`),
      updateKey: prepare(`UPDATE keys SET alias = @alias, description = @description, state = @state, updated_at = @updated_at,
          deletion_date = @deletion_date, rotation_enabled = @rotation_enabled, rotation_interval_days = @rotation_interval_days,
          last_rotated_at = @last_rotated_at, rotation_count = @rotation_count, current_version = @current_version, revision = @revision,
          rotation_enabled_at = @rotation_enabled_at
        WHERE seq = @seq`),
      deleteKey: prepare("DELETE FROM keys WHERE seq = ?"),
      insertVersion: prepare("INSERT INTO key_versions (key_seq, version, material, created_at) VALUES (?, ?, ?, ?)"),
      upsertTag: prepare(`INSERT INTO tags (key_seq, tag_key, tag_value) VALUES (?, ?, ?)
        ON CONFLICT (key_seq, tag_key) DO UPDATE SET tag_value = excluded.tag_value`),
      deleteTag: prepare("DELETE FROM tags WHERE key_seq = ? AND tag_key = ?"),
      countTags: prepare("SELECT count(*) FROM tags WHERE key_seq = ?").pluck(),
      tags: prepare("SELECT tag_key, tag_value FROM tags WHERE key_seq = ? ORDER BY tag_key"),
      countGrants: prepare("SELECT count(*) FROM grants WHERE key_seq = ?").pluck(),
      insertGrant: prepare(`INSERT INTO grants (grant_id, key_seq, name, grantee_principal, grantee_type, operations, retiring_principal, creator, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      grant: prepare(`SELECT g.*, k.project_id, k.key_id FROM grants g JOIN keys k ON k.seq = g.key_seq WHERE g.key_seq = ? AND g.grant_id = ?`),
      deleteGrant: prepare("DELETE FROM grants WHERE grant_id = ?"),
      grantInProject: prepare(GRANT_KEY_ID_SQL).pluck(),
      project: prepare("SELECT * FROM projects WHERE project_id = ?"),
      insertProject: prepare("INSERT INTO projects (project_id, domain_id, name, created_at) VALUES (?, ?, ?, ?)"),
      principal: prepare("SELECT * FROM principals WHERE principal_id = ?"),
      insertPrincipal: prepare("INSERT INTO principals (principal_id, domain_id, name, disabled, created_at) VALUES (?, ?, ?, ?, ?)"),
      updatePrincipal: prepare("UPDATE principals SET name = ?, disabled = ? WHERE principal_id = ?"),
      credential: prepare("SELECT * FROM credentials WHERE access_key = ?"),
      insertCredential: prepare(`INSERT INTO credentials (access_key, principal_id, sealer, secret, status, created_at, expires_at, description)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      updateCredential: prepare("UPDATE credentials SET status = ?, expires_at = ?, description = ? WHERE access_key = ?"),
      deleteCredential: prepare("DELETE FROM credentials WHERE access_key = ?"),
      role: prepare("SELECT * FROM roles WHERE principal_id = ? AND project_id = ? AND role = ?"),
      insertRole: prepare("INSERT INTO roles (principal_id, project_id, role, created_at) VALUES (?, ?, ?, ?)"),
      deleteRole: prepare("DELETE FROM roles WHERE principal_id = ? AND project_id = ? AND role = ?"),
      upsertUsage: prepare(`INSERT INTO key_usage (key_seq, action, count, last_used_at)
          SELECT seq, ?, ?, ? FROM keys WHERE project_id = ? AND key_id = ?
        ON CONFLICT (key_seq, action) DO UPDATE SET count = count + excluded.count, last_used_at = max(last_used_at, excluded.last_used_at)`),
    };
    const logId = asBuffer(this.#s.meta.get("log_id") as Uint8Array);
    if (logId.length !== LOG_ID_LENGTH) throw new StoreError("ERR_KMS_STORE_FOREIGN", `${db.name}: the audit log id is damaged`);
    const last = this.#s.lastBlock.get() as { first_seq: number; last_seq: number; time_high: number; hashes: Buffer } | undefined;
    this.#timeHigh = last?.time_high ?? 0;
    // The head is the newest block's last chain value (a doctored block shows in verify(), which open() runs over the log's end).
    this.#head = last === undefined || last.hashes.length < HASH_LENGTH
      ? { seq: last?.last_seq ?? 0, hash: genesisHash(logId) }
      : { seq: last.last_seq, hash: Buffer.from(last.hashes.subarray(last.hashes.length - HASH_LENGTH)) };
    const checkpoint = this.#s.lastCheckpoint.get() as CheckpointRow | undefined;
    this.#lastCheckpoint = checkpoint === undefined ? null : checkpointFromRow(checkpoint);
    this.#state = { logId, head: this.#head, lastCheckpoint: this.#lastCheckpoint, usageSeq: Number(this.#s.meta.get("usage_seq")), migration };
  }

  /** What the writer found on open. */
  get state(): WriterState {
    return this.#state;
  }

  /** Runs `ops` as one transaction; see the file comment. Never throws. */
  runBatch(ops: readonly WriteOp[]): BatchResult {
    const started = performance.now();
    const head = this.#head;
    const checkpoint = this.#lastCheckpoint;
    const fail = (error: unknown): BatchResult => {
      if (this.#db.inTransaction) {
        try {
          this.#s.rollback.run();
        } catch {
          /* the connection will report the next problem itself */
        }
      }
      this.#head = head;
      this.#lastCheckpoint = checkpoint;
      return { ok: false, error: serializeError(notCommitted(error instanceof TransactionLost ? error.original : error)), ms: performance.now() - started };
    };
    let truncateLog = false;
    const results: OpResult[] = [];
    let timeHigh = this.#timeHigh;
    this.#block.reset(head.seq + 1);
    let anchored: ReadonlyArray<readonly [string, string]> | null = null;
    try {
      this.#s.begin.run();
      for (const op of ops) {
        results.push(this.#run(op));
        if (op.op === "key.destroy") truncateLog = true;
      }
      const block = this.#block.build();
      if (block !== null) {
        timeHigh = Math.max(timeHigh, block.maxTime);
        this.#s.insertBlock.run(block.firstSeq, block.lastSeq, block.minTime, timeHigh, block.bodies, block.hashes);
        for (const [project, term] of block.terms) this.#s.insertTerm.run(block.firstSeq, project, term);
        anchored = this.#anchors.due(block.terms);
        for (const [project, term] of anchored) this.#s.insertAnchor.run(project, term, block.firstSeq);
      }
      this.#s.commit.run();
    } catch (error) {
      return fail(error);
    }
    this.#timeHigh = timeHigh;
    if (anchored !== null) this.#anchors.committed(anchored);
    if (truncateLog) {
      // The destroyed versions' pages are zeroed in the database (secure_delete); move that into
      // the file now and empty the write-ahead log, whose older frames may still hold the material.
      try {
        this.#db.pragma("wal_checkpoint(TRUNCATE)");
      } catch {
        /* busy readers: the next automatic checkpoint completes it */
      }
    }
    // Not from Buffer's shared pool: the array crosses to the main thread by transfer.
    return { ok: true, results, firstSeq: head.seq + 1, hashes: this.#block.hashes(), ms: performance.now() - started };
  }

  /**
   * Hands the log's fsync to the caller (wal-sync.ts): from now on COMMIT writes the batch's
   * frames without syncing them (synchronous=NORMAL), and a batch is durable only once the caller
   * has synced the log file this returns.
   */
  syncOutside(): string {
    this.#db.pragma("synchronous = NORMAL");
    return `${this.#db.name}-wal`;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  // -------------------------------------------------------------------------------------------

  #run(op: WriteOp): OpResult {
    switch (op.op) {
      case "noop":
        return { ok: true, value: null, audited: false };
      case "audit.append":
        // One INSERT, which happens or not: no savepoint needed.
        try {
          this.#append(op.record, op.record.outcome, op.record.errorCode);
          return 1;
        } catch (error) {
          if (!this.#db.inTransaction) throw new TransactionLost(error);
          return { ok: false, error: serializeError(error), audited: false };
        }
      case "audit.records":
        return this.#appendRecords(op.appends);
      case "audit.checkpoint":
        try {
          return { ok: true, value: this.#checkpoint(op.checkpoint), audited: false };
        } catch (error) {
          if (!this.#db.inTransaction) throw new TransactionLost(error);
          return { ok: false, error: serializeError(error), audited: false };
        }
      case "usage.flush":
        return this.#atomic(null, () => this.#usage(op.entries, op.throughSeq));
      case "project.create":
        return this.#atomic(op.audit, () => this.#createProject(op.project, op.now));
      case "key.create":
        return this.#createKey(op);
      case "key.update":
        return this.#atomic(op.audit, () => this.#updateKey(this.#key(op), op.patch, op.now));
      case "key.addVersion": {
        if (op.ifRevision !== null) {
          const row = this.#s.key.get(op.projectId, op.keyId) as KeyRow | undefined;
          if (row !== undefined && row.revision !== op.ifRevision) {
            return { ok: false, error: serializeError(new KmsError("KMS.0101", `the key changed since revision ${op.ifRevision}`)), audited: false };
          }
        }
        return this.#atomic(op.audit, () => this.#addVersion(this.#key(op), op.version, op.now));
      }
      case "key.destroy":
        return this.#atomic(op.audit, () => {
          const row = this.#key(op);
          if (op.dueBy !== null && (row.deletion_date === null || row.deletion_date > op.dueBy)) {
            throw new KmsError("KMS.1501", "the key is not due for deletion");
          }
          this.#s.deleteKey.run(row.seq);
          return keyFromRow(row);
        });
      case "tags.put":
        return this.#atomic(op.audit, () => this.#putTags(this.#key(op), op.tags, op.maxTags));
      case "tags.delete":
        return this.#atomic(op.audit, () => {
          const row = this.#key(op);
          let deleted = 0;
          for (const tagKey of op.tagKeys) deleted += this.#s.deleteTag.run(row.seq, tagKey).changes;
          return deleted;
        });
      case "grant.create":
        return this.#atomic(op.audit, () => this.#createGrant(this.#key(op), op.grant, op.maxGrants, op.now));
      case "grant.delete":
        return this.#atomic(op.audit, () => {
          const row = this.#key(op);
          const grant = this.#s.grant.get(row.seq, op.grantId) as GrantRow | undefined;
          if (grant === undefined) {
            // Huawei tells a grant of another key apart; another project's grant stays no grant.
            if (this.#s.grantInProject.get(op.grantId, op.projectId) !== undefined) throw new KmsError("KMS.2502", "the grant belongs to another key");
            throw new KmsError("KMS.2501", "no such grant on this key");
          }
          this.#s.deleteGrant.run(op.grantId);
          return grantFromRow(grant);
        });
      case "principal.create":
        return this.#atomic(op.audit, () => this.#createPrincipal(op.principal, op.now));
      case "principal.update":
        return this.#atomic(op.audit, () => {
          const row = this.#s.principal.get(op.principalId) as PrincipalRow | undefined;
          if (row === undefined) throw new KmsError("KMS.0308", "no such principal");
          const next = { ...row, name: op.patch.name ?? row.name, disabled: op.patch.disabled === undefined ? row.disabled : bool(op.patch.disabled) };
          this.#s.updatePrincipal.run(next.name, next.disabled, next.principal_id);
          return principalFromRow(next);
        });
      case "credential.create":
        return this.#atomic(op.audit, () => this.#createCredential(op.credential, op.now));
      case "credential.update":
        return this.#atomic(op.audit, () => {
          const row = this.#s.credential.get(op.accessKey) as CredentialRow | undefined;
          if (row === undefined) throw new KmsError("KMS.0308", "no such credential");
          const next: CredentialRow = {
            ...row,
            status: op.patch.status ?? row.status,
            expires_at: op.patch.expiresAt === undefined ? row.expires_at : op.patch.expiresAt,
            description: op.patch.description ?? row.description,
          };
          this.#s.updateCredential.run(next.status, next.expires_at, next.description, next.access_key);
          return credentialFromRow(next);
        });
      case "credential.delete":
        return this.#atomic(op.audit, () => this.#s.deleteCredential.run(op.accessKey).changes > 0);
      case "role.add":
        return this.#atomic(op.audit, () => {
          if (this.#s.principal.get(op.principalId) === undefined) throw new KmsError("KMS.0308", "no such principal");
          const existing = this.#s.role.get(op.principalId, op.projectId, op.role) as RoleRow | undefined;
          if (existing !== undefined) return roleFromRow(existing);
          const row: RoleRow = { principal_id: op.principalId, project_id: op.projectId, role: op.role, created_at: op.now };
          this.#s.insertRole.run(row.principal_id, row.project_id, row.role, row.created_at);
          return roleFromRow(row);
        });
      case "role.remove":
        return this.#atomic(op.audit, () => this.#s.deleteRole.run(op.principalId, op.projectId, op.role).changes > 0);
      default: {
        const unknown: never = op;
        return { ok: false, error: serializeError(new TypeError(`unknown write ${JSON.stringify(unknown)}`)), audited: false };
      }
    }
  }

  /** A write inside a savepoint, with its audit record (success inside, failure after a rollback). */
  /** `failedAudit`: the failure record's draft when it differs from the success record's (a create that made no key names none). */
  #atomic(audit: AuditDraft | null, fn: () => unknown, failedAudit: AuditDraft | null = audit): OpResult {
    const head = this.#head;
    const appended = this.#block.mark();
    this.#s.savepoint.run();
    try {
      const value = fn();
      if (audit !== null) this.#append(audit, "success", null);
      this.#s.release.run();
      return { ok: true, value, audited: audit !== null };
    } catch (error) {
      this.#head = head;
      this.#block.truncate(appended);
      if (!this.#db.inTransaction) throw new TransactionLost(error);
      this.#s.rollbackTo.run();
      this.#s.release.run();
      const serialized = serializeError(error);
      let audited = false;
      if (failedAudit !== null) {
        try {
          this.#append(failedAudit, "failure", failureCode(serialized));
          audited = true;
        } catch (appendError) {
          this.#head = head;
          this.#block.truncate(appended);
          if (!this.#db.inTransaction) throw new TransactionLost(appendError);
        }
      }
      return { ok: false, error: serialized, audited };
    }
  }

  /** Appends a record (fields checked by the store before queueing) to the batch's block and advances the head. */
  #append(draft: AuditDraft, outcome: AuditOutcome, errorCode: string | null): void {
    const seq = this.#head.seq + 1;
    const hash = this.#block.append(this.#head.hash, {
      seq, time: draft.time, requestId: draft.requestId, projectId: draft.projectId, principalId: draft.principalId,
      source: draft.source, action: draft.action, keyId: draft.keyId, outcome, errorCode, detail: draft.detail,
    });
    this.#head = { seq, hash };
  }

  /**
   * Frames (audit-appends.ts frameRecords), numbers, chains and adds the records the store
   * batched: all of them or, if one is malformed (a bug, never the data: the store checked every
   * field), none. Its value is the number of records and the usage they add; their chain values
   * are the batch's like any others.
   */
  #appendRecords(appends: SealedAppends): OpResult {
    if (appends.count === 0) return { ok: true, value: { count: 0, usage: [] } satisfies RecordsAppended, audited: false };
    try {
      const head = this.#head;
      const records = frameRecords(appends);
      const { bodies, hashes } = chainRecords(head.hash, records.framed, appends.count, head.seq + 1);
      this.#block.appendChained(bodies, hashes, appends.count);
      this.#block.include(records.minTime, records.maxTime, records.terms);
      this.#head = { seq: head.seq + appends.count, hash: Buffer.from(hashes.subarray(hashes.length - HASH_LENGTH)) };
      const value: RecordsAppended = { count: appends.count, usage: records.usage };
      return { ok: true, value, audited: false };
    } catch (error) {
      // frameRecords and chainRecords check the records before anything is written: nothing was appended.
      return { ok: false, error: serializeError(error), audited: false };
    }
  }

  /** The stored chain value of record `seq`, committed or appended in this batch. */
  #auditHash(seq: number): Buffer | undefined {
    if (seq === this.#head.seq) return this.#head.hash;
    const block = this.#s.blockOf.get(seq) as { first_seq: number; hashes: Buffer } | undefined;
    if (block === undefined) return undefined;
    const offset = (seq - block.first_seq) * HASH_LENGTH;
    return offset + HASH_LENGTH <= block.hashes.length ? block.hashes.subarray(offset, offset + HASH_LENGTH) : undefined;
  }

  #checkpoint(checkpoint: AuditCheckpoint): AuditCheckpoint {
    const expected = (this.#lastCheckpoint?.index ?? 0) + 1;
    if (checkpoint.index !== expected) throw new StoreError("ERR_KMS_STORE_WRITE_FAILED", `checkpoint ${checkpoint.index} out of turn (next is ${expected})`);
    const hash = asBuffer(checkpoint.hash);
    const stored = this.#auditHash(checkpoint.seq);
    if (stored === undefined || !stored.equals(hash)) {
      throw new StoreError("ERR_KMS_STORE_WRITE_FAILED", `checkpoint ${checkpoint.index}: record ${checkpoint.seq} is not in the log with that chain value`);
    }
    const record: AuditCheckpoint = { ...checkpoint, hash, mac: asBuffer(checkpoint.mac) };
    this.#s.insertCheckpoint.run(record.index, record.seq, record.hash, record.time, record.reason, record.mac);
    this.#lastCheckpoint = record;
    return record;
  }

  #usage(entries: readonly UsageDelta[], throughSeq: number): number {
    for (const entry of entries) this.#s.upsertUsage.run(entry.action, entry.count, entry.lastUsedAt, entry.projectId, entry.keyId);
    this.#s.setMeta.run(throughSeq, "usage_seq");
    return throughSeq;
  }

  /** The key named by the op, or KMS.0207; checks the op's guard. */
  #key(op: { projectId: string; keyId: string; guard: KeyGuard | null }): KeyRow {
    const row = this.#s.key.get(op.projectId, op.keyId) as KeyRow | undefined;
    if (row === undefined) throw new KmsError("KMS.0207");
    checkGuard(row, op.guard);
    return row;
  }

  #createProject(project: NewProject, now: number): unknown {
    if (this.#s.project.get(project.projectId) !== undefined) throw new KmsError("KMS.0308", "project exists");
    const row: ProjectRow = { project_id: project.projectId, domain_id: project.domainId, name: project.name, created_at: project.createdAt ?? now };
    this.#s.insertProject.run(row.project_id, row.domain_id, row.name, row.created_at);
    return projectFromRow(row);
  }

  #createKey(op: Extract<WriteOp, { op: "key.create" }>): OpResult {
    const { key } = op;
    if (op.existingAlias === "return") {
      // Decided before the savepoint: returning the existing key writes nothing and audits nothing.
      const existing = this.#s.aliasTaken.get(key.projectId, key.alias) as KeyRow | undefined;
      if (existing !== undefined) return { ok: true, value: keyFromRow(existing), audited: false };
    }
    // A failed create made no key: its record names none (the key id was never anyone's).
    return this.#atomic(op.audit, () => {
      if (this.#s.aliasTaken.get(key.projectId, key.alias) !== undefined) throw new KmsError("KMS.1104");
      if (op.maxCustomKeys !== null && !key.defaultKey && (this.#s.countCustom.get(key.projectId) as number) >= op.maxCustomKeys) {
        throw new KmsError("KMS.1105");
      }
      const createdAt = key.createdAt ?? op.now;
      const row: Omit<KeyRow, "seq"> = {
        project_id: key.projectId,
        key_id: key.keyId,
        domain_id: key.domainId,
        alias: key.alias,
        description: key.description ?? "",
        key_spec: key.keySpec,
        key_usage: key.keyUsage,
        origin: key.origin,
        state: key.state,
        default_key: bool(key.defaultKey),
        created_at: createdAt,
        updated_at: createdAt,
        deletion_date: null,
        rotation_enabled: bool(key.rotationEnabled ?? false),
        rotation_interval_days: key.rotationIntervalDays ?? 365,
        last_rotated_at: null,
        rotation_count: 0,
        current_version: op.version === null ? 0 : 1,
        revision: 1,
        rotation_enabled_at: key.rotationEnabled === true ? createdAt : null,
      };
      const seq = Number(this.#s.insertKey.run(row).lastInsertRowid);
      if (op.version !== null) this.#s.insertVersion.run(seq, 1, asBuffer(op.version.material), op.version.createdAt ?? createdAt);
      return keyFromRow({ ...row, seq });
    }, op.audit === null ? null : { ...op.audit, keyId: null });
  }

  #updateKey(row: KeyRow, patch: KeyPatch, now: number): KeyRecord {
    if (patch.alias !== undefined && patch.alias !== row.alias) {
      if (this.#s.aliasTaken.get(row.project_id, patch.alias) !== undefined) throw new KmsError("KMS.1104");
    }
    // The first scheduled rotation counts from when rotation was turned on, so the time is set
    // only on that change: enabling it again must not postpone a rotation that is coming.
    const turnedOn = patch.rotationEnabled === true && row.rotation_enabled === 0;
    const next: KeyRow = {
      ...row,
      alias: patch.alias ?? row.alias,
      description: patch.description ?? row.description,
      state: patch.state ?? row.state,
      deletion_date: patch.deletionDate === undefined ? row.deletion_date : patch.deletionDate,
      rotation_enabled: patch.rotationEnabled === undefined ? row.rotation_enabled : bool(patch.rotationEnabled),
      rotation_interval_days: patch.rotationIntervalDays ?? row.rotation_interval_days,
      rotation_enabled_at: patch.rotationEnabled === false ? null : turnedOn ? patch.rotationEnabledAt ?? now : row.rotation_enabled_at,
      updated_at: now,
      revision: row.revision + 1,
    };
    this.#s.updateKey.run(next);
    return keyFromRow(next);
  }

  #addVersion(row: KeyRow, version: NewKeyVersion, now: number): { key: KeyRecord; version: KeyVersionRecord } {
    const createdAt = version.createdAt ?? now;
    const number = row.current_version + 1;
    const material = asBuffer(version.material);
    this.#s.insertVersion.run(row.seq, number, material, createdAt);
    const rotation = row.current_version >= 1;
    const next: KeyRow = {
      ...row,
      current_version: number,
      rotation_count: row.rotation_count + (rotation ? 1 : 0),
      last_rotated_at: rotation ? createdAt : row.last_rotated_at,
      updated_at: now,
      revision: row.revision + 1,
    };
    this.#s.updateKey.run(next);
    const key = keyFromRow(next);
    return { key, version: { projectId: key.projectId, keyId: key.keyId, version: number, material, createdAt } };
  }

  #putTags(row: KeyRow, tags: ReadonlyArray<{ key: string; value: string }>, maxTags: number): TagRecord[] {
    for (const tag of tags) this.#s.upsertTag.run(row.seq, tag.key, tag.value);
    if ((this.#s.countTags.get(row.seq) as number) > maxTags) throw new KmsError("KMS.0409");
    const key = { projectId: row.project_id, keyId: row.key_id };
    return (this.#s.tags.all(row.seq) as TagRow[]).map((tag) => tagFromRow(key, tag));
  }

  #createGrant(row: KeyRow, grant: NewGrant & { grantId: string }, maxGrants: number, now: number): GrantRecord {
    if ((this.#s.countGrants.get(row.seq) as number) >= maxGrants) throw new KmsError("KMS.2404");
    const record: GrantRecord = {
      projectId: row.project_id,
      keyId: row.key_id,
      grantId: grant.grantId,
      name: grant.name ?? null,
      granteePrincipal: grant.granteePrincipal,
      granteePrincipalType: grant.granteePrincipalType,
      operations: [...grant.operations],
      retiringPrincipal: grant.retiringPrincipal ?? null,
      creator: grant.creator ?? null,
      createdAt: grant.createdAt ?? now,
    };
    this.#s.insertGrant.run(
      record.grantId, row.seq, record.name, record.granteePrincipal, record.granteePrincipalType, JSON.stringify(record.operations),
      record.retiringPrincipal, record.creator, record.createdAt,
    );
    return record;
  }

  #createPrincipal(principal: NewPrincipal, now: number): unknown {
    if (this.#s.principal.get(principal.principalId) !== undefined) throw new KmsError("KMS.0308", "principal exists");
    const row: PrincipalRow = {
      principal_id: principal.principalId, domain_id: principal.domainId, name: principal.name,
      disabled: bool(principal.disabled ?? false), created_at: principal.createdAt ?? now,
    };
    this.#s.insertPrincipal.run(row.principal_id, row.domain_id, row.name, row.disabled, row.created_at);
    return principalFromRow(row);
  }

  #createCredential(credential: NewCredential, now: number): unknown {
    if (this.#s.principal.get(credential.principalId) === undefined) throw new KmsError("KMS.0308", "no such principal");
    if (this.#s.credential.get(credential.accessKey) !== undefined) throw new KmsError("KMS.0308", "access key exists");
    const row: CredentialRow = {
      access_key: credential.accessKey,
      principal_id: credential.principalId,
      sealer: credential.secret.sealer,
      secret: asBuffer(credential.secret.blob),
      status: credential.status ?? "active",
      created_at: credential.createdAt ?? now,
      expires_at: credential.expiresAt ?? null,
      description: credential.description ?? "",
    };
    this.#s.insertCredential.run(row.access_key, row.principal_id, row.sealer, row.secret, row.status, row.created_at, row.expires_at, row.description);
    return credentialFromRow(row);
  }
}

/** Opens the database at `path`, migrates it and returns its writer (closing the file if that fails). */
export function openExecutor(path: string, migrations: readonly Migration[] = MIGRATIONS): WriteExecutor {
  const db = openDatabase(path);
  try {
    return new WriteExecutor(db, migrations);
  } catch (error) {
    db.close();
    throw error;
  }
}
