/**
 * Versioned schema migrations for the SQLite store. `PRAGMA user_version` holds the version the
 * database is at; each migration runs in its own IMMEDIATE transaction that also sets the new
 * user_version and records itself in schema_migrations, so a crash mid-migration leaves the
 * database at the previous version, never between. `PRAGMA application_id` marks the file as an
 * hsmkit KMS store, so a foreign SQLite file is refused rather than "migrated".
 *
 * Rules for adding a migration: append (never edit a released one), keep `up` deterministic and
 * free of I/O outside the database, and give a new table STRICT typing like the others.
 */
import type Database from "better-sqlite3";
import { blockOf } from "../audit/blocks.js";
import { StoreError } from "./errors.js";
import { auditFromRow, type AuditRow } from "./rows.js";

/** "HKMS" as a big-endian u32: this file is an hsmkit KMS store. */
export const APPLICATION_ID = 0x484b4d53;

export interface Migration {
  /** 1, 2, … without gaps. */
  version: number;
  name: string;
  up(db: Database.Database): void;
}

const SCHEMA_V1 = `
CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value ANY NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;

CREATE TABLE projects (
  project_id TEXT PRIMARY KEY,
  domain_id  TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- seq: creation order, never reused (AUTOINCREMENT); the list-keys marker and the children's key.
CREATE TABLE keys (
  seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id             TEXT NOT NULL,
  key_id                 TEXT NOT NULL,
  domain_id              TEXT NOT NULL,
  alias                  TEXT NOT NULL,
  description            TEXT NOT NULL,
  key_spec               TEXT NOT NULL,
  key_usage              TEXT NOT NULL,
  origin                 TEXT NOT NULL CHECK (origin IN ('kms', 'external')),
  state                  INTEGER NOT NULL CHECK (state BETWEEN 1 AND 7),
  default_key            INTEGER NOT NULL CHECK (default_key IN (0, 1)),
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL,
  deletion_date          INTEGER,
  rotation_enabled       INTEGER NOT NULL CHECK (rotation_enabled IN (0, 1)),
  rotation_interval_days INTEGER NOT NULL,
  last_rotated_at        INTEGER,
  rotation_count         INTEGER NOT NULL,
  current_version        INTEGER NOT NULL,
  revision               INTEGER NOT NULL,
  UNIQUE (project_id, key_id),
  UNIQUE (project_id, alias)
) STRICT;
CREATE INDEX keys_by_state ON keys (project_id, state, seq);
CREATE INDEX keys_due ON keys (deletion_date) WHERE state = 4;

CREATE TABLE key_versions (
  key_seq    INTEGER NOT NULL REFERENCES keys (seq) ON DELETE CASCADE,
  version    INTEGER NOT NULL CHECK (version >= 1),
  material   BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (key_seq, version)
) STRICT, WITHOUT ROWID;

CREATE TABLE tags (
  key_seq   INTEGER NOT NULL REFERENCES keys (seq) ON DELETE CASCADE,
  tag_key   TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  PRIMARY KEY (key_seq, tag_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE grants (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  grant_id           TEXT NOT NULL UNIQUE,
  key_seq            INTEGER NOT NULL REFERENCES keys (seq) ON DELETE CASCADE,
  name               TEXT,
  grantee_principal  TEXT NOT NULL,
  grantee_type       TEXT NOT NULL CHECK (grantee_type IN ('user', 'domain')),
  operations         TEXT NOT NULL,
  retiring_principal TEXT,
  creator            TEXT,
  created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX grants_by_key ON grants (key_seq, seq);
CREATE INDEX grants_by_grantee ON grants (key_seq, grantee_principal);
CREATE INDEX grants_by_retiring ON grants (retiring_principal, seq) WHERE retiring_principal IS NOT NULL;

CREATE TABLE key_usage (
  key_seq      INTEGER NOT NULL REFERENCES keys (seq) ON DELETE CASCADE,
  action       TEXT NOT NULL,
  count        INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  PRIMARY KEY (key_seq, action)
) STRICT, WITHOUT ROWID;

CREATE TABLE principals (
  principal_id TEXT PRIMARY KEY,
  domain_id    TEXT NOT NULL,
  name         TEXT NOT NULL,
  disabled     INTEGER NOT NULL CHECK (disabled IN (0, 1)),
  created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE credentials (
  access_key   TEXT PRIMARY KEY,
  principal_id TEXT NOT NULL REFERENCES principals (principal_id) ON DELETE CASCADE,
  sealer       TEXT NOT NULL,
  secret       BLOB NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,
  description  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX credentials_by_principal ON credentials (principal_id);

CREATE TABLE roles (
  principal_id TEXT NOT NULL REFERENCES principals (principal_id) ON DELETE CASCADE,
  project_id   TEXT NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('key_admin', 'crypto_user', 'auditor')),
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (principal_id, project_id, role)
) STRICT, WITHOUT ROWID;

-- seq is assigned by the writer (the chain needs it before the insert): no AUTOINCREMENT.
CREATE TABLE audit_log (
  seq          INTEGER PRIMARY KEY,
  time         INTEGER NOT NULL,
  request_id   TEXT NOT NULL,
  project_id   TEXT,
  principal_id TEXT,
  source       TEXT NOT NULL,
  action       TEXT NOT NULL,
  key_id       TEXT,
  outcome      TEXT NOT NULL,
  error_code   TEXT,
  detail       TEXT,
  hash         BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_key ON audit_log (project_id, key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_by_time ON audit_log (project_id, time);
CREATE INDEX audit_by_action ON audit_log (project_id, action, seq);

CREATE TABLE audit_checkpoints (
  idx    INTEGER PRIMARY KEY,
  seq    INTEGER NOT NULL,
  hash   BLOB NOT NULL,
  time   INTEGER NOT NULL,
  reason TEXT NOT NULL,
  mac    BLOB NOT NULL
) STRICT;

INSERT INTO meta (name, value) VALUES ('log_id', randomblob(16)), ('usage_seq', 0);
`;

/**
 * The rotation sweeper asks for the enabled custom keys whose next rotation (last rotation, or
 * creation, plus the interval) has come: an index on that very expression, limited to the keys it
 * can concern, answers without reading every key (sqlite-reads.ts dueForRotation uses the same
 * expression, which SQLite requires to use the index).
 */
const ROTATION_DUE_V2 = `
CREATE INDEX keys_rotation_due ON keys ((coalesce(last_rotated_at, created_at) + rotation_interval_days * 86400000))
  WHERE state = 2 AND rotation_enabled = 1 AND default_key = 0;
`;

/**
 * The audit log in blocks (audit/blocks.ts): one row per group commit instead of one per record,
 * and a table of search terms per block instead of three indexes per record. The records already
 * there are copied as they are — bodies re-encoded from their columns, stored chain values kept,
 * nothing checked — so a log doctored before the upgrade still fails verify() after it.
 */
const AUDIT_BLOCKS_V3 = `
CREATE TABLE audit_blocks (
  first_seq INTEGER PRIMARY KEY,
  last_seq  INTEGER NOT NULL,
  min_time  INTEGER NOT NULL,
  -- The latest record time in this block and every block before it: never decreases along the
  -- log, so the first block that can hold a record at or after a time is found by this index.
  time_high INTEGER NOT NULL,
  bodies    BLOB NOT NULL,
  hashes    BLOB NOT NULL
) STRICT;
CREATE INDEX audit_blocks_by_time ON audit_blocks (time_high, first_seq);

-- term: '' (any record of the project), 'k:' || key_id, 'a:' || action; project_id '' for records without one.
CREATE TABLE audit_block_terms (
  project_id TEXT NOT NULL,
  term       TEXT NOT NULL,
  first_seq  INTEGER NOT NULL,
  PRIMARY KEY (project_id, term, first_seq)
) STRICT, WITHOUT ROWID;
`;

/** Records per block when copying an existing log into blocks. */
const MIGRATION_BLOCK_RECORDS = 1024;

function auditBlocksV3(db: Database.Database): void {
  db.exec(AUDIT_BLOCKS_V3);
  const block = db.prepare("INSERT INTO audit_blocks (first_seq, last_seq, min_time, time_high, bodies, hashes) VALUES (?, ?, ?, ?, ?, ?)");
  const term = db.prepare("INSERT OR IGNORE INTO audit_block_terms (project_id, term, first_seq) VALUES (?, ?, ?)");
  // A page of rows at a time: the connection cannot insert while a statement iterates.
  const page = db.prepare(`SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ${MIGRATION_BLOCK_RECORDS}`);
  let timeHigh = 0;
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const records = (page.all(after) as AuditRow[]).map(auditFromRow);
    if (records.length === 0) break;
    const made = blockOf(records);
    timeHigh = Math.max(timeHigh, made.maxTime);
    block.run(made.firstSeq, made.lastSeq, made.minTime, timeHigh, made.bodies, made.hashes);
    for (const [project, text] of made.terms) term.run(project, text, made.firstSeq);
    after = made.lastSeq;
  }
  db.exec("DROP TABLE audit_log");
}

/**
 * Block search terms by block, with anchors (audit/blocks.ts "Search terms"): the terms a block
 * holds are listed in block order, which appends to the end of one index instead of touching one
 * page per distinct term in every commit; the per-term index (audit_block_terms, unchanged) keeps
 * only anchors, one per term per TERM_REACH_BLOCKS blocks. Its existing rows, one per block and
 * term, are anchors already, and a block named by an anchor holds that term, so nothing is copied.
 */
const TERMS_BY_BLOCK_V4 = `
CREATE TABLE audit_terms_by_block (
  first_seq  INTEGER NOT NULL,
  project_id TEXT NOT NULL,
  term       TEXT NOT NULL,
  PRIMARY KEY (first_seq, project_id, term)
) STRICT, WITHOUT ROWID;
`;

/**
 * When a key with rotation on is next due (ms): one interval after its last rotation or after
 * rotation was turned on, whichever is later (rotation.ts nextRotationAt says the same); keys
 * turned on before this migration have no time recorded and count from their last rotation or
 * creation, as they did. keys_rotation_due indexes this very expression, and SQLite uses the index
 * only for a query that repeats it (sqlite-reads.ts dueRotation), so it never changes: another
 * schedule is another migration.
 */
export const ROTATION_DUE_AT =
  "max(coalesce(last_rotated_at, created_at), coalesce(rotation_enabled_at, created_at)) + rotation_interval_days * 86400000";

/**
 * The time rotation was turned on, so that a key older than its interval is not due the moment
 * rotation is enabled (AWS EnableKeyRotation: the first rotation is one period after the enable
 * date), and the rotation index over the new due time.
 */
const ROTATION_ENABLED_AT_V5 = `
ALTER TABLE keys ADD COLUMN rotation_enabled_at INTEGER;
DROP INDEX keys_rotation_due;
CREATE INDEX keys_rotation_due ON keys ((${ROTATION_DUE_AT}))
  WHERE state = 2 AND rotation_enabled = 1 AND default_key = 0;
`;

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: "initial schema", up: (db: Database.Database) => db.exec(SCHEMA_V1) },
  { version: 2, name: "index of keys due for rotation", up: (db: Database.Database) => db.exec(ROTATION_DUE_V2) },
  { version: 3, name: "audit log in blocks", up: auditBlocksV3 },
  { version: 4, name: "audit search terms by block, anchored", up: (db: Database.Database) => db.exec(TERMS_BY_BLOCK_V4) },
  { version: 5, name: "time rotation was enabled", up: (db: Database.Database) => db.exec(ROTATION_ENABLED_AT_V5) },
]);

export interface MigrationReport {
  /** user_version before. */
  from: number;
  /** user_version after. */
  to: number;
  /** The migrations applied, in order. */
  applied: Array<{ version: number; name: string }>;
}

/**
 * Throws StoreError ERR_KMS_STORE_FOREIGN unless `db` is an hsmkit KMS store or an empty database
 * (a new store). Only reads: openDatabase calls it before its first change to the file (the switch
 * to WAL), so a file that is not ours is left exactly as it was — its journal mode included.
 */
export function checkStoreFile(db: Database.Database): void {
  const applicationId = db.pragma("application_id", { simple: true }) as number;
  if (applicationId === APPLICATION_ID) return;
  const version = db.pragma("user_version", { simple: true }) as number;
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number };
  if (applicationId !== 0 || version !== 0 || tables.n !== 0) {
    throw new StoreError("ERR_KMS_STORE_FOREIGN", `${db.name} is not an hsmkit KMS store (application_id ${applicationId}, user_version ${version})`);
  }
}

/**
 * Brings `db` to the newest version in `migrations`. Throws StoreError ERR_KMS_STORE_FOREIGN for a
 * database that is not an hsmkit store, ERR_KMS_STORE_SCHEMA_TOO_NEW for one written by a newer
 * hsmkit (never downgrade), and ERR_KMS_STORE_MIGRATION (after rolling that migration back) when
 * a migration fails.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS, now = Date.now()): MigrationReport {
  migrations.forEach((migration, position) => {
    if (migration.version !== position + 1) throw new Error(`migration list out of order at ${migration.version}`);
  });
  checkStoreFile(db);
  const from = db.pragma("user_version", { simple: true }) as number;
  const latest = migrations.length;
  if (from > latest) {
    throw new StoreError("ERR_KMS_STORE_SCHEMA_TOO_NEW",
      `${db.name} is at schema version ${from}, newer than this hsmkit knows (${latest}); use the newer hsmkit that wrote it`);
  }
  const applied: MigrationReport["applied"] = [];
  for (const migration of migrations.slice(from)) {
    db.exec("BEGIN IMMEDIATE");
    try {
      // Re-read inside the write lock: another connection may have migrated meanwhile.
      const current = db.pragma("user_version", { simple: true }) as number;
      if (current >= migration.version) {
        db.exec("COMMIT");
        continue;
      }
      if (current === 0) db.pragma(`application_id = ${APPLICATION_ID}`);
      migration.up(db);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(migration.version, migration.name, now);
      db.pragma(`user_version = ${migration.version}`);
      db.exec("COMMIT");
      applied.push({ version: migration.version, name: migration.name });
    } catch (error) {
      if (db.inTransaction) db.exec("ROLLBACK");
      throw new StoreError("ERR_KMS_STORE_MIGRATION",
        `migration ${migration.version} (${migration.name}) of ${db.name} failed and was rolled back: ${(error as Error).message}`, { cause: error });
    }
  }
  return { from, to: db.pragma("user_version", { simple: true }) as number, applied };
}
