/**
 * SQLite rows and the records they hold: the one place that knows both the column names and the
 * record fields. Shared by the reader (main thread) and the writer (its own thread).
 */
import type {
  AuditCheckpoint, AuditOutcome, AuditRecord, CheckpointReason, CredentialRecord, CredentialStatus, GranteePrincipalType,
  GrantOperation, GrantRecord, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, KeyVersionRecord, PrincipalRecord,
  ProjectRecord, Role, RoleRecord, TagRecord,
} from "../types.js";
import { KmsError } from "../errors.js";

/** Buffers cross a worker boundary as plain Uint8Arrays; make them Buffers again (no copy). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface KeyRow {
  seq: number;
  project_id: string;
  key_id: string;
  domain_id: string;
  alias: string;
  description: string;
  key_spec: string;
  key_usage: string;
  origin: string;
  state: number;
  default_key: number;
  created_at: number;
  updated_at: number;
  deletion_date: number | null;
  rotation_enabled: number;
  rotation_interval_days: number;
  last_rotated_at: number | null;
  rotation_count: number;
  current_version: number;
  revision: number;
  rotation_enabled_at: number | null;
}

/**
 * The keys table's columns in a fixed order, for reads in better-sqlite3's raw (array) mode:
 * building a JavaScript object per row by column name costs more than the query itself, and keys
 * are read on every cryptographic request.
 */
export const KEY_COLUMNS = [
  "seq", "project_id", "key_id", "domain_id", "alias", "description", "key_spec", "key_usage", "origin", "state", "default_key",
  "created_at", "updated_at", "deletion_date", "rotation_enabled", "rotation_interval_days", "last_rotated_at", "rotation_count",
  "current_version", "revision", "rotation_enabled_at",
] as const satisfies ReadonlyArray<keyof KeyRow>;

export const KEY_SELECT = KEY_COLUMNS.join(", ");

/** A key row read in raw mode with KEY_SELECT. */
export type KeyRaw = [
  seq: number, project_id: string, key_id: string, domain_id: string, alias: string, description: string, key_spec: string,
  key_usage: string, origin: string, state: number, default_key: number, created_at: number, updated_at: number,
  deletion_date: number | null, rotation_enabled: number, rotation_interval_days: number, last_rotated_at: number | null,
  rotation_count: number, current_version: number, revision: number, rotation_enabled_at: number | null,
];

export function keyFromRaw(row: KeyRaw): KeyRecord {
  return {
    projectId: row[1],
    keyId: row[2],
    domainId: row[3],
    alias: row[4],
    description: row[5],
    keySpec: row[6] as KeySpec,
    keyUsage: row[7] as KeyUsage,
    origin: row[8] as KeyOrigin,
    state: row[9] as KeyState,
    defaultKey: row[10] === 1,
    createdAt: row[11],
    updatedAt: row[12],
    deletionDate: row[13],
    rotationEnabled: row[14] === 1,
    rotationIntervalDays: row[15],
    lastRotatedAt: row[16],
    rotationCount: row[17],
    currentVersion: row[18],
    revision: row[19],
    rotationEnabledAt: row[20],
  };
}

export function keyFromRow(row: KeyRow): KeyRecord {
  return {
    projectId: row.project_id,
    keyId: row.key_id,
    domainId: row.domain_id,
    alias: row.alias,
    description: row.description,
    keySpec: row.key_spec as KeySpec,
    keyUsage: row.key_usage as KeyUsage,
    origin: row.origin as KeyOrigin,
    state: row.state as KeyState,
    defaultKey: row.default_key === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletionDate: row.deletion_date,
    rotationEnabled: row.rotation_enabled === 1,
    rotationIntervalDays: row.rotation_interval_days,
    lastRotatedAt: row.last_rotated_at,
    rotationCount: row.rotation_count,
    currentVersion: row.current_version,
    revision: row.revision,
    rotationEnabledAt: row.rotation_enabled_at,
  };
}

export interface VersionRow {
  version: number;
  material: Buffer;
  created_at: number;
}

export function versionFromRow(key: { projectId: string; keyId: string }, row: VersionRow): KeyVersionRecord {
  return { projectId: key.projectId, keyId: key.keyId, version: row.version, material: row.material, createdAt: row.created_at };
}

export interface TagRow {
  tag_key: string;
  tag_value: string;
}

export function tagFromRow(key: { projectId: string; keyId: string }, row: TagRow): TagRecord {
  return { projectId: key.projectId, keyId: key.keyId, key: row.tag_key, value: row.tag_value };
}

/** A grant row joined with its key's project_id and key_id. */
export interface GrantRow {
  seq: number;
  grant_id: string;
  project_id: string;
  key_id: string;
  name: string | null;
  grantee_principal: string;
  grantee_type: string;
  operations: string;
  retiring_principal: string | null;
  creator: string | null;
  created_at: number;
}

export function grantFromRow(row: GrantRow): GrantRecord {
  return {
    projectId: row.project_id,
    keyId: row.key_id,
    grantId: row.grant_id,
    name: row.name,
    granteePrincipal: row.grantee_principal,
    granteePrincipalType: row.grantee_type as GranteePrincipalType,
    operations: JSON.parse(row.operations) as GrantOperation[],
    retiringPrincipal: row.retiring_principal,
    creator: row.creator,
    createdAt: row.created_at,
  };
}

export interface ProjectRow {
  project_id: string;
  domain_id: string;
  name: string;
  created_at: number;
}

export function projectFromRow(row: ProjectRow): ProjectRecord {
  return { projectId: row.project_id, domainId: row.domain_id, name: row.name, createdAt: row.created_at };
}

export interface PrincipalRow {
  principal_id: string;
  domain_id: string;
  name: string;
  disabled: number;
  created_at: number;
}

export function principalFromRow(row: PrincipalRow): PrincipalRecord {
  return { principalId: row.principal_id, domainId: row.domain_id, name: row.name, disabled: row.disabled === 1, createdAt: row.created_at };
}

export interface CredentialRow {
  access_key: string;
  principal_id: string;
  sealer: string;
  secret: Buffer;
  status: string;
  created_at: number;
  expires_at: number | null;
  description: string;
}

export function credentialFromRow(row: CredentialRow): CredentialRecord {
  return {
    accessKey: row.access_key,
    principalId: row.principal_id,
    secret: { sealer: row.sealer, blob: row.secret },
    status: row.status as CredentialStatus,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    description: row.description,
  };
}

export interface RoleRow {
  principal_id: string;
  project_id: string;
  role: string;
  created_at: number;
}

export function roleFromRow(row: RoleRow): RoleRecord {
  return { principalId: row.principal_id, projectId: row.project_id, role: row.role as Role, createdAt: row.created_at };
}

export interface AuditRow {
  seq: number;
  time: number;
  request_id: string;
  project_id: string | null;
  principal_id: string | null;
  source: string;
  action: string;
  key_id: string | null;
  outcome: string;
  error_code: string | null;
  detail: string | null;
  hash: Buffer;
}

export function auditFromRow(row: AuditRow): AuditRecord {
  return {
    seq: row.seq,
    time: row.time,
    requestId: row.request_id,
    projectId: row.project_id,
    principalId: row.principal_id,
    source: row.source,
    action: row.action,
    keyId: row.key_id,
    outcome: row.outcome as AuditOutcome,
    errorCode: row.error_code,
    detail: row.detail,
    hash: row.hash,
  };
}

export interface CheckpointRow {
  idx: number;
  seq: number;
  hash: Buffer;
  time: number;
  reason: string;
  mac: Buffer;
}

export function checkpointFromRow(row: CheckpointRow): AuditCheckpoint {
  return { index: row.idx, seq: row.seq, hash: row.hash, time: row.time, reason: row.reason as CheckpointReason, mac: row.mac };
}

/** Makes a record's Buffers Buffers again after a trip from the writer thread (Uint8Array → Buffer). */
export function reviveCheckpoint(checkpoint: AuditCheckpoint): AuditCheckpoint {
  return { ...checkpoint, hash: asBuffer(checkpoint.hash), mac: asBuffer(checkpoint.mac) };
}

export function reviveVersion(version: KeyVersionRecord): KeyVersionRecord {
  return { ...version, material: asBuffer(version.material) };
}

export function reviveCredential(credential: CredentialRecord): CredentialRecord {
  return { ...credential, secret: { sealer: credential.secret.sealer, blob: asBuffer(credential.secret.blob) } };
}

/** Largest page (list-keys, list-grants, audit query). */
export const MAX_PAGE = 1000;

/** The id of the project's key that holds grant ?1 (?2: the project): reads and writes ask it alike. */
export const GRANT_KEY_ID_SQL = "SELECT k.key_id FROM grants g JOIN keys k ON k.seq = g.key_seq WHERE g.grant_id = ? AND k.project_id = ?";

/** The seq after which a page starts; KMS.1602 for a marker that is not one of ours. */
export function parseMarker(marker: string | undefined): number {
  if (marker === undefined || marker === "") return 0;
  if (typeof marker !== "string" || !/^(?:0|[1-9][0-9]{0,14})$/.test(marker)) throw new KmsError("KMS.1602", `marker ${JSON.stringify(marker)} is not a page marker`);
  return Number(marker);
}

/**
 * The audit query's paging marker (the previous page's nextSeq): a record seq, or 0 for the start;
 * KMS.1602 for anything else, as parseMarker refuses a marker that is not one of ours.
 */
export function checkAfterSeq(afterSeq: number | undefined): number {
  if (afterSeq === undefined) return 0;
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new KmsError("KMS.1602", `afterSeq ${String(afterSeq)} is not an audit record seq`);
  return afterSeq;
}

/** The audit query's bound (the first page's throughSeq), if given: a record seq, or 0; KMS.1602 for anything else. */
export function checkThroughSeq(throughSeq: number | undefined): number | undefined {
  if (throughSeq === undefined) return undefined;
  if (!Number.isSafeInteger(throughSeq) || throughSeq < 0) throw new KmsError("KMS.1602", `throughSeq ${String(throughSeq)} is not an audit record seq`);
  return throughSeq;
}

/**
 * An audit query's time bounds (`from`, `to`): ms since the epoch, non-negative safe integers, as
 * the HTTP schema admits them; KMS.0308 otherwise (the code the server gives those fields). A NaN
 * compared false with every time and gave an empty page, as if there were no records.
 */
export function checkTimeBounds(filter: { from?: number | undefined; to?: number | undefined }): void {
  for (const name of ["from", "to"] as const) {
    const bound = filter[name];
    if (bound !== undefined && (!Number.isSafeInteger(bound) || bound < 0)) {
      throw new KmsError("KMS.0308", `${name} ${String(bound)} is not a time in ms since the epoch`);
    }
  }
}

/** KMS.1601 unless 1 <= limit <= MAX_PAGE. */
export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw new KmsError("KMS.1601", `limit ${String(limit)} is not in 1..${MAX_PAGE}`);
  return limit;
}
