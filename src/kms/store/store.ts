/**
 * The KMS store: the narrow interface the service layer (src/kms/kms.ts) uses, with SQLite
 * (sqlite.ts) as the embedded default. Narrow means: one method per question or change the service
 * needs, no SQL, no transactions and no connections in the interface, so a PostgreSQL
 * implementation can follow for deployments of several KMS nodes.
 *
 * Everything returns a promise, reads included. SQLite answers reads synchronously on the calling
 * thread (a resolved promise costs well under a microsecond); a networked store cannot, and an
 * interface that is async from the start means the service layer never changes when one arrives.
 *
 * Contract of every write:
 * - The returned promise resolves only after the transaction holding the write has committed
 *   durably (SQLite: the COMMIT's write-ahead log frames are on disk). Writes are group-committed:
 *   those submitted while a commit is in progress go into the next transaction together.
 * - A write either happens completely or not at all, and fails with a KmsError carrying Huawei's
 *   code when the data refuses it (KMS.0207 key not found, KMS.1104 duplicate alias, KMS.1105 too
 *   many keys, KMS.0409 too many tags, KMS.2404 too many grants, KMS.2501 no such grant, or the
 *   code a guard names). Other failures (I/O, a closed store) are StoreErrors.
 * - Checks that must not race (quotas, alias uniqueness, guards on the key's state) run inside the
 *   write's transaction, so two concurrent requests cannot both pass them.
 * - `audit` makes the write atomic with its audit record: the record is appended in the same
 *   transaction, with outcome "success" if the write is made, or — if the write fails with a
 *   KmsError — with outcome "failure" and that error's code (the failed write leaves no other
 *   trace). Either way the promise settles after the commit. A store may also record a failure
 *   of another kind (I/O inside the write: KMS.0101); its error then answers true to
 *   failureAudited(), so the caller does not record the request a second time.
 *
 * Isolation: every key-scoped method takes (projectId, keyId) and looks the key up by both. A key of
 * another project is reported exactly as a missing one (undefined from reads, KMS.0207 from writes).
 *
 * Reads see committed data only (a write not yet resolved may or may not be visible).
 */
import type { AuditVerification, VerifyOptions } from "../audit/verify.js";
import type { KmsErrorCode } from "../errors.js";
import type {
  AuditAnchor, AuditCheckpoint, AuditEvent, AuditInput, AuditOutcome, AuditRecord, CredentialRecord, CredentialStatus,
  GrantRecord, KeyPatch, KeyRecord, KeyRef, KeyState, KeyVersionRecord, NewCredential, NewGrant, NewKey, NewKeyVersion,
  NewPrincipal, NewProject, PrincipalRecord, ProjectRecord, Role, RoleRecord, TagRecord, UsageRecord,
} from "../types.js";

const AUDITED = Symbol("hsmkit.kms.store.failureAudited");

/** Marks a write's error whose "failure" audit record the store appended (the contract above). */
export function markFailureAudited(error: Error): Error {
  Object.defineProperty(error, AUDITED, { value: true });
  return error;
}

/** Whether the store appended the audit record of the write that failed with `error`. */
export function failureAudited(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { [AUDITED]?: unknown })[AUDITED] === true;
}

/** Makes a write atomic with its audit record (see the contract above). */
export interface WriteOptions {
  audit?: AuditEvent | undefined;
}

/**
 * Conditions on the key, checked inside the write's transaction before anything changes. The
 * service layer passes its table of Huawei errors for the operation, e.g. disable-key:
 * `{ states: { 3: "KMS.1301", 4: "KMS.0210", 5: … }, defaultKey: "KMS.0211" }`.
 */
export interface KeyGuard {
  /** Fail with this code when the key's current state is a listed one. */
  states?: Partial<Record<KeyState, KmsErrorCode>> | undefined;
  /** Fail with this code when the key is a default key. */
  defaultKey?: KmsErrorCode | undefined;
}

export interface KeyWriteOptions extends WriteOptions {
  guard?: KeyGuard | undefined;
}

export interface AddVersionOptions extends KeyWriteOptions {
  /**
   * Add the version only if the key's revision is still this one, i.e. nothing changed the key
   * since the caller read it and decided a version was due (the rotation sweeper, the seal limit).
   * Otherwise KMS.0101 with no audit record: the caller's premise is gone, no request failed; it
   * reads the key again and decides anew.
   */
  ifRevision?: number | undefined;
}

export interface DestroyKeyOptions extends KeyWriteOptions {
  /**
   * Destroy only if the key's deletion date is at or before this time (ms), checked in the
   * transaction, else KMS.1501: the guard alone cannot tell a key still pending the deletion the
   * sweeper found due from one whose deletion was cancelled and scheduled again since, for later.
   */
  dueBy?: number | undefined;
}

export interface CreateKeyOptions extends WriteOptions {
  /** The first version's material (absent for origin "external": the key starts without material). */
  version?: NewKeyVersion | undefined;
  /**
   * Fail with KMS.1105 when the project already has this many custom keys. Default keys neither
   * count nor are refused (Huawei: they are outside the quota).
   */
  maxCustomKeys?: number | undefined;
  /**
   * When the alias is taken in the project: "fail" (default) with KMS.1104, or "return" the key
   * holding it — for default keys, created on first use by whichever request comes first. When the
   * existing key is returned, nothing is written and no audit record is appended.
   */
  existingAlias?: "fail" | "return" | undefined;
}

/** Marker/limit paging. `marker` is opaque: pass back the previous page's nextMarker. */
export interface PageRequest {
  /** 1..1000, else KMS.1601. */
  limit: number;
  /** Absent: from the start. A marker that is not one of ours fails with KMS.1602. */
  marker?: string | undefined;
}

export interface Page<T> {
  items: T[];
  /** null on the last page. */
  nextMarker: string | null;
  /** Whether more items follow (Huawei "truncated"). */
  truncated: boolean;
  /** Items matching the request in all pages (Huawei "total"). */
  total: number;
}

export interface KeyListRequest extends PageRequest {
  /** Only keys in this state. */
  state?: KeyState | undefined;
}

/** A key together with one version's material: the one read an encrypt or decrypt needs. */
export interface KeyForUse {
  key: KeyRecord;
  /** The requested version (default: the current one); undefined when it does not exist. */
  version: KeyVersionRecord | undefined;
}

export interface KeyStore {
  /** Creates a key (and its first version). KMS.1104 duplicate alias, KMS.1105 over maxCustomKeys. */
  create(key: NewKey, options?: CreateKeyOptions): Promise<KeyRecord>;
  get(projectId: string, keyId: string): Promise<KeyRecord | undefined>;
  getByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined>;
  /** The key and one version of its material in one read (version default: key.currentVersion). */
  getForUse(projectId: string, keyId: string, version?: number): Promise<KeyForUse | undefined>;
  /** Keys of the project in creation order (stable under concurrent creates and deletes). */
  list(projectId: string, request: KeyListRequest): Promise<Page<KeyRecord>>;
  /** Keys of the project; `customOnly`: without default keys (the quota count). */
  count(projectId: string, options?: { customOnly?: boolean }): Promise<number>;
  /** Changes fields; KMS.1104 when the new alias is taken; the guard's code when it refuses. */
  update(projectId: string, keyId: string, patch: KeyPatch, options?: KeyWriteOptions): Promise<KeyRecord>;
  /**
   * Adds the next version (currentVersion + 1) and makes it current. A version added to a key that
   * had one already is a rotation: rotationCount grows and lastRotatedAt is set.
   */
  addVersion(projectId: string, keyId: string, version: NewKeyVersion, options?: AddVersionOptions): Promise<{ key: KeyRecord; version: KeyVersionRecord }>;
  getVersion(projectId: string, keyId: string, version: number): Promise<KeyVersionRecord | undefined>;
  listVersions(projectId: string, keyId: string): Promise<KeyVersionRecord[]>;
  /**
   * Deletes the key with its versions, tags, grants and usage counters (scheduled deletion falling
   * due). The material is overwritten in the database file (secure_delete) and the write-ahead log
   * is truncated after the commit, so the wrapped versions do not linger in either. Returns the key
   * as it was.
   */
  destroy(projectId: string, keyId: string, options?: DestroyKeyOptions): Promise<KeyRecord>;
  /** Keys in state 4 whose deletionDate is at or before `now`, soonest first, across projects. */
  listDueForDeletion(now: number, limit: number): Promise<KeyRef[]>;
  /**
   * Enabled custom keys with rotation on whose next rotation (last rotation, else creation, plus
   * the interval) is at or before `now`, most overdue first, across projects (an index answers it).
   */
  listDueForRotation(now: number, limit: number): Promise<Array<{ projectId: string; keyId: string }>>;
}

export interface TagStore {
  /** Sets tags (adding new keys, replacing values of existing ones); KMS.0409 when the key would have more than maxTagsPerKey (default 10). Returns the key's tags after. */
  put(projectId: string, keyId: string, tags: ReadonlyArray<{ key: string; value: string }>, options?: KeyWriteOptions & { maxTagsPerKey?: number }): Promise<TagRecord[]>;
  /** Removes the named tags; returns how many existed. */
  delete(projectId: string, keyId: string, tagKeys: readonly string[], options?: KeyWriteOptions): Promise<number>;
  /** The key's tags by tag key; KMS.0207 when the key does not exist. */
  list(projectId: string, keyId: string): Promise<TagRecord[]>;
  /** Every tag key used in the project with its values (Huawei GET …/kms/tags). */
  listProject(projectId: string): Promise<Array<{ key: string; values: string[] }>>;
  /** Every tag of every key in the project, by key id (keys without tags absent). */
  listProjectByKey(projectId: string): Promise<Map<string, TagRecord[]>>;
  count(projectId: string, keyId: string): Promise<number>;
}

export interface GrantStore {
  /** Creates a grant (grantId made when absent); KMS.2404 when the key has maxGrantsPerKey (default 100) already. */
  create(grant: NewGrant, options?: KeyWriteOptions & { maxGrantsPerKey?: number }): Promise<GrantRecord>;
  get(projectId: string, keyId: string, grantId: string): Promise<GrantRecord | undefined>;
  /** The key's grants in creation order; KMS.0207 when the key does not exist. */
  list(projectId: string, keyId: string, page: PageRequest): Promise<Page<GrantRecord>>;
  /** Grants in the project that `retiringPrincipal` may retire, in creation order. */
  listRetirable(projectId: string, retiringPrincipal: string, page: PageRequest): Promise<Page<GrantRecord>>;
  /** The grants on the key whose grantee is `granteePrincipal` (enforcement). */
  findForGrantee(projectId: string, keyId: string, granteePrincipal: string): Promise<GrantRecord[]>;
  count(projectId: string, keyId: string): Promise<number>;
  /** The id of the key in the project that holds the grant, or undefined (another project's grant is no grant). */
  keyIdOf(projectId: string, grantId: string): Promise<string | undefined>;
  /**
   * Removes a grant (revoke or retire); KMS.2501 when the project has no such grant, KMS.2502 when
   * another of its keys holds it. Returns it as it was.
   */
  delete(projectId: string, keyId: string, grantId: string, options?: KeyWriteOptions): Promise<GrantRecord>;
}

export interface ProjectStore {
  /** KMS.0308 when the project exists. */
  create(project: NewProject, options?: WriteOptions): Promise<ProjectRecord>;
  get(projectId: string): Promise<ProjectRecord | undefined>;
  list(domainId?: string): Promise<ProjectRecord[]>;
}

export interface PrincipalStore {
  /** KMS.0308 when the principal exists. */
  create(principal: NewPrincipal, options?: WriteOptions): Promise<PrincipalRecord>;
  get(principalId: string): Promise<PrincipalRecord | undefined>;
  /** The principals of an account, oldest first. */
  list(domainId: string): Promise<PrincipalRecord[]>;
  update(principalId: string, patch: { name?: string; disabled?: boolean }, options?: WriteOptions): Promise<PrincipalRecord>;
  /** The SK arrives sealed (secrets.ts sealCredentialSecret); KMS.0308 for an unknown principal or a taken AK. */
  createCredential(credential: NewCredential, options?: WriteOptions): Promise<CredentialRecord>;
  getCredential(accessKey: string): Promise<CredentialRecord | undefined>;
  listCredentials(principalId: string): Promise<CredentialRecord[]>;
  updateCredential(accessKey: string, patch: { status?: CredentialStatus; expiresAt?: number | null; description?: string }, options?: WriteOptions): Promise<CredentialRecord>;
  /** Returns whether it existed. */
  deleteCredential(accessKey: string, options?: WriteOptions): Promise<boolean>;
  /** Idempotent: adding a role held already returns it. KMS.0308 for an unknown principal. */
  addRole(principalId: string, projectId: string, role: Role, options?: WriteOptions): Promise<RoleRecord>;
  /** Returns whether it was held. */
  removeRole(principalId: string, projectId: string, role: Role, options?: WriteOptions): Promise<boolean>;
  /** The principal's roles, in one project or all. */
  listRoles(principalId: string, projectId?: string): Promise<RoleRecord[]>;
}

/**
 * Per-key usage counters: how often each action succeeded on each key, and when last. They are
 * derived from the audit log — every committed audit record with outcome "success" and a key id
 * counts — so they cost no write of their own per request: the counts are accumulated in memory and
 * written in batches (every `usageFlushMs`), with the audit seq they run to. A crash loses no count:
 * on open the records after that seq are counted again.
 */
export interface UsageStore {
  /** The key's counters (written and not yet written), by action. */
  get(projectId: string, keyId: string): Promise<UsageRecord[]>;
  /** Writes the accumulated counts now. */
  flush(): Promise<void>;
}

export interface AuditQuery {
  projectId?: string | undefined;
  keyId?: string | undefined;
  action?: string | undefined;
  outcome?: AuditOutcome | undefined;
  /** time >= from (ms). */
  from?: number | undefined;
  /** time < to (ms). */
  to?: number | undefined;
  /** Records after this seq (paging: pass the previous page's nextSeq). */
  afterSeq?: number | undefined;
  /**
   * Records up to this seq only (paging: pass the first page's throughSeq). Without it, the log's
   * end when the page is read. Every query is itself audited, so a paging that let each page
   * reach the log's new end would meet the records of its own earlier pages, and with a small
   * limit never finish.
   */
  throughSeq?: number | undefined;
  /** 1..1000, default 100. */
  limit?: number | undefined;
}

export interface AuditPage {
  records: AuditRecord[];
  /** afterSeq for the next page; null when there is none. */
  nextSeq: number | null;
  /** The end of the log this paging reads to: throughSeq for the next pages. */
  throughSeq: number;
}

export interface AuditLog {
  /** This log's identity (16 bytes), made when the store was created; part of every chain and MAC. */
  readonly logId: Buffer;
  /** Appends one record (outcome given by the caller: denied requests, crypto operations). Resolves after its commit. */
  append(input: AuditInput): Promise<AuditRecord>;
  /**
   * Appends one record like append(), for the request path: resolves (with nothing) after the
   * commit of the group holding it, which many records share (the record itself is not rebuilt
   * for the caller). Rejects with TypeError/RangeError, nothing appended, for a field that cannot
   * be encoded.
   */
  record(event: AuditEvent, outcome: AuditOutcome, errorCode: string | null): Promise<void>;
  /** Records matching every given filter, in seq order. */
  query(filter: AuditQuery): Promise<AuditPage>;
  /** The last committed record's seq and chain value (seq 0 and the genesis value for an empty log). */
  head(): Promise<{ seq: number; hash: Buffer }>;
  /** Writes a checkpoint now (reason "manual") if records were added since the last; returns the newest checkpoint. */
  checkpoint(): Promise<AuditCheckpoint | null>;
  /** The newest checkpoint as an anchor to keep outside the database (call checkpoint() first to cover everything). */
  anchor(): Promise<AuditAnchor | null>;
  /** Checks the whole log (chain, checkpoints, optional anchor); names the first bad record. */
  verify(options?: VerifyOptions): Promise<AuditVerification>;
  /**
   * Writes the log as JSON lines (audit/export.ts) to `out`: the whole log when `filter` is absent
   * (verifiable on its own), else the matching records. Resolves with the number of records.
   */
  export(out: AuditSink, filter?: Omit<AuditQuery, "afterSeq" | "limit">): Promise<number>;
}

/** Where export lines go: a writable stream (newlines added, backpressure honoured) or a function per line. */
export type AuditSink = NodeJS.WritableStream | ((line: string) => void | Promise<void>);

export interface StoreStats {
  /** Transactions committed by the group commit. */
  transactions: number;
  /** Writes (operations) in them. */
  writes: number;
  /** Transactions that failed as a whole (every write in them rejected). */
  failedTransactions: number;
  /** The most writes one transaction held. */
  largestBatch: number;
  /** Time spent running transactions in the writer, ms (COMMIT's fsync included). */
  commitMs: number;
  /** Writes waiting for a transaction now. */
  queued: number;
}

/** The store as the service layer sees it. */
export interface KmsStore {
  readonly projects: ProjectStore;
  readonly keys: KeyStore;
  readonly tags: TagStore;
  readonly grants: GrantStore;
  readonly principals: PrincipalStore;
  readonly usage: UsageStore;
  readonly audit: AuditLog;
  /** Resolves when everything submitted before the call has committed. */
  flush(): Promise<void>;
  /** Writes what is pending (usage counts, a closing checkpoint), waits for the commits and closes. Idempotent. */
  close(): Promise<void>;
  stats(): StoreStats;
  /**
   * Why every write will fail until the store is reopened (its write-ahead log could not be
   * synced, its writer thread died), or undefined: for health checks, which must not report a
   * service as up that can acknowledge nothing.
   */
  unwritable(): string | undefined;
}
