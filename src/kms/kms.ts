/**
 * The key management service as a library: `import { Kms } from "hsmkit"`. The HTTP server and
 * the CLI wrap it; it owns no sockets and no timers.
 *
 *     const kms = await Kms.open({ directory: ".hsmkit/kms", token: { module, tokenLabel, pin } });
 *     const ctx = { projectId, principalId, requestId, source: "library" };
 *     const { keyId } = await kms.createKey(ctx, { keyAlias: "orders" });
 *     const { cipherText } = await kms.encryptData(ctx, { keyId, plainText: "hello" });
 *
 * Every method takes a RequestContext (access.ts) and a request with Huawei's fields in camelCase
 * (api.ts), and returns Huawei's response fields. Every call is:
 * 1. checked — the principal exists and is enabled; a role in the request's project allows the
 *    operation, or a grant on the key does (access.ts); the key is looked up by (project, key), so
 *    another project's key is missing; the key's state allows the operation (lifecycle.ts);
 * 2. performed — every cryptographic operation in the token, through the backend (backend/);
 *    ciphertexts are blob v1 (envelope/, docs/ciphertext-format.md);
 * 3. audited — one record per request, allowed or denied, successful or failed, with the Huawei
 *    action name, in the store's audit log: in the same transaction as the change for the
 *    lifecycle's writes, appended after it otherwise;
 * 4. acknowledged only after the commit that holds its audit record (and its change), through the
 *    store's group commit: a resolved promise means durable.
 *
 * Failures are KmsErrors with Huawei's codes (errors.ts). Anything else that goes wrong (a store
 * fault) is reported as KMS.0101 with the original as `cause`.
 *
 * The sweepers (deleteDueKeys, rotateDueKeys) are for the server to call periodically.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { AuditMac } from "./audit/checkpoints.js";
import type { AuditVerification, VerifyOptions } from "./audit/verify.js";
import type { KmsBackend } from "./backend/backend.js";
import { openBackend, type GrapheneBackendOptions } from "./backend/graphene.js";
import { Access, checkRequestContext, denied, isDenial, OPERATIONS, type Caller, type KmsOperation, type RequestContext } from "./access.js";
import type * as Api from "./api.js";
import { resolveKmsConfig, type KmsConfig, type KmsLimits, type KmsTunables } from "./config.js";
import { defaultAlias, defaultKeyDescription, defaultKeyService, type DefaultKeyService } from "./default-keys.js";
import { checkPendingDays, deletionDate } from "./deletion.js";
import { grantDetails, keyDetails, type KeyDetails } from "./details.js";
import { Envelope, MAX_PLAINTEXT_BYTES, MIN_PLAINTEXT_BYTES, bindForOpen, parseBlob, type EnvelopeOptions, type OpenBinding, type ParsedBlob } from "./envelope/blob.js";
import type { BoundContext, CiphertextPurpose } from "./envelope/context.js";
import { checkDatakeyCipherLength, dekDigest, splitDekAndDigest } from "./envelope/datakey.js";
import { KmsError, type KmsErrorCode } from "./errors.js";
import { checkGrantId, checkGrantName, checkGranteeType, checkGrantOperations, checkPrincipalId, mayRetire } from "./grants.js";
import { KeyCache, type KeyEntry, type LoadedVersion, type VersionAdded } from "./key-cache.js";
import {
  checkCustomAlias, checkDescription, checkGuard, checkKeySpec, checkKeyUsage, checkListKeySpec, checkOrigin, checkStateFilter, GUARDS, integerField,
} from "./lifecycle.js";
import { userQuotas, type UserQuotas } from "./quotas.js";
import { checkRotationInterval, reportedRotationEnabled, rotationDue, type KeyRotationStatus } from "./rotation.js";
import { openSqliteStore, type SqliteStoreOptions } from "./store/sqlite.js";
import { MAX_PAGE } from "./store/rows.js";
import { failureAudited, type AuditPage, type AuditQuery, type AuditSink, type KmsStore, type Page } from "./store/store.js";
import { matchesTagQuery, tagQuery } from "./tag-query.js";
import { checkTagKey, checkTagKeys, checkTagKeyToDelete, checkTags, checkTagValue } from "./tags.js";
import type {
  AuditEvent, AuditOutcome, CredentialRecord, GrantOperation, NewCredential, KeyRecord, KeyVersionRecord, PrincipalRecord, ProjectRecord, Role, RoleRecord, UsageRecord,
} from "./types.js";
import { ROLES } from "./types.js";
import { encodeMaterial, sealsFromUsage, versionId, versionRef } from "./versions.js";

export type { RequestContext } from "./access.js";

/** How far the wall clock may run ahead of the monotonic clock before the deletion sweeper warns (deleteDueKeys). */
const CLOCK_AHEAD_WARN_MS = 60_000;
const CLOCK_AHEAD_REWARN_MS = 3_600_000;

/** Construction from a backend and a store the caller opened (and closes). */
export interface KmsOptions {
  backend: KmsBackend;
  store: KmsStore;
  limits?: Partial<KmsLimits> | undefined;
  tunables?: Partial<KmsTunables> | undefined;
  /** IV batching of the envelope (envelope/blob.ts). */
  envelope?: EnvelopeOptions | undefined;
  /** The clock, ms since the epoch (default Date.now): creation, deletion and rotation times. */
  now?: (() => number) | undefined;
  /**
   * A clock that only moves forward, ms (default performance.now with the system clock; with an
   * injected `now`, that clock itself): the deletion sweeper destroys keys due by the earlier of
   * `now` and the time since the Kms was made on this clock (see deleteDueKeys).
   */
  monotonicNow?: (() => number) | undefined;
  /** Operator messages (an audit record that could not be written for a failed request). Default: process.emitWarning. */
  warn?: ((message: string) => void) | undefined;
}

/** Kms.open: the Kms opens the backend and the store itself, and closes them on close(). */
export interface OpenKmsOptions extends Omit<KmsOptions, "backend" | "store"> {
  /** The store's directory (kms.sqlite, its WAL and lock), created if absent. */
  directory: string;
  /** The token: module (emulator or .so path), tokenLabel, pin, createKeys … (backend/graphene.ts). */
  token: GrapheneBackendOptions;
  /** Store settings besides the directory and the audit MAC (which is the token's). */
  store?: Omit<SqliteStoreOptions, "directory" | "mac"> | undefined;
}

/** What a sweeper did. */
export interface SweepReport {
  /** Keys handled. */
  done: string[];
  /** Keys skipped (changed meanwhile) or failed, with the reason. */
  skipped: Array<{ keyId: string; reason: string }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;
const ALIAS_REF = /^[a-zA-Z0-9:/_-]{1,255}$/u;
const ALIAS_PREFIX = "alias/";

/** The alias an `alias/<alias>` reference names, or undefined for any other reference. */
function aliasReference(ref: string): string | undefined {
  return ref.startsWith(ALIAS_PREFIX) && ref.length > ALIAS_PREFIX.length ? ref.slice(ALIAS_PREFIX.length) : undefined;
}
/** The principal the service's own actions (sweepers) are recorded under. */
export const SYSTEM_PRINCIPAL = "system";

/** Data-key sizes by key_spec (create-datakey). */
/** A Map, not an object: a key_spec such as "toString" must find nothing. */
const DATAKEY_SPECS: ReadonlyMap<string, number> = new Map([["AES_256", 32], ["AES_128", 16]]);
/** create-datakey datakey_length and gen-random random_data_length: 8..8192 bits (kms-apis.md §1.2). */
const MIN_BITS = 8;
const MAX_BITS = 8192;

/** One request in flight: what its audit record says. */
class Op {
  readonly action: string;
  readonly time: number;
  keyId: string | null = null;
  detail: string | null = null;
  /** The store appended this request's record with its write (success or failure). */
  audited = false;
  /** More keys the request used (re-encrypt's source), each with its own record. */
  also: Array<{ keyId: string; detail: string }> | null = null;
  caller: Caller | undefined;

  constructor(readonly ctx: RequestContext, readonly operation: KmsOperation, time: number) {
    this.action = OPERATIONS[operation].action;
    this.time = time;
  }

  event(): AuditEvent {
    return {
      time: this.time, requestId: this.ctx.requestId, projectId: this.ctx.projectId, principalId: this.ctx.principalId,
      source: this.ctx.source, action: this.action, keyId: this.keyId, detail: this.detail,
    };
  }
}

/** KmsError as it is, anything else as KMS.0101 (with the original as cause). */
function asKmsError(error: unknown): KmsError {
  if (error instanceof KmsError) return error;
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new KmsError("KMS.0101", message, { cause: error });
}

/** A store failure rethrown as a KmsError (one function, not a closure per request). */
function rethrowAsKmsError(error: unknown): never {
  throw asKmsError(error);
}

function bytesOf(value: unknown, code: KmsErrorCode, name: string): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new KmsError(code, `${name} must be bytes or a string`);
}

/** What #open gives: the blob's key and its plaintext. */
interface Opened {
  entry: KeyEntry;
  plaintext: Buffer;
}

/** What #newDataKey gives: the DEK in plaintext and sealed. */
interface NewDataKey {
  keyId: string;
  dek: Buffer;
  cipherText: Buffer;
}

/** UTF-16 units of an audit detail that names a batch's tag keys. */
const MAX_DETAIL_UNITS = 512;

/**
 * `detail` cut to MAX_DETAIL_UNITS without splitting a surrogate pair: half a pair is no
 * character, and the audit chain refuses a record holding one (the request would fail).
 */
function clipDetail(detail: string): string {
  if (detail.length <= MAX_DETAIL_UNITS) return detail;
  const last = detail.charCodeAt(MAX_DETAIL_UNITS - 1);
  return detail.slice(0, last >= 0xd800 && last <= 0xdbff ? MAX_DETAIL_UNITS - 1 : MAX_DETAIL_UNITS);
}

/** fn(value) at once for a value, after it for a promise: the synchronous hot paths stay synchronous. */
function andThen<T, U>(value: T | Promise<T>, fn: (value: T) => U | Promise<U>): U | Promise<U> {
  return value instanceof Promise ? value.then(fn) : fn(value);
}

function blobOf(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new KmsError("KMS.2201", "cipher_text must be bytes");
  return value;
}

/**
 * The encryption_algorithm values Huawei defines for asymmetric keys (SDK encrypt_data_request_body.py,
 * decrypt_data_request_body.py, re_encrypt_request_body.py). Every key here is symmetric, so they
 * are refused as Huawei refuses them on a symmetric key — KMS.2105, "The symmetric key not support
 * this encryption algorithm" (error_code.rst) — which tells the client its algorithm exists but
 * does not fit the key, where KMS.0308 would call a documented value invalid.
 */
const ASYMMETRIC_ENCRYPTION_ALGORITHMS: ReadonlySet<unknown> = new Set(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2_ENCRYPT"]);

function checkAlgorithm(value: unknown): void {
  if (value === undefined || value === "SYMMETRIC_DEFAULT") return;
  if (ASYMMETRIC_ENCRYPTION_ALGORITHMS.has(value)) throw new KmsError("KMS.2105", `encryption_algorithm ${String(value)} is for asymmetric keys`);
  throw new KmsError("KMS.0308", "encryption_algorithm must be SYMMETRIC_DEFAULT for a symmetric key");
}

function bound(aad: string | undefined, context: Readonly<Record<string, string>> | undefined): BoundContext {
  return { additionalAuthenticatedData: aad, encryptionContext: context };
}

/**
 * list-keys' largest and default limit: Huawei's ListKeys takes 1-2000 and defaults to 2000
 * (api-dew ListKeys.html), so a client paging with its documented default is not refused.
 */
const LIST_KEYS_LIMIT = 2000;

/** limit (1..max, default max; KMS.1601) and marker (KMS.1602) of a paged request. */
function pageOf(limit: unknown, marker: unknown, max = MAX_PAGE): { limit: number; marker: string | undefined } {
  const n = integerField(limit, "limit", "KMS.1601") ?? max;
  if (n < 1 || n > max) throw new KmsError("KMS.1601", `limit must be 1..${max}`);
  if (marker !== undefined && marker !== null && marker !== "" && (typeof marker !== "string" || !/^\d{1,15}$/u.test(marker))) {
    throw new KmsError("KMS.1602", "marker must be a non-negative integer");
  }
  return { limit: n, marker: typeof marker === "string" && marker !== "" ? marker : undefined };
}

/**
 * A length in bits, 8..8192 in steps of 8: its bytes. A value that is no integer is out of range
 * (rangeCode), the code the HTTP schema gives it too (server/errors.ts FIELD_CODES), so a caller
 * sees one code whichever way it comes in. The schema refuses a negative integer and one past its
 * largest the same way, so an integer past either end of the range is rangeCode whatever its step;
 * stepCode is only for one inside 1..8191 that is off the step (7, 12).
 */
function bitsToBytes(value: unknown, name: string, rangeCode: KmsErrorCode, stepCode: KmsErrorCode): number {
  const bits = integerField(value, name, rangeCode);
  if (bits === undefined) throw new KmsError("KMS.0204", `${name} is missing`);
  if (bits > 0 && bits < MAX_BITS && bits % 8 !== 0) throw new KmsError(stepCode, `${name} must be a multiple of 8`);
  if (bits < MIN_BITS || bits > MAX_BITS) throw new KmsError(rangeCode, `${name} must be ${MIN_BITS}..${MAX_BITS} bits`);
  return bits / 8;
}

export class Kms {
  readonly #backend: KmsBackend;
  readonly #store: KmsStore;
  readonly #config: Readonly<KmsConfig>;
  readonly #envelope: Envelope;
  readonly #access: Access;
  readonly #cache: KeyCache;
  readonly #now: () => number;
  /** The wall clock and the monotonic clock when the Kms was made (deleteDueKeys' guard). */
  readonly #monotonic: () => number;
  readonly #wallAtStart: number;
  readonly #monotonicAtStart: number;
  /** How far ahead the wall clock was at the last warning about it, ms (0: none given). */
  #aheadWarned = 0;
  readonly #warn: (message: string) => void;
  /** Projects known to exist in the store, with their account. */
  readonly #projects = new Map<string, string>();
  /** Project records being made (#ensureProject), by project. */
  readonly #projectsCreating = new Map<string, Promise<string>>();
  #owned: { backend: KmsBackend; store: KmsStore } | null = null;
  #closed = false;

  /**
   * Opens the token (creating its root and audit-MAC keys on first start unless
   * `token.createKeys` is false) and the store in `directory` (its audit checkpoints MACed by the
   * token's key), and a Kms over both. close() closes them.
   */
  static async open(options: OpenKmsOptions): Promise<Kms> {
    // The backend's operator messages (the token out of memory for the cache) go where the Kms's do.
    const warn = options.token.warn ?? options.warn;
    const backend = openBackend(warn === undefined ? options.token : { ...options.token, warn });
    let store: KmsStore;
    try {
      const mac: AuditMac = { mac: (data) => backend.mac(data), verifyMac: (data, tag) => backend.verifyMac(data, tag) };
      store = await openSqliteStore({ ...options.store, directory: options.directory, mac });
    } catch (error) {
      backend.close();
      throw error;
    }
    const { directory: _directory, token: _token, store: _store, ...rest } = options;
    const kms = new Kms({ ...rest, backend, store });
    kms.#owned = { backend, store };
    return kms;
  }

  constructor(options: KmsOptions) {
    this.#backend = options.backend;
    this.#store = options.store;
    this.#config = resolveKmsConfig({ limits: options.limits ?? {}, tunables: options.tunables ?? {} });
    this.#envelope = new Envelope(this.#backend, options.envelope);
    this.#now = options.now ?? Date.now;
    this.#monotonic = options.monotonicNow ?? (options.now === undefined ? () => performance.now() : this.#now);
    this.#wallAtStart = this.#now();
    this.#monotonicAtStart = this.#monotonic();
    this.#warn = options.warn ?? ((message) => process.emitWarning(message, { code: "HSMKIT_KMS" }));
    this.#access = new Access(this.#store, this.#config.tunables.principalCacheMs);
    this.#cache = new KeyCache(this.#config.tunables.keyCacheSize);
  }

  /** The effective limits and tunables. */
  get config(): Readonly<KmsConfig> {
    return this.#config;
  }

  /** The backend (for `hsmkit status`, the audit MAC). */
  get backend(): KmsBackend {
    return this.#backend;
  }

  /** The store (for the CLI's audit verification and export, and credentials). */
  get store(): KmsStore {
    return this.#store;
  }

  /** Keys held in the key cache now. */
  get cachedKeys(): number {
    return this.#cache.size;
  }

  /** Waits for pending writes, then closes what Kms.open opened (nothing otherwise). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.clear();
    if (this.#owned !== null) {
      try {
        await this.#owned.store.close();
      } finally {
        this.#owned.backend.close();
      }
    }
  }

  // ============================================================================================
  // Keys

  /** create-key. Errors: KMS.1101 alias, KMS.1103 description, KMS.0308 spec/usage/origin, KMS.1104 duplicate alias, KMS.1105 quota. */
  createKey(ctx: RequestContext, request: Api.CreateKeyRequest): Promise<KeyDetails> {
    return this.#run(ctx, "create-key", async (op) => {
      const alias = checkCustomAlias(request.keyAlias);
      const description = checkDescription(request.keyDescription);
      const keySpec = checkKeySpec(request.keySpec);
      const keyUsage = checkKeyUsage(request.keyUsage);
      const origin = checkOrigin(request.origin);
      const caller = await this.#authorize(op);
      const domainId = await this.#ensureProject(op, caller);
      // The key id goes on the success record only: a create that fails (in the token or the
      // store) made no key, and its record names none (the store writes the failure so).
      const keyId = randomUUID();
      op.detail = `alias=${alias}`;
      const wrapped = this.#backend.createVersionKey();
      const now = this.#now();
      const record = await this.#atomic(op, (audit) => this.#store.keys.create(
        { projectId: ctx.projectId, keyId, domainId, alias, description, keySpec, keyUsage, origin, state: 2, defaultKey: false, createdAt: now },
        { version: { material: encodeMaterial(wrapped, 0), createdAt: now }, maxCustomKeys: this.#config.limits.customKeysPerProject, audit: { ...audit, keyId } },
      ));
      op.keyId = keyId;
      return keyDetails(record, this.#config.tunables.realm);
    });
  }

  /** describe-key (also by a grantee holding describe-key). */
  describeKey(ctx: RequestContext, request: Api.KeyRequest): Promise<KeyDetails> {
    return this.#run(ctx, "describe-key", async (op) => {
      const entry = await this.#authorizeKey(op, request.keyId);
      return keyDetails(entry.record, this.#config.tunables.realm);
    }, request?.keyId);
  }

  /** list-keys: the project's keys (default keys included, flagged) in creation order. KMS.1601 limit, KMS.1602 marker, KMS.0308 state or key_spec. */
  listKeys(ctx: RequestContext, request: Api.ListKeysRequest = {}): Promise<Api.ListKeysResult> {
    return this.#run(ctx, "list-keys", async (op) => {
      const page = pageOf(request.limit, request.marker, LIST_KEYS_LIMIT);
      const state = checkStateFilter(request.keyState);
      const spec = checkListKeySpec(request.keySpec);
      await this.#authorize(op);
      // Every key hsmkit holds is AES_256 (lifecycle.ts checkKeySpec): another spec matches none.
      if (spec !== "ALL" && spec !== "AES_256") return { keys: [], keyDetails: [], nextMarker: null, truncated: false, total: 0 };
      // Huawei's limit goes past the store's largest page: read store pages until the limit is
      // met or the keys run out; the last read's marker, truncation and total describe the page.
      const items: KeyRecord[] = [];
      let marker = page.marker;
      let result: Page<KeyRecord>;
      do {
        result = await this.#store.keys.list(ctx.projectId, { limit: Math.min(page.limit - items.length, MAX_PAGE), marker, state });
        items.push(...result.items);
        marker = result.nextMarker ?? undefined;
      } while (result.truncated && items.length < page.limit);
      const details = items.map((key) => keyDetails(key, this.#config.tunables.realm));
      return { keys: details.map((key) => key.keyId), keyDetails: details, nextMarker: result.nextMarker, truncated: result.truncated, total: result.total };
    });
  }

  /** update-key-alias. KMS.1101 alias (or /default), KMS.1104 duplicate, KMS.0211 default key, KMS.0210 pending deletion. */
  updateKeyAlias(ctx: RequestContext, request: Api.UpdateKeyAliasRequest): Promise<{ keyId: string; keyAlias: string }> {
    return this.#run(ctx, "update-key-alias", async (op) => {
      const alias = checkCustomAlias(request.keyAlias);
      op.detail = `alias=${alias}`;
      const record = await this.#changeKey(op, request.keyId, { alias }, GUARDS.updateAlias);
      return { keyId: record.keyId, keyAlias: record.alias };
    }, request?.keyId);
  }

  /** update-key-description. KMS.0204 missing, KMS.1103, KMS.0210, KMS.0211 default key. */
  updateKeyDescription(ctx: RequestContext, request: Api.UpdateKeyDescriptionRequest): Promise<{ keyId: string; keyDescription: string }> {
    return this.#run(ctx, "update-key-description", async (op) => {
      // Required (Huawei's UpdateKeyDescriptionRequestBody, as the HTTP schema has it): "" clears the
      // description; a missing field is refused, not read as "".
      if (request.keyDescription === undefined) throw new KmsError("KMS.0204", "key_description is missing");
      const description = checkDescription(request.keyDescription);
      const record = await this.#changeKey(op, request.keyId, { description }, GUARDS.updateDescription);
      return { keyId: record.keyId, keyDescription: record.description };
    }, request?.keyId);
  }

  /** enable-key: 3 → 2. KMS.1201 when not disabled, KMS.0210 pending deletion. */
  enableKey(ctx: RequestContext, request: Api.KeyRequest): Promise<Api.KeyStateResult> {
    return this.#run(ctx, "enable-key", async (op) => {
      const record = await this.#changeKey(op, request.keyId, { state: 2 }, GUARDS.enable);
      return { keyId: record.keyId, keyState: record.state };
    }, request?.keyId);
  }

  /** disable-key: 2 → 3. KMS.1301 when not enabled, KMS.0210, KMS.0211 default key. */
  disableKey(ctx: RequestContext, request: Api.KeyRequest): Promise<Api.KeyStateResult> {
    return this.#run(ctx, "disable-key", async (op) => {
      const record = await this.#changeKey(op, request.keyId, { state: 3 }, GUARDS.disable);
      return { keyId: record.keyId, keyState: record.state };
    }, request?.keyId);
  }

  /** schedule-key-deletion: → 4, deleted by deleteDueKeys after pendingDays. KMS.1401 days, KMS.1402 already pending, KMS.0211. */
  scheduleKeyDeletion(ctx: RequestContext, request: Api.ScheduleKeyDeletionRequest): Promise<Api.ScheduleKeyDeletionResult> {
    return this.#run(ctx, "schedule-key-deletion", async (op) => {
      const days = checkPendingDays(request.pendingDays);
      const date = deletionDate(this.#now(), days);
      op.detail = `pending_days=${days}`;
      const record = await this.#changeKey(op, request.keyId, { state: 4, deletionDate: date }, GUARDS.scheduleDeletion);
      return { keyId: record.keyId, keyState: record.state, scheduledDeletionDate: date };
    }, request?.keyId);
  }

  /** cancel-key-deletion: 4 → 3. KMS.1501 when not pending deletion. */
  cancelKeyDeletion(ctx: RequestContext, request: Api.KeyRequest): Promise<Api.KeyStateResult> {
    return this.#run(ctx, "cancel-key-deletion", async (op) => {
      const record = await this.#changeKey(op, request.keyId, { state: 3, deletionDate: null }, GUARDS.cancelDeletion);
      return { keyId: record.keyId, keyState: record.state };
    }, request?.keyId);
  }

  /** user-quotas: custom keys of the project, grants and tags per key (quotas.ts). */
  getUserQuotas(ctx: RequestContext): Promise<UserQuotas> {
    return this.#run(ctx, "user-quotas", async (op) => {
      await this.#authorize(op);
      return userQuotas(this.#store, ctx.projectId, this.#config.limits);
    });
  }

  /** user-instances: the number of custom (non-default) keys in the project. */
  getUserInstances(ctx: RequestContext): Promise<{ instanceNum: number }> {
    return this.#run(ctx, "user-instances", async (op) => {
      await this.#authorize(op);
      return { instanceNum: await this.#store.keys.count(ctx.projectId, { customOnly: true }) };
    });
  }

  // ============================================================================================
  // Data and data keys

  /** encrypt-data: blob v1 of 1..4096 bytes under the key's newest version. KMS.2101 plaintext, KMS.0209/0210/1301 state. */
  encryptData(ctx: RequestContext, request: Api.EncryptDataRequest): Promise<Api.EncryptDataResult> {
    return this.#run(ctx, "encrypt-data", (op) => {
      const plaintext = bytesOf(request.plainText, "KMS.2101", "plain_text");
      if (plaintext.length < MIN_PLAINTEXT_BYTES || plaintext.length > MAX_PLAINTEXT_BYTES) {
        throw new KmsError("KMS.2101", `plain_text must be ${MIN_PLAINTEXT_BYTES}..${MAX_PLAINTEXT_BYTES} bytes`);
      }
      checkAlgorithm(request.encryptionAlgorithm);
      const seal = (entry: KeyEntry): Api.EncryptDataResult | Promise<Api.EncryptDataResult> => {
        checkGuard(entry.record, GUARDS.use);
        const context = bound(request.additionalAuthenticatedData, request.encryptionContext);
        const keyId = entry.record.keyId;
        return andThen(this.#sealNow(entry, "data", plaintext, context) ?? this.#seal(op, entry, "data", plaintext, context), (cipherText) => ({ keyId, cipherText }));
      };
      return andThen(this.#authorizeKeyNow(op, request.keyId) ?? this.#authorizeKey(op, request.keyId, { createDefault: true }), seal);
    }, request?.keyId ?? (ctx?.service === undefined ? undefined : defaultAlias(ctx.service)));
  }

  /**
   * decrypt-data. Every failure the ciphertext can cause — malformed, another project's or an
   * unknown key, a destroyed version, a data key's ciphertext, another AAD or context, any changed
   * bit — is the opaque KMS.2201; the key's state (KMS.0209/0210) only for a key of the project.
   */
  decryptData(ctx: RequestContext, request: Api.DecryptDataRequest): Promise<Api.DecryptDataResult> {
    return this.#run(ctx, "decrypt-data", (op) => {
      checkAlgorithm(request.encryptionAlgorithm);
      const blob = blobOf(request.cipherText);
      const opened = this.#open(op, blob, "data", request.keyId, bound(request.additionalAuthenticatedData, request.encryptionContext));
      return andThen(opened, ({ entry, plaintext }) => ({ keyId: entry.record.keyId, plainText: plaintext }));
    }, request?.keyId);
  }

  /** create-datakey: a data key from the token, in plaintext and sealed. KMS.1901/1902/1903 size. */
  createDataKey(ctx: RequestContext, request: Api.CreateDataKeyRequest): Promise<Api.CreateDataKeyResult> {
    return this.#run(ctx, "create-datakey", (op) =>
      andThen(this.#newDataKey(op, request), ({ keyId, dek, cipherText }) => ({ keyId, plainText: dek, cipherText })), request?.keyId ?? (ctx?.service === undefined ? undefined : defaultAlias(ctx.service)));
  }

  /** create-datakey-without-plaintext: the sealed data key only. */
  createDataKeyWithoutPlaintext(ctx: RequestContext, request: Api.CreateDataKeyRequest): Promise<Api.CreateDataKeyWithoutPlaintextResult> {
    return this.#run(ctx, "create-datakey-without-plaintext", (op) =>
      andThen(this.#newDataKey(op, request), ({ keyId, dek, cipherText }) => {
        dek.fill(0);
        return { keyId, cipherText };
      }), request?.keyId ?? (ctx?.service === undefined ? undefined : defaultAlias(ctx.service)));
  }

  /** encrypt-datakey: takes DEK ‖ SHA-256(DEK) and seals the DEK. KMS.2103 digest, KMS.2104 length. */
  encryptDataKey(ctx: RequestContext, request: Api.EncryptDataKeyRequest): Promise<Api.EncryptDataKeyResult> {
    return this.#run(ctx, "encrypt-datakey", async (op) => {
      const length = integerField(request.datakeyPlainLength, "datakey_plain_length", "KMS.0308");
      if (length === undefined) throw new KmsError("KMS.0204", "datakey_plain_length is missing");
      const dek = splitDekAndDigest(bytesOf(request.plainText, "KMS.2101", "plain_text"), length);
      const entry = await this.#authorizeKey(op, request.keyId, { createDefault: true });
      checkGuard(entry.record, GUARDS.use);
      const cipherText = await this.#seal(op, entry, "datakey", dek, bound(request.additionalAuthenticatedData, request.encryptionContext));
      return { keyId: entry.record.keyId, cipherText, datakeyLength: dek.length };
    }, request?.keyId ?? (ctx?.service === undefined ? undefined : defaultAlias(ctx.service)));
  }

  /** decrypt-datakey: the DEK and its SHA-256. keyId (required; KMS.0207 when missing) must be the blob's key (KMS.2201 otherwise); KMS.2204 length. */
  decryptDataKey(ctx: RequestContext, request: Api.DecryptDataKeyRequest): Promise<Api.DecryptDataKeyResult> {
    return this.#run(ctx, "decrypt-datakey", async (op) => {
      // #open takes an empty key id for none and would use the blob's key, but here key_id is required.
      if (typeof request.keyId !== "string" || request.keyId === "") throw new KmsError("KMS.0204", "key_id is missing");
      const blob = blobOf(request.cipherText);
      const length = integerField(request.datakeyCipherLength, "datakey_cipher_length", "KMS.0308");
      if (length === undefined) throw new KmsError("KMS.0204", "datakey_cipher_length is missing");
      checkDatakeyCipherLength(blob, length);
      const { plaintext } = await this.#open(op, blob, "datakey", request.keyId, bound(request.additionalAuthenticatedData, request.encryptionContext));
      return { dataKey: plaintext, datakeyLength: plaintext.length, datakeyDgst: dekDigest(plaintext) };
    }, request?.keyId);
  }

  /**
   * re-encrypt: opens the ciphertext under its key and seals the plaintext under the destination
   * key, in this process, without returning the plaintext; a data key's ciphertext (given
   * datakeyCipherLength) stays a data key's. Needs decrypt on the source key and encrypt on the
   * destination (role crypto_user, or grants decrypt-data/encrypt-data — decrypt-datakey/
   * encrypt-datakey for a data key). Audited as reEncryptData on both keys.
   */
  reEncrypt(ctx: RequestContext, request: Api.ReEncryptRequest): Promise<Api.ReEncryptResult> {
    return this.#run(ctx, "re-encrypt", async (op) => {
      checkAlgorithm(request.sourceEncryptionAlgorithm);
      checkAlgorithm(request.destinationEncryptionAlgorithm);
      const blob = blobOf(request.cipherText);
      let purpose: CiphertextPurpose = "data";
      if (request.datakeyCipherLength !== undefined && request.datakeyCipherLength !== "") {
        const length = integerField(request.datakeyCipherLength, "datakey_cipher_length", "KMS.0308")!;
        checkDatakeyCipherLength(blob, length);
        purpose = "datakey";
      }
      if (typeof request.destinationKeyId !== "string") throw new KmsError("KMS.0204", "destination_key_id is missing");
      const opened = await this.#open(op, blob, purpose, request.sourceKeyId,
        bound(request.sourceAdditionalAuthenticatedData, request.sourceEncryptionContext), purpose === "data" ? "decrypt-data" : "decrypt-datakey");
      const sourceKeyId = opened.entry.record.keyId;
      try {
        (op.also ??= []).push({ keyId: sourceKeyId, detail: "re-encrypt source" });
        op.keyId = null;
        const destination = await this.#authorizeKey(op, request.destinationKeyId, {
          createDefault: true, grant: purpose === "data" ? "encrypt-data" : "encrypt-datakey",
        });
        op.detail = `re-encrypt destination; source=${sourceKeyId}`;
        checkGuard(destination.record, GUARDS.use);
        const cipherText = await this.#seal(op, destination, purpose, opened.plaintext,
          bound(request.destinationAdditionalAuthenticatedData, request.destinationEncryptionContext));
        return { keyId: destination.record.keyId, sourceKeyId, cipherText };
      } finally {
        opened.plaintext.fill(0);
      }
    }, request?.sourceKeyId);
  }

  /** gen-random: 8..8192 bits from the token's generator. KMS.1802 not a multiple of 8, KMS.0308 range. */
  genRandom(ctx: RequestContext, request: Api.GenRandomRequest): Promise<Api.GenRandomResult> {
    return this.#run(ctx, "gen-random", async (op) => {
      const bytes = bitsToBytes(request.randomDataLength, "random_data_length", "KMS.0308", "KMS.1802");
      await this.#authorize(op);
      return { randomData: this.#backend.random(bytes) };
    });
  }

  // ============================================================================================
  // Rotation

  /** enable-key-rotation (idempotent; sets the interval when given). KMS.3001 interval, KMS.0211 default key, KMS.0209/0210 state. */
  enableKeyRotation(ctx: RequestContext, request: Api.EnableKeyRotationRequest): Promise<KeyRotationStatus> {
    return this.#run(ctx, "enable-key-rotation", async (op) => {
      const interval = request.rotationInterval === undefined ? undefined : checkRotationInterval(request.rotationInterval);
      const record = await this.#changeKey(op, request.keyId, {
        rotationEnabled: true, rotationEnabledAt: this.#now(), ...(interval === undefined ? {} : { rotationIntervalDays: interval }),
      }, GUARDS.rotation);
      return this.#rotationStatus(record);
    }, request?.keyId);
  }

  /** disable-key-rotation (idempotent). */
  disableKeyRotation(ctx: RequestContext, request: Api.KeyRequest): Promise<KeyRotationStatus> {
    return this.#run(ctx, "disable-key-rotation", async (op) => {
      const record = await this.#changeKey(op, request.keyId, { rotationEnabled: false }, GUARDS.rotation);
      return this.#rotationStatus(record);
    }, request?.keyId);
  }

  /** update-key-rotation-interval: 30..365 days (KMS.3001); KMS.0313 when rotation is not enabled. */
  updateKeyRotationInterval(ctx: RequestContext, request: Api.UpdateKeyRotationIntervalRequest): Promise<KeyRotationStatus> {
    return this.#run(ctx, "update-key-rotation-interval", async (op) => {
      const interval = checkRotationInterval(request.rotationInterval);
      op.detail = `rotation_interval=${interval}`;
      const entry = await this.#authorizeKey(op, request.keyId);
      checkGuard(entry.record, GUARDS.rotation);
      if (!entry.record.rotationEnabled) throw new KmsError("KMS.0313");
      const record = await this.#atomic(op, (audit) => this.#store.keys.update(ctx.projectId, entry.record.keyId, { rotationIntervalDays: interval }, { guard: GUARDS.rotation, audit }));
      this.#cache.invalidate(ctx.projectId, record.keyId);
      return this.#rotationStatus(record);
    }, request?.keyId);
  }

  /** get-key-rotation-status, with the key's versions. */
  getKeyRotationStatus(ctx: RequestContext, request: Api.KeyRequest): Promise<KeyRotationStatus> {
    return this.#run(ctx, "get-key-rotation-status", async (op) => {
      const entry = await this.#authorizeKey(op, request.keyId);
      return this.#rotationStatus(entry.record);
    }, request?.keyId);
  }

  /** rotate-on-demand: a new version now (rotation enabled or not). KMS.0211 default key, KMS.0209/0210 state. */
  rotateKeyOnDemand(ctx: RequestContext, request: Api.KeyRequest): Promise<Api.RotateKeyResult> {
    return this.#run(ctx, "rotate-on-demand", async (op) => {
      const entry = await this.#authorizeKey(op, request.keyId);
      checkGuard(entry.record, GUARDS.rotation);
      // The key as this rotation left it: a concurrent one may have added another version since.
      const { key } = await this.#addVersion(entry, GUARDS.rotation, (body) => this.#atomic(op, body));
      return { keyId: key!.keyId, keyVersion: key!.currentVersion, numberOfRotations: key!.rotationCount };
    }, request?.keyId);
  }

  // ============================================================================================
  // Grants

  /** create-grant. KMS.2401/2402/0308 fields, KMS.0211 default key, KMS.2404 too many, KMS.0210 pending deletion. */
  createGrant(ctx: RequestContext, request: Api.CreateGrantRequest): Promise<Api.CreateGrantResult> {
    return this.#run(ctx, "create-grant", async (op) => {
      const granteePrincipal = checkPrincipalId(request.granteePrincipal, "grantee_principal");
      const granteePrincipalType = checkGranteeType(request.granteePrincipalType);
      const operations = checkGrantOperations(request.operations);
      const name = checkGrantName(request.name);
      const retiringPrincipal = request.retiringPrincipal === undefined ? null : checkPrincipalId(request.retiringPrincipal, "retiring_principal");
      const entry = await this.#authorizeKey(op, request.keyId);
      const caller = op.caller!;
      if (this.#access.roleAllows(caller, "create-grant")) {
        // Roles separate duties (access.ts): a key administrator who could grant itself — or its
        // own account — an operation its roles refuse would hold the key's use after all.
        const toSelf = granteePrincipalType === "user" ? granteePrincipal === caller.principal.principalId : granteePrincipal === caller.principal.domainId;
        const refused = toSelf ? operations.filter((operation) => !this.#access.roleAllows(caller, operation)) : [];
        if (refused.length > 0) throw denied(`a key administrator cannot grant itself or its own account what its roles do not allow: ${refused.join(", ")}`);
      } else {
        // A grantee passing access on: only what it holds itself.
        const held = await this.#access.grantedOperations(caller, ctx.projectId, entry.record.keyId);
        const wider = operations.filter((operation) => !held.has(operation));
        if (wider.length > 0) throw denied(`a grant cannot give operations its creator does not hold: ${wider.join(", ")}`);
      }
      checkGuard(entry.record, GUARDS.createGrant);
      op.detail = `grantee=${granteePrincipalType}:${granteePrincipal} operations=${operations.join(",")}`;
      const grant = await this.#atomic(op, (audit) => this.#store.grants.create({
        projectId: ctx.projectId, keyId: entry.record.keyId, name, granteePrincipal, granteePrincipalType, operations, retiringPrincipal,
        creator: ctx.principalId, createdAt: this.#now(),
      }, { guard: GUARDS.createGrant, maxGrantsPerKey: this.#config.limits.grantsPerKey, audit }));
      return { grantId: grant.grantId };
    }, request?.keyId);
  }

  /** list-grants of a key. */
  listGrants(ctx: RequestContext, request: Api.ListGrantsRequest): Promise<Api.ListGrantsResult> {
    return this.#run(ctx, "list-grants", async (op) => {
      const page = pageOf(request.limit, request.marker);
      const entry = await this.#authorizeKey(op, request.keyId);
      const result = await this.#store.grants.list(ctx.projectId, entry.record.keyId, page);
      return { grants: result.items.map(grantDetails), nextMarker: result.nextMarker, truncated: result.truncated, total: result.total };
    }, request?.keyId);
  }

  /** list-retirable-grants: the grants of the project whose retiring principal is the caller. */
  listRetirableGrants(ctx: RequestContext, request: Api.ListRetirableGrantsRequest = {}): Promise<Api.ListGrantsResult> {
    return this.#run(ctx, "list-retirable-grants", async (op) => {
      const page = pageOf(request.limit, request.marker);
      await this.#caller(op);
      const result = await this.#store.grants.listRetirable(ctx.projectId, ctx.principalId, page);
      return { grants: result.items.map(grantDetails), nextMarker: result.nextMarker, truncated: result.truncated, total: result.total };
    });
  }

  /** revoke-grant (key administrators). KMS.2501 no such grant in the project, KMS.2502 a grant of another key. */
  revokeGrant(ctx: RequestContext, request: Api.GrantRequest): Promise<Record<string, never>> {
    return this.#run(ctx, "revoke-grant", async (op) => {
      const grantId = checkGrantId(request.grantId);
      op.detail = `grant=${grantId}`;
      const entry = await this.#authorizeKey(op, request.keyId);
      await this.#atomic(op, (audit) => this.#store.grants.delete(ctx.projectId, entry.record.keyId, grantId, { guard: GUARDS.removeGrant, audit }));
      return {};
    }, request?.keyId);
  }

  /**
   * retire-grant: by the grant's issuer, its retiring principal, or its grantee when it holds
   * retire-grant (KMS.0306 for anyone else). KMS.2501 when the key has no such grant — also for a
   * missing key, so retiring reveals no key's existence — and KMS.2502 when another key of the
   * project holds it (Huawei's "grant_id and key_id do not match").
   */
  retireGrant(ctx: RequestContext, request: Api.GrantRequest): Promise<Record<string, never>> {
    return this.#run(ctx, "retire-grant", async (op) => {
      const grantId = checkGrantId(request.grantId);
      op.detail = `grant=${grantId}`;
      if (typeof request.keyId !== "string" || request.keyId === "") throw new KmsError("KMS.0204", "key_id is missing");
      op.keyId = request.keyId;
      const caller = await this.#caller(op);
      const entry = await this.#resolve(ctx.projectId, request.keyId);
      const grant = entry === undefined ? undefined : await this.#store.grants.get(ctx.projectId, entry.record.keyId, grantId);
      if (entry === undefined || grant === undefined) {
        if (entry !== undefined && await this.#store.grants.keyIdOf(ctx.projectId, grantId) !== undefined) throw new KmsError("KMS.2502", "the grant belongs to another key");
        throw new KmsError("KMS.2501", "no such grant on this key");
      }
      op.keyId = entry.record.keyId;
      if (!mayRetire(grant, ctx.principalId, caller.principal.domainId)) throw denied("only the grant's issuer, retiring principal or grantee (with retire-grant) may retire it");
      await this.#atomic(op, (audit) => this.#store.grants.delete(ctx.projectId, entry.record.keyId, grantId, { guard: GUARDS.removeGrant, audit }));
      return {};
    }, request?.keyId);
  }

  // ============================================================================================
  // Tags

  /** POST {key_id}/tags: sets one tag. KMS.0405/0406/0410/0411 fields, KMS.0409 too many, KMS.0211 default key. */
  createKeyTag(ctx: RequestContext, request: Api.CreateKeyTagRequest): Promise<Api.KeyTagsResult> {
    return this.#run(ctx, "create-key-tag", async (op) => {
      const tag = { key: checkTagKey(request.tag?.key), value: checkTagValue(request.tag?.value) };
      return this.#putTags(op, request.keyId, [tag]);
    }, request?.keyId);
  }

  /** DELETE {key_id}/tags/{key}: removes one tag (absent: nothing happens). */
  deleteKeyTag(ctx: RequestContext, request: Api.DeleteKeyTagRequest): Promise<Api.KeyTagsResult> {
    return this.#run(ctx, "delete-key-tag", async (op) => this.#deleteTags(op, request.keyId, [checkTagKeyToDelete(request.key)]), request?.keyId);
  }

  /** POST {key_id}/tags/action: create or delete tags in a batch. KMS.0404 action, KMS.0401 empty list. */
  batchKeyTags(ctx: RequestContext, request: Api.BatchKeyTagsRequest): Promise<Api.KeyTagsResult> {
    return this.#run(ctx, "batch-key-tags", async (op) => {
      if (request.action === "create") return this.#putTags(op, request.keyId, checkTags(request.tags));
      if (request.action === "delete") return this.#deleteTags(op, request.keyId, checkTagKeys(request.tags));
      throw new KmsError("KMS.0404", "action must be create or delete");
    }, request?.keyId);
  }

  /** GET {key_id}/tags. */
  listKeyTags(ctx: RequestContext, request: Api.KeyRequest): Promise<Api.KeyTagsResult> {
    return this.#run(ctx, "list-key-tags", async (op) => {
      const entry = await this.#authorizeKey(op, request.keyId);
      const tags = await this.#store.tags.list(ctx.projectId, entry.record.keyId);
      return { tags: tags.map(({ key, value }) => ({ key, value })) };
    }, request?.keyId);
  }

  /**
   * resource_instances/action (Huawei ListKmsByTags): the project's keys meeting tag and alias
   * conditions (tag-query.ts), in creation order; `filter` gives a page (offset, limit), `count`
   * the number only. KMS.0204/0404 action, KMS.1601 limit, KMS.1602 offset.
   */
  listKeysByTags(ctx: RequestContext, request: Api.ListKeysByTagsRequest): Promise<Api.ListKeysByTagsResult> {
    return this.#run(ctx, "list-keys-by-tags", async (op) => {
      const action: unknown = request?.action;
      if (action === undefined || action === null || action === "") throw new KmsError("KMS.0204", "action is missing");
      if (action !== "filter" && action !== "count") throw new KmsError("KMS.0404", "action must be filter or count");
      // Huawei's default page for filter is 10 keys, not the 1000 of its other lists.
      const limit = integerField(request.limit, "limit", "KMS.1601") ?? 10;
      if (limit < 1 || limit > 1000) throw new KmsError("KMS.1601", "limit must be 1..1000");
      const offset = integerField(request.offset, "offset", "KMS.1602") ?? 0;
      if (offset < 0) throw new KmsError("KMS.1602", "offset must be 0 or more");
      const query = tagQuery(request);
      await this.#authorize(op);
      // One read for every tag of the project (at most tagsPerKey a key), then the keys page by page.
      const tagsByKey = await this.#store.tags.listProjectByKey(ctx.projectId);
      const keys: Api.KeyByTags[] = [];
      let totalCount = 0;
      let marker: string | undefined;
      for (;;) {
        const page = await this.#store.keys.list(ctx.projectId, { limit: 1000, marker });
        for (const key of page.items) {
          const tags = tagsByKey.get(key.keyId) ?? [];
          if (!matchesTagQuery(query, key.alias, new Map(tags.map((tag) => [tag.key, tag.value])))) continue;
          if (action === "filter" && totalCount >= offset && keys.length < limit) {
            keys.push({ keyId: key.keyId, details: keyDetails(key, this.#config.tunables.realm), tags: tags.map(({ key: k, value }) => ({ key: k, value })) });
          }
          totalCount++;
        }
        if (page.nextMarker === null) break;
        marker = page.nextMarker;
      }
      return action === "count" ? { totalCount } : { keys, totalCount };
    });
  }

  /** GET tags: every tag key used in the project, with its values. */
  listProjectTags(ctx: RequestContext): Promise<Api.ProjectTagsResult> {
    return this.#run(ctx, "list-project-tags", async (op) => {
      await this.#authorize(op);
      return { tags: await this.#store.tags.listProject(ctx.projectId) };
    });
  }

  // ============================================================================================
  // Usage and audit

  /** The key's usage records: successful operations by action, and their last time. */
  getKeyUsage(ctx: RequestContext, request: Api.KeyRequest): Promise<UsageRecord[]> {
    return this.#run(ctx, "key-usage", async (op) => {
      const entry = await this.#authorizeKey(op, request.keyId);
      return this.#store.usage.get(ctx.projectId, entry.record.keyId);
    }, request?.keyId);
  }

  /** The project's audit records matching the filter (auditors). */
  queryAuditLog(ctx: RequestContext, filter: Omit<AuditQuery, "projectId"> = {}): Promise<AuditPage> {
    return this.#run(ctx, "query-audit-log", async (op) => {
      await this.#authorize(op);
      return this.#store.audit.query({ ...filter, projectId: ctx.projectId });
    });
  }

  /** Writes the project's audit records as JSON lines to `out` (a selection: verifiable only as part of the whole log). */
  exportAuditLog(ctx: RequestContext, out: AuditSink, filter: Omit<AuditQuery, "projectId" | "afterSeq" | "limit"> = {}): Promise<number> {
    return this.#run(ctx, "export-audit-log", async (op) => {
      await this.#authorize(op);
      return this.#store.audit.export(out, { ...filter, projectId: ctx.projectId });
    });
  }

  /** Verifies the whole audit log (chain and MACed checkpoints): intact, or the first bad record. */
  verifyAuditLog(ctx: RequestContext, options: VerifyOptions = {}): Promise<AuditVerification> {
    return this.#run(ctx, "verify-audit-log", async (op) => {
      await this.#authorize(op);
      await this.#store.audit.checkpoint();
      return this.#store.audit.verify(options);
    });
  }

  // ============================================================================================
  // Sweepers (the server calls them periodically)

  /**
   * Deletes the keys whose scheduled deletion date has passed (deletion.ts): versions, tags,
   * grants and usage go with the key, their ciphertexts become undecryptable for good. At most
   * `sweepBatch` keys per call; call again while `done` is full. A key that cannot be deleted now
   * (the token fails to destroy a version, the store fails) is reported in `skipped` and through
   * `warn`, stays pending deletion, and is tried again by the next call; the others go on.
   */
  async deleteDueKeys(): Promise<SweepReport> {
    this.#checkOpen();
    const now = this.#deletionNow();
    const report: SweepReport = { done: [], skipped: [] };
    for (const ref of await this.#store.keys.listDueForDeletion(now, this.#config.tunables.sweepBatch)) {
      try {
        await this.#deleteKey(ref, now);
        report.done.push(ref.keyId);
      } catch (error) {
        const reason = error instanceof KmsError ? error.code : String(error);
        report.skipped.push({ keyId: ref.keyId, reason });
        // A deletion cancelled (or cancelled and scheduled again) since the query is no failure: KMS.1501.
        if (!(error instanceof KmsError && error.code === "KMS.1501")) {
          this.#warn(`hsmkit KMS: key ${ref.projectId}/${ref.keyId}, due for deletion, was not deleted (${reason}); it stays pending deletion and the next sweep tries again`);
        }
      }
    }
    return report;
  }

  /**
   * The time keys are due for deletion by: the earlier of the wall clock and the wall clock as it
   * was when the Kms was made plus the time since on the monotonic clock. Destruction cannot be
   * undone, and a wall clock stepped forward (an NTP step, a VM restored with a wrong clock) would
   * otherwise make keys due for deletion days or months early — all the days their owners had to
   * cancel it. A wall clock that was behind and is corrected forward only delays deletions until
   * the next restart, which errs on the safe side. Warns, once per hour of difference, when the
   * wall clock runs more than a minute ahead.
   */
  #deletionNow(): number {
    const wall = this.#now();
    const steady = this.#wallAtStart + (this.#monotonic() - this.#monotonicAtStart);
    const ahead = wall - steady;
    if (ahead > CLOCK_AHEAD_WARN_MS && Math.abs(ahead - this.#aheadWarned) >= CLOCK_AHEAD_REWARN_MS) {
      this.#aheadWarned = ahead;
      this.#warn(`hsmkit KMS: the system clock is ${Math.round(ahead / 1000)} s ahead of the time elapsed since the service started; `
        + "scheduled key deletions wait for the elapsed time (check the clock and NTP; a restart takes the clock as it is then)");
    }
    return Math.min(wall, steady);
  }

  /**
   * Deletes one due key (deletion.ts): the token's copies of its versions first, so that a token
   * failing leaves the key pending deletion with its versions listed for the next sweep (state 4
   * refuses every use meanwhile); destroyVersion is idempotent, so versions destroyed by an earlier
   * attempt are no matter. Every version is tried before the first failure is thrown. The store
   * destroys the key only if it is still due by `now`: a deletion cancelled and scheduled again
   * since the key was listed is carried out at its new date.
   */
  async #deleteKey(ref: { projectId: string; keyId: string; deletionDate: number }, now: number): Promise<void> {
    // The cached record is dropped once, after the store has decided (a key pending deletion is
    // refused every use meanwhile, cached or not).
    try {
      const versions = await this.#store.keys.listVersions(ref.projectId, ref.keyId);
      let failure: { error: unknown } | undefined;
      for (const version of versions) {
        try {
          this.#backend.destroyVersion(versionId(ref.projectId, ref.keyId, version.version));
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure !== undefined) throw failure.error;
      await this.#store.keys.destroy(ref.projectId, ref.keyId, {
        guard: GUARDS.destroy,
        dueBy: now,
        audit: this.#systemEvent("deleteKey", ref.projectId, ref.keyId, `scheduled for ${new Date(ref.deletionDate).toISOString()}`),
      });
    } finally {
      this.#cache.invalidate(ref.projectId, ref.keyId);
    }
  }

  /**
   * Rotates the enabled keys whose rotation is enabled and due (rotation.ts), across projects: a
   * new version each, audited as autoRotateKey (reason=schedule). Reads every project's keys a page
   * at a time; rotates at most `sweepBatch` keys per call.
   */
  async rotateDueKeys(): Promise<SweepReport> {
    this.#checkOpen();
    const now = this.#now();
    const report: SweepReport = { done: [], skipped: [] };
    for (const ref of await this.#store.keys.listDueForRotation(now, this.#config.tunables.sweepBatch)) {
      try {
        const key = await this.#store.keys.get(ref.projectId, ref.keyId);
        // Changed since the query (disabled, rotated, deleted): not due any more.
        if (key === undefined || key.state !== 2 || !rotationDue(key, now)) continue;
        const entry = (await this.#entry(key.projectId, key.keyId)) ?? this.#makeEntry(key, undefined);
        // Only if the key is still as read here: a rotation, a disabled rotation or key, acknowledged
        // meanwhile, leaves it not due (or due later), as the next sweep will see.
        const { key: rotated } = await this.#rollover(entry, this.#systemEvent("autoRotateKey", key.projectId, key.keyId, "reason=schedule"), key.revision);
        if (rotated !== undefined) report.done.push(key.keyId);
      } catch (error) {
        report.skipped.push({ keyId: ref.keyId, reason: error instanceof KmsError ? error.code : String(error) });
      }
    }
    return report;
  }


  // ============================================================================================
  // Administration: projects, principals, roles (for the server's bootstrap and the CLI)

  readonly admin = {
    /** Creates a project of an account (KMS.0308 when it exists). */
    createProject: (project: { projectId: string; domainId: string; name?: string }, by: Api.AdminContext = {}): Promise<ProjectRecord> =>
      this.#adminWrite(by, "createProject", project.projectId, (audit) =>
        this.#store.projects.create({ projectId: project.projectId, domainId: project.domainId, name: project.name ?? project.projectId, createdAt: this.#now() }, { audit })),
    /** Creates a principal (a user of an account). */
    createPrincipal: async (principal: { principalId: string; domainId: string; name?: string }, by: Api.AdminContext = {}): Promise<PrincipalRecord> => {
      try {
        return await this.#adminWrite(by, "createPrincipal", null, (audit) =>
          this.#store.principals.create({ principalId: principal.principalId, domainId: principal.domainId, name: principal.name ?? principal.principalId, createdAt: this.#now() }, { audit }),
        `principal=${principal.principalId}`);
      } finally {
        this.#access.invalidate(principal.principalId);
      }
    },
    /** Gives a principal an AK/SK credential (its SK sealed by the caller: store/secrets.ts). KMS.0308 for an unknown principal or a taken AK. */
    createCredential: (credential: NewCredential, by: Api.AdminContext = {}): Promise<CredentialRecord> =>
      this.#adminWrite(by, "createCredential", null, (audit) => this.#store.principals.createCredential(credential, { audit }),
        `principal=${credential.principalId} ak=${credential.accessKey}`),
    /** Enables or disables a principal (a disabled one is refused everything). */
    setPrincipalDisabled: async (principalId: string, disabled: boolean, by: Api.AdminContext = {}): Promise<PrincipalRecord> => {
      try {
        return await this.#adminWrite(by, disabled ? "disablePrincipal" : "enablePrincipal", null, (audit) =>
          this.#store.principals.update(principalId, { disabled }, { audit }), `principal=${principalId}`);
      } finally {
        this.#access.invalidate(principalId);
      }
    },
    /** Gives a principal a role in a project (idempotent). */
    addRole: async (principalId: string, projectId: string, role: Role, by: Api.AdminContext = {}): Promise<RoleRecord> => {
      if (!(ROLES as readonly string[]).includes(role)) throw new KmsError("KMS.0308", `role must be one of ${ROLES.join(", ")}`);
      try {
        return await this.#adminWrite(by, "addRole", projectId, (audit) => this.#store.principals.addRole(principalId, projectId, role, { audit }),
          `principal=${principalId} role=${role}`);
      } finally {
        this.#access.invalidate(principalId);
      }
    },
    /** Takes a role away; returns whether it was held. */
    removeRole: async (principalId: string, projectId: string, role: Role, by: Api.AdminContext = {}): Promise<boolean> => {
      try {
        return await this.#adminWrite(by, "removeRole", projectId, (audit) => this.#store.principals.removeRole(principalId, projectId, role, { audit }),
          `principal=${principalId} role=${role}`);
      } finally {
        this.#access.invalidate(principalId);
      }
    },
  };

  // ============================================================================================
  // The request machinery

  #checkOpen(): void {
    if (this.#closed) throw new KmsError("KMS.0101", "the Kms is closed");
  }

  /**
   * Runs one request: the body decides, then the audit record is appended (unless the store
   * appended it with the request's write) and committed before the promise settles. A request whose
   * success record cannot be committed fails (its result is not released).
   *
   * A body may answer synchronously (the hot paths: a cached key, a cached caller): the request
   * then costs one promise, the audit commit's, instead of an async body's and its await.
   */
  #run<T>(ctx: RequestContext, operation: KmsOperation, body: (op: Op) => T | Promise<T>, ref?: unknown): Promise<T> {
    let op: Op;
    try {
      this.#checkOpen();
      checkRequestContext(ctx);
      op = new Op(ctx, operation, this.#now());
    } catch (error) {
      return Promise.reject(error);
    }
    // The key as the request names it, until it is resolved: failures before that are recorded with it.
    if (typeof ref === "string" && ref.length > 0 && ref.length <= 255) op.keyId = ref;
    let value: T | Promise<T>;
    try {
      value = body(op);
    } catch (error) {
      return this.#failed(op, error);
    }
    if (value instanceof Promise) return value.then((result: T) => this.#succeeded(op, result), (error: unknown) => this.#failed(op, error));
    return this.#succeeded(op, value);
  }

  /** The request's result, once its success record has committed. */
  #succeeded<T>(op: Op, result: T): Promise<T> {
    if (op.audited) return Promise.resolve(result);
    let committed: Promise<void>;
    try {
      committed = this.#record(op, "success", null);
    } catch (error) {
      return Promise.reject(asKmsError(error));
    }
    return committed.then(() => result, rethrowAsKmsError);
  }

  /** The request's failure, as a KmsError, after its record (denied or failed) was written if it could be. */
  async #failed(op: Op, error: unknown): Promise<never> {
    const failure = asKmsError(error);
    if (!op.audited) {
      try {
        await this.#record(op, isDenial(failure) ? "denied" : "failure", failure.code);
      } catch (auditError) {
        this.#warn(`hsmkit KMS: the audit record of a failed ${op.action} (request ${op.ctx.requestId}) was not written: ${(auditError as Error).message}`);
      }
    }
    throw failure;
  }

  /** Appends the request's record (and those of further keys it used). */
  #record(op: Op, outcome: AuditOutcome, errorCode: string | null): Promise<void> {
    const main = this.#store.audit.record(op.event(), outcome, errorCode);
    if (op.also === null) return main;
    return Promise.all([main, ...op.also.map((extra) => this.#store.audit.record({ ...op.event(), keyId: extra.keyId, detail: extra.detail }, outcome, errorCode))])
      .then(() => undefined);
  }

  /**
   * A store write that appends the request's audit record in its own transaction: after it
   * settles with success or a KmsError, the record is in the log and #run appends none.
   */
  async #atomic<T>(op: Op, write: (audit: AuditEvent) => Promise<T>): Promise<T> {
    try {
      const value = await write(op.event());
      op.audited = true;
      return value;
    } catch (error) {
      if (error instanceof KmsError || failureAudited(error)) op.audited = true;
      throw error;
    }
  }

  /** The caller (cached on the request). */
  async #caller(op: Op): Promise<Caller> {
    op.caller ??= this.#access.cached(op.ctx.principalId, op.ctx.projectId) ?? await this.#access.caller(op.ctx.principalId, op.ctx.projectId);
    return op.caller;
  }

  /** A request on no key: the caller's roles must allow the operation. */
  async #authorize(op: Op): Promise<Caller> {
    const caller = await this.#caller(op);
    if (!this.#access.roleAllows(caller, op.operation)) throw denied(`no role of ${caller.principal.principalId} in the project allows ${op.operation}`);
    return caller;
  }

  /**
   * A request on one key (`ref`: key id or alias): a role allowing the operation, then the key
   * (missing: `missing`, default KMS.0207 — or a default key made now, for sealing requests); or
   * else a grant on the key allowing `grant` (default: the operation's). Refusals are KMS.0306
   * whether the key exists or not. Sets the request's audit key id.
   */
  async #authorizeKey(
    op: Op,
    ref: string | undefined,
    options: { createDefault?: boolean; grant?: GrantOperation | null; missing?: KmsErrorCode } = {},
  ): Promise<KeyEntry> {
    const { projectId, service } = op.ctx;
    let reference = ref;
    if (reference === undefined || reference === "") {
      if (options.createDefault === true && service !== undefined) reference = defaultAlias(service);
      else throw new KmsError("KMS.0204", "key_id is missing");
    }
    if (typeof reference !== "string") throw new KmsError("KMS.0205");
    op.keyId = reference;
    const caller = await this.#caller(op);
    if (this.#access.roleAllows(caller, op.operation)) {
      let entry = await this.#resolve(projectId, reference);
      if (entry === undefined && options.createDefault === true && !UUID.test(reference)) {
        const defaultService = defaultKeyService(reference) ?? defaultKeyService(aliasReference(reference) ?? "");
        if (defaultService !== undefined) entry = await this.#createDefaultKey(op, caller, defaultService);
      }
      if (entry === undefined) throw new KmsError(options.missing ?? "KMS.0207");
      op.keyId = entry.record.keyId;
      return entry;
    }
    const grant = options.grant !== undefined ? options.grant : OPERATIONS[op.operation].grant;
    if (grant !== null) {
      const entry = await this.#resolve(projectId, reference);
      if (entry !== undefined && await this.#access.grantAllows(caller, projectId, entry.record.keyId, grant)) {
        op.keyId = entry.record.keyId;
        return entry;
      }
    }
    throw denied(`neither a role nor a grant of ${caller.principal.principalId} allows ${op.operation} on this key`);
  }

  /**
   * #authorizeKey's answer without a promise when everything is at hand — the caller cached and
   * allowed by a role, the key cached under the id the request names — as for nearly every request
   * on a hot key; undefined otherwise (then #authorizeKey decides, refusals included).
   */
  #authorizeKeyNow(op: Op, ref: unknown): KeyEntry | undefined {
    if (typeof ref !== "string" || ref === "") return undefined;
    const caller = op.caller ?? this.#access.cached(op.ctx.principalId, op.ctx.projectId);
    if (caller === undefined || !this.#access.roleAllows(caller, op.operation)) return undefined;
    const entry = this.#cache.get(op.ctx.projectId, ref);
    if (entry === undefined) return undefined;
    op.caller = caller;
    op.keyId = entry.record.keyId;
    return entry;
  }

  /**
   * The key a reference names in the project, or undefined: a key id, an alias, or `alias/<alias>`
   * as OTC also accepts (kms-apis.md §1.2) — an alias that itself begins with "alias/" is found
   * first. KMS.0205 for a reference that can be none of them.
   */
  async #resolve(projectId: string, ref: string): Promise<KeyEntry | undefined> {
    if (UUID.test(ref)) return this.#entry(projectId, ref.toLowerCase());
    if (!ALIAS_REF.test(ref)) throw new KmsError("KMS.0205", "key_id must be a key id (UUID) or an alias");
    const exact = await this.#byAlias(projectId, ref);
    const bare = aliasReference(ref);
    return exact !== undefined || bare === undefined ? exact : this.#byAlias(projectId, bare);
  }

  async #byAlias(projectId: string, alias: string): Promise<KeyEntry | undefined> {
    const cachedId = this.#cache.aliasToKeyId(projectId, alias);
    if (cachedId !== undefined) {
      const entry = this.#cache.get(projectId, cachedId);
      if (entry !== undefined && entry.record.alias === alias) return entry;
    }
    const record = await this.#store.keys.getByAlias(projectId, alias);
    return record === undefined ? undefined : this.#entry(projectId, record.keyId);
  }

  /** The key's cache entry, loaded (record and current version in one read) on a miss. */
  async #entry(projectId: string, keyId: string): Promise<KeyEntry | undefined> {
    const cached = this.#cache.get(projectId, keyId);
    if (cached !== undefined) return cached;
    const epoch = this.#cache.epoch;
    const found = await this.#store.keys.getForUse(projectId, keyId);
    if (found === undefined) return undefined;
    const entry = this.#makeEntry(found.key, found.version);
    this.#cache.set(entry, epoch);
    return entry;
  }

  #makeEntry(record: KeyRecord, version: KeyVersionRecord | undefined): KeyEntry {
    const versions = new Map<number, LoadedVersion>();
    let current: LoadedVersion | undefined;
    if (version !== undefined) {
      current = versionRef(record.projectId, record.keyId, version.version, version.material);
      versions.set(version.version, current);
    }
    return { record, current, versions, seals: undefined, rotating: null };
  }

  /** A version of a key (loaded on first use), or undefined when it does not exist. */
  async #version(entry: KeyEntry, number: number): Promise<LoadedVersion | undefined> {
    const loaded = entry.versions.get(number);
    if (loaded !== undefined) return loaded;
    if (number < 1 || number > entry.record.currentVersion) return undefined;
    const { projectId, keyId } = entry.record;
    const record = await this.#store.keys.getVersion(projectId, keyId, number);
    if (record === undefined) return undefined;
    const ref = versionRef(projectId, keyId, number, record.material);
    entry.versions.set(number, ref);
    return ref;
  }

  /** Makes the project's record on its first key (so the rotation sweeper finds it); returns its account. */
  #ensureProject(op: Op, caller: Caller): Promise<string> {
    const projectId = op.ctx.projectId;
    const known = this.#projects.get(projectId);
    if (known !== undefined) return Promise.resolve(known);
    // Concurrent first uses share one creation: racing it, all but one would append a
    // createProject "failure" (project exists) to the audit log for a request that succeeds.
    let creating = this.#projectsCreating.get(projectId);
    if (creating === undefined) {
      creating = this.#createProject(op, caller).finally(() => this.#projectsCreating.delete(projectId));
      this.#projectsCreating.set(projectId, creating);
    }
    return creating;
  }

  async #createProject(op: Op, caller: Caller): Promise<string> {
    const projectId = op.ctx.projectId;
    let project = await this.#store.projects.get(projectId);
    if (project === undefined) {
      try {
        project = await this.#store.projects.create({ projectId, domainId: caller.principal.domainId, name: projectId, createdAt: this.#now() }, {
          audit: { ...op.event(), action: "createProject", keyId: null, detail: "first key of the project" },
        });
      } catch (error) {
        // Made meanwhile (admin.createProject).
        project = await this.#store.projects.get(projectId);
        if (project === undefined) throw error;
      }
    }
    this.#projects.set(projectId, project.domainId);
    return project.domainId;
  }

  /** `<service>/default`, made now (or the one a concurrent first use made). */
  async #createDefaultKey(op: Op, caller: Caller, service: DefaultKeyService): Promise<KeyEntry> {
    const { projectId } = op.ctx;
    const domainId = await this.#ensureProject(op, caller);
    const keyId = randomUUID();
    const wrapped = this.#backend.createVersionKey();
    const now = this.#now();
    const record = await this.#store.keys.create({
      projectId, keyId, domainId, alias: defaultAlias(service), description: defaultKeyDescription(service), keySpec: "AES_256",
      keyUsage: "ENCRYPT_DECRYPT", origin: "kms", state: 2, defaultKey: true, createdAt: now,
    }, {
      version: { material: encodeMaterial(wrapped, 0), createdAt: now },
      existingAlias: "return",
      audit: { ...op.event(), action: "createKey", keyId, detail: `default key ${defaultAlias(service)}, on first use by ${op.action}` },
    });
    const entry = await this.#entry(projectId, record.keyId);
    if (entry === undefined) throw new KmsError("KMS.0101", "a default key just created cannot be read");
    return entry;
  }

  /** A lifecycle change of one key (role or grant checked, the guard checked in the store's transaction, audited with it). */
  async #changeKey(op: Op, ref: string, patch: Parameters<KmsStore["keys"]["update"]>[2], guard: (typeof GUARDS)[keyof typeof GUARDS]): Promise<KeyRecord> {
    const entry = await this.#authorizeKey(op, ref);
    const { projectId, keyId } = entry.record;
    try {
      return await this.#atomic(op, (audit) => this.#store.keys.update(projectId, keyId, patch, { guard, audit }));
    } finally {
      this.#cache.invalidate(projectId, keyId);
    }
  }

  async #putTags(op: Op, ref: string, tags: Array<{ key: string; value: string }>): Promise<Api.KeyTagsResult> {
    const entry = await this.#authorizeKey(op, ref);
    op.detail = clipDetail(`set ${tags.map((tag) => tag.key).join(",")}`);
    const after = await this.#atomic(op, (audit) => this.#store.tags.put(op.ctx.projectId, entry.record.keyId, tags, {
      guard: GUARDS.tags, maxTagsPerKey: this.#config.limits.tagsPerKey, audit,
    }));
    return { tags: after.map(({ key, value }) => ({ key, value })) };
  }

  async #deleteTags(op: Op, ref: string, keys: string[]): Promise<Api.KeyTagsResult> {
    const entry = await this.#authorizeKey(op, ref);
    op.detail = clipDetail(`delete ${keys.join(",")}`);
    await this.#atomic(op, (audit) => this.#store.tags.delete(op.ctx.projectId, entry.record.keyId, keys, { guard: GUARDS.untag, audit }));
    const after = await this.#store.tags.list(op.ctx.projectId, entry.record.keyId);
    return { tags: after.map(({ key, value }) => ({ key, value })) };
  }

  /** The status of a key's rotation, with its versions. */
  async #rotationStatus(record: KeyRecord): Promise<KeyRotationStatus> {
    const versions = await this.#store.keys.listVersions(record.projectId, record.keyId);
    return {
      keyRotationEnabled: reportedRotationEnabled(record),
      rotationInterval: record.rotationIntervalDays,
      lastRotationTime: record.lastRotatedAt,
      numberOfRotations: record.rotationCount,
      keyMaterials: versions.map((version) => ({ version: version.version, createdAt: version.createdAt, current: version.version === record.currentVersion })),
    };
  }

  /**
   * Opens a blob for decrypt-data / decrypt-datakey / re-encrypt's source. A key the request names
   * (`named`) is looked up first, as for any keyed request (KMS.0207 when missing), and the blob
   * must then be that key's; otherwise the blob's own key is used, and a missing one is the opaque
   * KMS.2201 like every other fault of the blob (see decryptData).
   */
  #open(
    op: Op, blob: Uint8Array, purpose: CiphertextPurpose, named: string | undefined, context: BoundContext, grant?: GrantOperation,
  ): Opened | Promise<Opened> {
    // The caller's own fields first: an invalid one is KMS.0208/0308 whatever the blob names.
    const binding = bindForOpen(purpose, context);
    const access = grant === undefined ? {} : { grant };
    if (named !== undefined && named !== "") {
      return andThen(this.#authorizeKeyNow(op, named) ?? this.#authorizeKey(op, named, access), (entry) => {
        const parsed = parseBlob(blob);
        if (parsed.keyId !== entry.record.keyId) throw new KmsError("KMS.2201", "the ciphertext is not the named key's");
        return this.#openWith(entry, parsed, binding);
      });
    }
    const parsed = parseBlob(blob);
    op.keyId = parsed.keyId;
    return andThen(this.#authorizeKeyNow(op, parsed.keyId) ?? this.#authorizeKey(op, parsed.keyId, { ...access, missing: "KMS.2201" }),
      (entry) => this.#openWith(entry, parsed, binding));
  }

  /** Opens a parsed blob with its (authorized) key's version. */
  #openWith(entry: KeyEntry, parsed: ParsedBlob, binding: OpenBinding): Opened | Promise<Opened> {
    checkGuard(entry.record, GUARDS.use);
    return andThen(entry.versions.get(parsed.version) ?? this.#version(entry, parsed.version), (version) => {
      if (version === undefined) throw new KmsError("KMS.2201", "the blob names no version available to the caller");
      return { entry, plaintext: this.#envelope.openParsed(parsed, binding, version).plaintext };
    });
  }

  /** create-datakey's work: the size, the key, a DEK from the token, sealed. */
  #newDataKey(op: Op, request: Api.CreateDataKeyRequest): NewDataKey | Promise<NewDataKey> {
    const hasLength = request.datakeyLength !== undefined && request.datakeyLength !== "";
    // Huawei's model: with both, datakey_length decides; with both empty, a 256-bit key.
    let bytes: number;
    if (hasLength) {
      bytes = bitsToBytes(request.datakeyLength, "datakey_length", "KMS.1901", "KMS.1903");
    } else {
      const spec = request.keySpec === undefined || request.keySpec === "" ? "AES_256" : request.keySpec;
      const size = DATAKEY_SPECS.get(spec);
      if (size === undefined) throw new KmsError("KMS.1902");
      bytes = size;
    }
    return andThen(this.#authorizeKeyNow(op, request.keyId) ?? this.#authorizeKey(op, request.keyId, { createDefault: true }), (entry) => {
      checkGuard(entry.record, GUARDS.use);
      const context = bound(request.additionalAuthenticatedData, request.encryptionContext);
      const dek = this.#backend.random(bytes);
      const keyId = entry.record.keyId;
      const forget = (error: unknown): never => {
        dek.fill(0);
        throw error;
      };
      let sealed: Buffer | Promise<Buffer>;
      try {
        sealed = this.#sealNow(entry, "datakey", dek, context) ?? this.#seal(op, entry, "datakey", dek, context);
      } catch (error) {
        return forget(error);
      }
      return sealed instanceof Promise ? sealed.then((cipherText) => ({ keyId, dek, cipherText }), forget) : { keyId, dek, cipherText: sealed };
    });
  }


  /**
   * Seals under the key's current version, adding a version first when the current one has made
   * sealsPerVersion seals (versions.ts). The check and the count happen in one synchronous step, so
   * concurrent requests cannot all slip past the limit.
   */
  async #seal(op: Op, start: KeyEntry, purpose: CiphertextPurpose, plaintext: Uint8Array, context: BoundContext): Promise<Buffer> {
    let entry = start;
    const limit = this.#config.tunables.sealsPerVersion;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (entry.seals === undefined) {
        const seals = sealsFromUsage(await this.#store.usage.get(entry.record.projectId, entry.record.keyId));
        entry.seals ??= seals;
      }
      const current = entry.current;
      if (current === undefined) throw new KmsError("KMS.1301", "the key has no material");
      if (entry.seals - current.sealBaseline < limit) {
        const blob = this.#envelope.seal({ keyId: entry.record.keyId, version: entry.record.currentVersion, key: current }, purpose, plaintext, context);
        entry.seals++;
        return blob;
      }
      // Another request may have added the version already (this entry is then stale).
      const latest = this.#cache.get(entry.record.projectId, entry.record.keyId);
      if (latest !== undefined && latest !== entry && latest.record.currentVersion > entry.record.currentVersion) entry = latest;
      // Only on the key as this entry knows it: if it changed meanwhile (another entry's request may
      // have added a version already), the loop decides again on the fresh entry.
      else entry = (await this.#rollover(entry, { ...op.event(), action: "autoRotateKey", keyId: entry.record.keyId, detail: "reason=seal-limit" }, entry.record.revision)).fresh;
      checkGuard(entry.record, GUARDS.use);
    }
    throw new KmsError("KMS.0101", "the key's current version reached its seal limit and no new version could be added");
  }

  /** #seal without a promise when the key's seal count is known and its current version has room: the usual case. */
  #sealNow(entry: KeyEntry, purpose: CiphertextPurpose, plaintext: Uint8Array, context: BoundContext): Buffer | undefined {
    const current = entry.current;
    if (entry.seals === undefined || current === undefined || entry.seals - current.sealBaseline >= this.#config.tunables.sealsPerVersion) return undefined;
    const blob = this.#envelope.seal({ keyId: entry.record.keyId, version: entry.record.currentVersion, key: current }, purpose, plaintext, context);
    entry.seals++;
    return blob;
  }

  /** A version added by the service (seal limit, schedule) if the key is still at `revision`: one at a time per entry. */
  #rollover(entry: KeyEntry, audit: AuditEvent, revision: number): Promise<VersionAdded> {
    if (entry.rotating !== null) return entry.rotating;
    const rotating = this.#addVersion(entry, GUARDS.autoRotate, (write) => write(audit), revision);
    entry.rotating = rotating;
    const clear = (): void => {
      entry.rotating = null;
    };
    rotating.then(clear, clear);
    return rotating;
  }

  /**
   * Adds a version to the key: generated in the token, wrapped, stored with the key's seal count
   * as its baseline (versions.ts), made current in one transaction guarded by `guard` — and, given
   * `ifRevision`, only if the key has not changed since (store.ts AddVersionOptions). Returns the
   * key as the new version left it (undefined when the key had changed and none was added) and the
   * key's fresh entry.
   */
  async #addVersion(
    entry: KeyEntry, guard: (typeof GUARDS)[keyof typeof GUARDS], write: <T>(body: (audit: AuditEvent) => Promise<T>) => Promise<T>, ifRevision?: number,
  ): Promise<VersionAdded> {
    const { projectId, keyId } = entry.record;
    const seals = entry.seals ?? sealsFromUsage(await this.#store.usage.get(projectId, keyId));
    const wrapped = this.#backend.createVersionKey();
    let key: KeyRecord | undefined;
    let refused: { error: unknown } | undefined;
    try {
      ({ key } = await write((audit) => this.#store.keys.addVersion(projectId, keyId, { material: encodeMaterial(wrapped, seals), createdAt: this.#now() }, { guard, audit, ifRevision })));
    } catch (error) {
      if (ifRevision === undefined) throw error;
      refused = { error };
    } finally {
      this.#cache.invalidate(projectId, keyId);
    }
    const fresh = await this.#entry(projectId, keyId);
    // A refusal on a key that has not changed is a real failure (its guard, the store), not a lost race.
    if (refused !== undefined && (fresh === undefined || fresh.record.revision === ifRevision)) throw refused.error;
    if (fresh === undefined) throw new KmsError("KMS.0207");
    fresh.seals ??= seals;
    return { key, fresh };
  }

  /** An audit event of the service's own (sweepers). */
  #systemEvent(action: string, projectId: string, keyId: string, detail: string): AuditEvent {
    return { time: this.#now(), requestId: `hsmkit-${randomUUID()}`, projectId, principalId: SYSTEM_PRINCIPAL, source: "scheduler", action, keyId, detail };
  }

  /** An administrative write with its audit record. */
  async #adminWrite<T>(by: Api.AdminContext, action: string, projectId: string | null, write: (audit: AuditEvent) => Promise<T>, detail?: string): Promise<T> {
    this.#checkOpen();
    const audit: AuditEvent = {
      time: this.#now(), requestId: by.requestId ?? `hsmkit-${randomUUID()}`, projectId, principalId: by.principalId ?? SYSTEM_PRINCIPAL,
      source: by.source ?? "library", action, keyId: null, detail: detail ?? null,
    };
    try {
      return await write(audit);
    } catch (error) {
      throw asKmsError(error);
    }
  }
}
