/**
 * The SQLite store's reads, on a read-only connection of the calling thread. WAL lets it read the
 * last committed state while the writer commits; each statement sees one consistent snapshot.
 * Whole-log passes (verify, export) run in a read transaction on a connection of their own, so
 * they see one snapshot from the first record to the last checkpoint without holding up the
 * reads that serve requests.
 */
import type Database from "better-sqlite3";
import { once } from "node:events";
import { setImmediate as nextTurn } from "node:timers/promises";
import { checkpointLine, headerLine, recordLine } from "../audit/export.js";
import type { AuditMac } from "../audit/checkpoints.js";
import { MalformedBlock } from "../audit/blocks.js";
import { ChainVerifier, type AuditVerification, type VerifyOptions } from "../audit/verify.js";
import { AuditBlockReader } from "./audit-reads.js";
import { ROTATION_DUE_AT } from "./migrations.js";
import { KmsError } from "../errors.js";
import type {
  AuditCheckpoint, AuditRecord, CredentialRecord, GrantRecord, KeyRecord, KeyRef, KeyVersionRecord, PrincipalRecord,
  ProjectRecord, RoleRecord, TagRecord, UsageRecord,
} from "../types.js";
import {
  checkAfterSeq, checkThroughSeq, checkLimit, checkTimeBounds, checkpointFromRow, credentialFromRow, GRANT_KEY_ID_SQL, grantFromRow, KEY_COLUMNS, KEY_SELECT, keyFromRaw, parseMarker,
  principalFromRow, projectFromRow, roleFromRow, tagFromRow, versionFromRow, type CheckpointRow,
  type CredentialRow, type GrantRow, type KeyRaw, type PrincipalRow, type ProjectRow, type RoleRow, type TagRow, type VersionRow,
} from "./rows.js";
import type { AuditPage, AuditQuery, AuditSink, KeyForUse, KeyListRequest, Page, PageRequest } from "./store.js";

const GRANT_COLUMNS = "g.*, k.project_id, k.key_id";

export class SqliteReader {
  readonly #db: Database.Database;
  readonly #s;
  readonly #audit: AuditBlockReader;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#audit = new AuditBlockReader(db);
    const prepare = (sql: string): Database.Statement => db.prepare(sql);
    this.#s = {
      key: prepare(`SELECT ${KEY_SELECT} FROM keys WHERE project_id = ? AND key_id = ?`).raw(),
      // The key and one version in one statement (the read behind every encrypt and decrypt).
      keyForUse: prepare(`SELECT ${KEY_COLUMNS.map((column) => `k.${column}`).join(", ")}, v.version, v.material, v.created_at
        FROM keys k LEFT JOIN key_versions v ON v.key_seq = k.seq AND v.version = coalesce(?, k.current_version)
        WHERE k.project_id = ? AND k.key_id = ?`).raw(),
      keyByAlias: prepare(`SELECT ${KEY_SELECT} FROM keys WHERE project_id = ? AND alias = ?`).raw(),
      keysPage: prepare(`SELECT ${KEY_SELECT} FROM keys WHERE project_id = ? AND seq > ? ORDER BY seq LIMIT ?`).raw(),
      keysPageByState: prepare(`SELECT ${KEY_SELECT} FROM keys WHERE project_id = ? AND state = ? AND seq > ? ORDER BY seq LIMIT ?`).raw(),
      countKeys: prepare("SELECT count(*) FROM keys WHERE project_id = ?").pluck(),
      countKeysByState: prepare("SELECT count(*) FROM keys WHERE project_id = ? AND state = ?").pluck(),
      countCustom: prepare("SELECT count(*) FROM keys WHERE project_id = ? AND default_key = 0").pluck(),
      versions: prepare("SELECT version, material, created_at FROM key_versions WHERE key_seq = ? ORDER BY version"),
      due: prepare("SELECT project_id, key_id, deletion_date FROM keys WHERE state = 4 AND deletion_date <= ? ORDER BY deletion_date, seq LIMIT ?"),
      // The expression is the one indexed by migration 5 (keys_rotation_due), word for word.
      dueRotation: prepare(`SELECT project_id, key_id FROM keys
        WHERE state = 2 AND rotation_enabled = 1 AND default_key = 0
          AND (${ROTATION_DUE_AT}) <= ?
        ORDER BY (${ROTATION_DUE_AT}) LIMIT ?`),
      tags: prepare("SELECT tag_key, tag_value FROM tags WHERE key_seq = ? ORDER BY tag_key"),
      countTags: prepare("SELECT count(*) FROM tags WHERE key_seq = ?").pluck(),
      projectTagsByKey: prepare(`SELECT k.key_id, t.tag_key, t.tag_value FROM tags t JOIN keys k ON k.seq = t.key_seq
        WHERE k.project_id = ? ORDER BY t.key_seq, t.tag_key`).raw(),
      projectTags: prepare(`SELECT t.tag_key, t.tag_value FROM tags t JOIN keys k ON k.seq = t.key_seq
        WHERE k.project_id = ? GROUP BY t.tag_key, t.tag_value ORDER BY t.tag_key, t.tag_value`),
      grant: prepare(`SELECT ${GRANT_COLUMNS} FROM grants g JOIN keys k ON k.seq = g.key_seq WHERE g.key_seq = ? AND g.grant_id = ?`),
      grantKeyId: prepare(GRANT_KEY_ID_SQL).pluck(),
      grantsPage: prepare(`SELECT ${GRANT_COLUMNS} FROM grants g JOIN keys k ON k.seq = g.key_seq WHERE g.key_seq = ? AND g.seq > ? ORDER BY g.seq LIMIT ?`),
      countGrants: prepare("SELECT count(*) FROM grants WHERE key_seq = ?").pluck(),
      retirablePage: prepare(`SELECT ${GRANT_COLUMNS} FROM grants g JOIN keys k ON k.seq = g.key_seq
        WHERE g.retiring_principal = ? AND k.project_id = ? AND g.seq > ? ORDER BY g.seq LIMIT ?`),
      countRetirable: prepare(`SELECT count(*) FROM grants g JOIN keys k ON k.seq = g.key_seq WHERE g.retiring_principal = ? AND k.project_id = ?`).pluck(),
      grantsForGrantee: prepare(`SELECT ${GRANT_COLUMNS} FROM grants g JOIN keys k ON k.seq = g.key_seq
        WHERE g.key_seq = ? AND g.grantee_principal = ? ORDER BY g.seq`),
      usage: prepare("SELECT action, count, last_used_at FROM key_usage WHERE key_seq = ? ORDER BY action"),
      usageSeq: prepare("SELECT value FROM meta WHERE name = 'usage_seq'"),
      project: prepare("SELECT * FROM projects WHERE project_id = ?"),
      projects: prepare("SELECT * FROM projects ORDER BY project_id"),
      projectsOfDomain: prepare("SELECT * FROM projects WHERE domain_id = ? ORDER BY project_id"),
      principal: prepare("SELECT * FROM principals WHERE principal_id = ?"),
      principalsOfDomain: prepare("SELECT * FROM principals WHERE domain_id = ? ORDER BY created_at, principal_id"),
      credential: prepare("SELECT * FROM credentials WHERE access_key = ?"),
      credentials: prepare("SELECT * FROM credentials WHERE principal_id = ? ORDER BY created_at, access_key"),
      roles: prepare("SELECT * FROM roles WHERE principal_id = ? ORDER BY project_id, role"),
      rolesInProject: prepare("SELECT * FROM roles WHERE principal_id = ? AND project_id = ? ORDER BY role"),
    };
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  // Keys --------------------------------------------------------------------------------------

  /** The key's row (raw: KEY_COLUMNS order). */
  #keyRow(projectId: string, keyId: string): KeyRaw | undefined {
    return this.#s.key.get(projectId, keyId) as KeyRaw | undefined;
  }

  /** The key's internal seq, or KMS.0207. */
  #existingKey(projectId: string, keyId: string): { seq: number } {
    const row = this.#keyRow(projectId, keyId);
    if (row === undefined) throw new KmsError("KMS.0207");
    return { seq: row[0] };
  }

  key(projectId: string, keyId: string): KeyRecord | undefined {
    const row = this.#keyRow(projectId, keyId);
    return row === undefined ? undefined : keyFromRaw(row);
  }

  keyByAlias(projectId: string, alias: string): KeyRecord | undefined {
    const row = this.#s.keyByAlias.get(projectId, alias) as KeyRaw | undefined;
    return row === undefined ? undefined : keyFromRaw(row);
  }

  keyForUse(projectId: string, keyId: string, version?: number): KeyForUse | undefined {
    const row = this.#s.keyForUse.get(version ?? null, projectId, keyId) as [...KeyRaw, number | null, Buffer | null, number | null] | undefined;
    if (row === undefined) return undefined;
    const key = keyFromRaw(row as unknown as KeyRaw);
    const [number, material, createdAt] = row.slice(KEY_COLUMNS.length) as [number | null, Buffer | null, number | null];
    return { key, version: number === null ? undefined : { projectId, keyId, version: number, material: material!, createdAt: createdAt! } };
  }

  keys(projectId: string, request: KeyListRequest): Page<KeyRecord> {
    const limit = checkLimit(request.limit);
    const after = parseMarker(request.marker);
    const rows = (request.state === undefined
      ? this.#s.keysPage.all(projectId, after, limit + 1)
      : this.#s.keysPageByState.all(projectId, request.state, after, limit + 1)) as KeyRaw[];
    const total = (request.state === undefined ? this.#s.countKeys.get(projectId) : this.#s.countKeysByState.get(projectId, request.state)) as number;
    return page(rows, limit, total, (row) => row[0], keyFromRaw);
  }

  countKeys(projectId: string, customOnly: boolean): number {
    return (customOnly ? this.#s.countCustom.get(projectId) : this.#s.countKeys.get(projectId)) as number;
  }

  version(projectId: string, keyId: string, version: number): KeyVersionRecord | undefined {
    return this.keyForUse(projectId, keyId, version)?.version;
  }

  versions(projectId: string, keyId: string): KeyVersionRecord[] {
    const row = this.#keyRow(projectId, keyId);
    if (row === undefined) return [];
    return (this.#s.versions.all(row[0]) as VersionRow[]).map((versionRow) => versionFromRow({ projectId, keyId }, versionRow));
  }

  dueForRotation(now: number, limit: number): Array<{ projectId: string; keyId: string }> {
    const rows = this.#s.dueRotation.all(now, checkLimit(limit)) as Array<{ project_id: string; key_id: string }>;
    return rows.map((row) => ({ projectId: row.project_id, keyId: row.key_id }));
  }

  dueForDeletion(now: number, limit: number): KeyRef[] {
    const rows = this.#s.due.all(now, checkLimit(limit)) as Array<{ project_id: string; key_id: string; deletion_date: number }>;
    return rows.map((row) => ({ projectId: row.project_id, keyId: row.key_id, deletionDate: row.deletion_date }));
  }

  // Tags, grants, usage -----------------------------------------------------------------------

  tags(projectId: string, keyId: string): TagRecord[] {
    const row = this.#existingKey(projectId, keyId);
    return (this.#s.tags.all(row.seq) as TagRow[]).map((tag) => tagFromRow({ projectId, keyId }, tag));
  }

  countTags(projectId: string, keyId: string): number {
    return this.#s.countTags.get(this.#existingKey(projectId, keyId).seq) as number;
  }

  projectTags(projectId: string): Array<{ key: string; values: string[] }> {
    const result: Array<{ key: string; values: string[] }> = [];
    for (const row of this.#s.projectTags.all(projectId) as TagRow[]) {
      const last = result.at(-1);
      if (last?.key === row.tag_key) last.values.push(row.tag_value);
      else result.push({ key: row.tag_key, values: [row.tag_value] });
    }
    return result;
  }

  projectTagsByKey(projectId: string): Map<string, TagRecord[]> {
    const result = new Map<string, TagRecord[]>();
    for (const [keyId, key, value] of this.#s.projectTagsByKey.all(projectId) as Array<[string, string, string]>) {
      let tags = result.get(keyId);
      if (tags === undefined) result.set(keyId, (tags = []));
      tags.push({ projectId, keyId, key, value });
    }
    return result;
  }

  grant(projectId: string, keyId: string, grantId: string): GrantRecord | undefined {
    const row = this.#keyRow(projectId, keyId);
    if (row === undefined) return undefined;
    const grant = this.#s.grant.get(row[0], grantId) as GrantRow | undefined;
    return grant === undefined ? undefined : grantFromRow(grant);
  }

  grantKeyId(projectId: string, grantId: string): string | undefined {
    return this.#s.grantKeyId.get(grantId, projectId) as string | undefined;
  }

  grants(projectId: string, keyId: string, request: PageRequest): Page<GrantRecord> {
    const limit = checkLimit(request.limit);
    const after = parseMarker(request.marker);
    const key = this.#existingKey(projectId, keyId);
    const rows = this.#s.grantsPage.all(key.seq, after, limit + 1) as GrantRow[];
    return page(rows, limit, this.#s.countGrants.get(key.seq) as number, (row) => row.seq, grantFromRow);
  }

  retirableGrants(projectId: string, retiringPrincipal: string, request: PageRequest): Page<GrantRecord> {
    const limit = checkLimit(request.limit);
    const after = parseMarker(request.marker);
    const rows = this.#s.retirablePage.all(retiringPrincipal, projectId, after, limit + 1) as GrantRow[];
    return page(rows, limit, this.#s.countRetirable.get(retiringPrincipal, projectId) as number, (row) => row.seq, grantFromRow);
  }

  grantsForGrantee(projectId: string, keyId: string, granteePrincipal: string): GrantRecord[] {
    const row = this.#keyRow(projectId, keyId);
    if (row === undefined) return [];
    return (this.#s.grantsForGrantee.all(row[0], granteePrincipal) as GrantRow[]).map(grantFromRow);
  }

  countGrants(projectId: string, keyId: string): number {
    return this.#s.countGrants.get(this.#existingKey(projectId, keyId).seq) as number;
  }

  /**
   * Written usage counters of the key, and the audit seq they run to (`usage_seq`), read in one
   * snapshot; undefined when the key does not exist. The seq tells the caller whether a usage write
   * it has in flight is already among them (the writer may have committed it a moment before the
   * caller hears so).
   */
  usage(projectId: string, keyId: string): { records: UsageRecord[]; throughSeq: number } | undefined {
    return this.#db.transaction(() => {
      const row = this.#keyRow(projectId, keyId);
      if (row === undefined) return undefined;
      const rows = this.#s.usage.all(row[0]) as Array<{ action: string; count: number; last_used_at: number }>;
      const throughSeq = Number((this.#s.usageSeq.get() as { value: unknown } | undefined)?.value ?? 0);
      return { records: rows.map((usage) => ({ projectId, keyId, action: usage.action, count: usage.count, lastUsedAt: usage.last_used_at })), throughSeq };
    })();
  }

  // Projects, principals ----------------------------------------------------------------------

  project(projectId: string): ProjectRecord | undefined {
    const row = this.#s.project.get(projectId) as ProjectRow | undefined;
    return row === undefined ? undefined : projectFromRow(row);
  }

  projects(domainId?: string): ProjectRecord[] {
    const rows = (domainId === undefined ? this.#s.projects.all() : this.#s.projectsOfDomain.all(domainId)) as ProjectRow[];
    return rows.map(projectFromRow);
  }

  principal(principalId: string): PrincipalRecord | undefined {
    const row = this.#s.principal.get(principalId) as PrincipalRow | undefined;
    return row === undefined ? undefined : principalFromRow(row);
  }

  principalsOf(domainId: string): PrincipalRecord[] {
    return (this.#s.principalsOfDomain.all(domainId) as PrincipalRow[]).map(principalFromRow);
  }

  credential(accessKey: string): CredentialRecord | undefined {
    const row = this.#s.credential.get(accessKey) as CredentialRow | undefined;
    return row === undefined ? undefined : credentialFromRow(row);
  }

  credentials(principalId: string): CredentialRecord[] {
    return (this.#s.credentials.all(principalId) as CredentialRow[]).map(credentialFromRow);
  }

  roles(principalId: string, projectId?: string): RoleRecord[] {
    const rows = (projectId === undefined ? this.#s.roles.all(principalId) : this.#s.rolesInProject.all(principalId, projectId)) as RoleRow[];
    return rows.map(roleFromRow);
  }

  // Audit -------------------------------------------------------------------------------------

  auditQuery(filter: AuditQuery): AuditPage {
    const limit = filter.limit === undefined ? 100 : checkLimit(filter.limit);
    const afterSeq = checkAfterSeq(filter.afterSeq);
    const bound = checkThroughSeq(filter.throughSeq);
    checkTimeBounds(filter);
    const records: AuditRecord[] = [];
    let more = false;
    let throughSeq = 0;
    // One snapshot for the page, however many blocks it reads.
    this.#db.transaction(() => {
      throughSeq = bound ?? this.#audit.headSeq();
      for (const record of this.#audit.records({ ...filter, afterSeq })) {
        if (record.seq > throughSeq) break;
        if (records.length === limit) {
          more = true;
          break;
        }
        records.push(record);
      }
    })();
    return { records, nextSeq: more ? records.at(-1)!.seq : null, throughSeq };
  }

  /** Audit records after `afterSeq` in seq order (the open-time checks). */
  auditAfter(afterSeq: number): IterableIterator<AuditRecord> {
    return this.#audit.records({ afterSeq });
  }

  auditRecord(seq: number): AuditRecord | undefined {
    return this.#audit.record(seq);
  }

  checkpoints(): AuditCheckpoint[] {
    return (this.#db.prepare("SELECT * FROM audit_checkpoints ORDER BY idx").all() as CheckpointRow[]).map(checkpointFromRow);
  }
}

function page<Row, T>(rows: Row[], limit: number, total: number, seqOf: (row: Row) => number, map: (row: Row) => T): Page<T> {
  const truncated = rows.length > limit;
  const kept = truncated ? rows.slice(0, limit) : rows;
  return { items: kept.map(map), nextMarker: truncated ? String(seqOf(kept.at(-1)!)) : null, truncated, total };
}

const CHUNK = 4096;

/**
 * Runs `pass` over one snapshot of the audit log on `db` (a connection for this pass alone): the
 * checkpoints, then the records in seq order, read in chunks with a turn of the event loop between
 * them so a long log does not stall the process.
 */
async function withAuditSnapshot<T>(
  db: Database.Database,
  filter: Omit<AuditQuery, "limit" | "afterSeq"> | undefined,
  pass: (checkpoints: AuditCheckpoint[], records: () => AsyncGenerator<AuditRecord[]>) => Promise<T>,
): Promise<T> {
  db.exec("BEGIN");
  try {
    const checkpoints = (db.prepare("SELECT * FROM audit_checkpoints ORDER BY idx").all() as CheckpointRow[]).map(checkpointFromRow);
    const records = new AuditBlockReader(db).records(filter);
    async function* chunks(): AsyncGenerator<AuditRecord[]> {
      for (;;) {
        const chunk: AuditRecord[] = [];
        try {
          for (let next = records.next(); !next.done; next = records.next()) {
            chunk.push(next.value);
            if (chunk.length === CHUNK) break;
          }
        } catch (error) {
          // The records before a block that cannot be read are still the pass's.
          if (chunk.length > 0) yield chunk;
          throw error;
        }
        if (chunk.length === 0) return;
        yield chunk;
        if (chunk.length < CHUNK) return;
        await nextTurn();
      }
    }
    return await pass(checkpoints, chunks);
  } finally {
    if (db.inTransaction) db.exec("COMMIT");
  }
}

/** Verifies the whole audit log in `db` (see audit/verify.ts). */
export async function verifyAuditLog(db: Database.Database, logId: Buffer, mac: AuditMac, options: VerifyOptions = {}): Promise<AuditVerification> {
  return withAuditSnapshot(db, undefined, async (checkpoints, chunks) => {
    const verifier = new ChainVerifier(logId, mac, checkpoints, options);
    try {
      outer: for await (const chunk of chunks()) {
        for (const record of chunk) if (!verifier.push(record)) break outer;
      }
    } catch (error) {
      if (!(error instanceof MalformedBlock)) throw error;
      verifier.malformed(error.message);
    }
    return verifier.finish();
  });
}

/** Writes the audit log in `db` as JSON lines (audit/export.ts); returns the number of records. */
export async function exportAuditLog(db: Database.Database, logId: Buffer, sink: AuditSink, filter?: Omit<AuditQuery, "afterSeq" | "limit">): Promise<number> {
  if (filter !== undefined) checkTimeBounds(filter);
  const complete = filter === undefined || Object.values(filter).every((value) => value === undefined);
  const write = lineWriter(sink);
  return withAuditSnapshot(db, complete ? undefined : filter, async (checkpoints, chunks) => {
    await write(headerLine(logId, complete));
    if (complete) for (const checkpoint of checkpoints) await write(checkpointLine(checkpoint));
    let count = 0;
    for await (const chunk of chunks()) {
      for (const record of chunk) {
        await write(recordLine(record));
        count++;
      }
    }
    return count;
  });
}

function lineWriter(sink: AuditSink): (line: string) => Promise<void> {
  if (typeof sink === "function") return async (line) => sink(line);
  return async (line) => {
    if (!sink.write(line + "\n")) await once(sink, "drain");
  };
}
