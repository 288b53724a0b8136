/**
 * Fixtures for the KMS store and audit tests: a temporary store directory removed at teardown,
 * the checkpoint MAC as the backend will provide it but over the native HMAC-SHA256 (a test key
 * in a native key slot), and small builders for records.
 */
import type { ExecutionContext } from "ava";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { AuditMac } from "../../src/kms/audit/checkpoints.js";
import { importKey } from "../../src/crypto/keys.js";
import { hmacSign, hmacVerify } from "../../src/crypto/hmac.js";
import { DATABASE_FILE, openSqliteStore, type SqliteStore, type SqliteStoreOptions } from "../../src/kms/store/sqlite.js";
import type { WriterMode } from "../../src/kms/store/writer.js";
import type { AuditEvent, AuditRecord, NewKey } from "../../src/kms/types.js";
import { blockOf } from "../../src/kms/audit/blocks.js";
import { AuditBlockReader } from "../../src/kms/store/audit-reads.js";
import { auditFromRow, type AuditRow } from "../../src/kms/store/rows.js";

export const WRITERS: readonly WriterMode[] = ["inline", "worker"];

/** HMAC-SHA256 under `keyBytes` (default: a fixed test key) in a native key slot. */
export function testMac(keyBytes: Buffer = Buffer.alloc(32, 0x5a)): AuditMac {
  const key = importKey(keyBytes);
  return {
    mac: (data) => hmacSign(key, "sha256", data),
    verifyMac: (data, mac) => hmacVerify(key, "sha256", data, mac),
  };
}

export const MAC = testMac();

/** A temporary directory removed at the end of the test. */
export function tempDir(t: ExecutionContext, prefix = "hsmkit-kms-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store in `dir` (default: a new temporary one), closed at teardown. */
export async function openStore(
  t: ExecutionContext,
  options: Partial<SqliteStoreOptions> & { writer?: WriterMode } = {},
): Promise<SqliteStore> {
  const store = await openSqliteStore({ directory: options.directory ?? tempDir(t), mac: MAC, ...options });
  t.teardown(() => store.close());
  return store;
}

/** A raw connection to the store's database (tampering, inspection). */
export function rawDb(dir: string): Database.Database {
  return new Database(join(dir, DATABASE_FILE));
}

/** Every audit record in the database, decoded from its blocks, in seq order. */
export function auditRecords(db: Database.Database): AuditRecord[] {
  return [...new AuditBlockReader(db).records()];
}

/**
 * Lets `edit` work on the audit log with SQL, as on a table `audit_log` of one row per record
 * (seq, time, request_id, project_id, principal_id, source, action, key_id, outcome, error_code,
 * detail, hash), then writes the log's blocks back from that table as it was left — what someone
 * holding the database file can do. The blocks are rewritten `perBlock` records at a time, with
 * whatever seq, fields and stored chain values the rows hold.
 */
export function withAuditRows<T>(db: Database.Database, edit: (db: Database.Database) => T, perBlock = 8): T {
  db.exec(`CREATE TEMP TABLE audit_log (
    seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, request_id TEXT NOT NULL, project_id TEXT, principal_id TEXT, source TEXT NOT NULL,
    action TEXT NOT NULL, key_id TEXT, outcome TEXT NOT NULL, error_code TEXT, detail TEXT, hash BLOB NOT NULL) STRICT`);
  try {
    const insert = db.prepare("INSERT INTO temp.audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (const r of auditRecords(db)) {
      insert.run(r.seq, r.time, r.requestId, r.projectId, r.principalId, r.source, r.action, r.keyId, r.outcome, r.errorCode, r.detail, r.hash);
    }
    const result = edit(db);
    const rows = (db.prepare("SELECT * FROM temp.audit_log ORDER BY seq").all() as AuditRow[]).map(auditFromRow);
    db.prepare("DELETE FROM audit_blocks").run();
    db.prepare("DELETE FROM audit_block_terms").run();
    const block = db.prepare("INSERT INTO audit_blocks (first_seq, last_seq, min_time, time_high, bodies, hashes) VALUES (?, ?, ?, ?, ?, ?)");
    const term = db.prepare("INSERT OR IGNORE INTO audit_block_terms (project_id, term, first_seq) VALUES (?, ?, ?)");
    let timeHigh = 0;
    for (let at = 0; at < rows.length; at += perBlock) {
      const made = blockOf(rows.slice(at, at + perBlock));
      timeHigh = Math.max(timeHigh, made.maxTime);
      block.run(made.firstSeq, made.lastSeq, made.minTime, timeHigh, made.bodies, made.hashes);
      for (const [project, text] of made.terms) term.run(project, text, made.firstSeq);
    }
    return result;
  } finally {
    db.exec("DROP TABLE temp.audit_log");
  }
}

export function newKey(projectId: string, overrides: Partial<NewKey> = {}): NewKey {
  const keyId = overrides.keyId ?? randomUUID();
  return {
    projectId,
    keyId,
    domainId: "domain-1",
    alias: `alias-${keyId}`,
    keySpec: "AES_256",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "kms",
    state: 2,
    defaultKey: false,
    ...overrides,
  };
}

let requests = 0;

export function event(action: string, projectId: string | null, keyId: string | null, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { requestId: `req-${++requests}`, projectId, principalId: "user-1", source: "127.0.0.1", action, keyId, ...overrides };
}

export const material = (text: string): { material: Buffer } => ({ material: Buffer.from(`wrapped:${text}`) });
