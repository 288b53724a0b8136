/**
 * The KMS's records: what the store keeps and hands back. Names are TypeScript's (camelCase);
 * the HTTP layer maps them to Huawei's wire fields (key_id, key_alias, key_state as a string …).
 *
 * Conventions for every record:
 * - Times are milliseconds since the Unix epoch (UTC), as integers.
 * - Identifiers are strings chosen by the caller (key ids are UUIDs, grant ids 64 hex digits)
 *   unless a method says it makes them.
 * - Every key-scoped record carries its projectId: a key is found by (projectId, keyId) only, so a
 *   key of another project is indistinguishable from a missing one.
 * - Records are plain data (structured-clonable): they cross the store's writer thread as they are.
 */

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * Huawei's numeric key states (huaweicloudsdkkms `key_details.py`; shared/reference/kms-apis.md
 * §1.3). 7 (frozen) exists at Huawei but hsmkit never enters it.
 */
export const KEY_STATE = {
  PENDING_ACTIVATION: 1,
  ENABLED: 2,
  DISABLED: 3,
  PENDING_DELETION: 4,
  PENDING_IMPORT: 5,
} as const;

export type KeyState = (typeof KEY_STATE)[keyof typeof KEY_STATE];

/** Every KeyState, ascending. */
export const KEY_STATES: readonly KeyState[] = [1, 2, 3, 4, 5];

/** key_spec values hsmkit creates (Huawei lists more; asymmetric specs are not implemented). */
export type KeySpec = "AES_256";

/** key_usage values hsmkit creates. */
export type KeyUsage = "ENCRYPT_DECRYPT";

/** origin: "kms" (material generated in the token) or "external" (imported; starts pending import). */
export type KeyOrigin = "kms" | "external";

/** A customer master key (CMK) or default key: its metadata, never its material. */
export interface KeyRecord {
  projectId: string;
  /** UUID, lowercase. */
  keyId: string;
  /** The owning account (Huawei domain_id). */
  domainId: string;
  /** key_alias, unique within the project (default keys: "<service>/default"). */
  alias: string;
  /** key_description, 0–255 characters (checked by the service). */
  description: string;
  keySpec: KeySpec;
  keyUsage: KeyUsage;
  origin: KeyOrigin;
  state: KeyState;
  /** default_key_flag "1": a `<service>/default` key, outside the custom-key quota. */
  defaultKey: boolean;
  createdAt: number;
  /** Last change to any field here (state, alias, description, rotation, new version). */
  updatedAt: number;
  /** scheduled_deletion_date while state is 4 (pending deletion), else null. */
  deletionDate: number | null;
  rotationEnabled: boolean;
  /** rotation_interval in days (30–365, checked by the service); default 365. */
  rotationIntervalDays: number;
  /** When the newest version was added by a rotation; null before the first rotation. */
  lastRotatedAt: number | null;
  /**
   * When automatic rotation was last turned on: the first scheduled rotation is one interval after
   * it (rotation.ts). Null while rotation is off, and for keys whose rotation was turned on before
   * the store recorded it (migration 5), which count from their last rotation or creation.
   */
  rotationEnabledAt: number | null;
  /** number_of_rotations: versions added after the first. */
  rotationCount: number;
  /** Newest version number (what encryption uses); 0 while the key has no material (pending import). */
  currentVersion: number;
  /** Starts at 1 and grows by one with every change to the record: a cheap cache validator. */
  revision: number;
}

/** What keys.create needs; the store fills in the rest (times, revision, version counters). */
export interface NewKey {
  projectId: string;
  keyId: string;
  domainId: string;
  alias: string;
  description?: string;
  keySpec: KeySpec;
  keyUsage: KeyUsage;
  origin: KeyOrigin;
  state: KeyState;
  defaultKey: boolean;
  rotationEnabled?: boolean;
  rotationIntervalDays?: number;
  /** Default: now. */
  createdAt?: number;
}

/** The fields keys.update may change. Absent fields stay; deletionDate null clears it. */
export interface KeyPatch {
  state?: KeyState;
  alias?: string;
  description?: string;
  deletionDate?: number | null;
  rotationEnabled?: boolean;
  rotationIntervalDays?: number;
  /**
   * With rotationEnabled true: the time rotation counts from when this patch turns it on (default:
   * the write's time). Ignored when rotation was on already, so enabling it again does not postpone
   * the next rotation.
   */
  rotationEnabledAt?: number;
}

/**
 * One version of a key's material, as the backend stored it: `material` is opaque to the store —
 * the backend's wrapped form (AES-KWP under the token's root key, plus whatever header the backend
 * needs to unwrap it). It never holds plaintext key bytes.
 */
export interface KeyVersionRecord {
  projectId: string;
  keyId: string;
  /** 1, 2, … in order of creation; the ciphertext blob carries it (u32). */
  version: number;
  material: Buffer;
  createdAt: number;
}

export interface NewKeyVersion {
  material: Buffer;
  /** Default: now. */
  createdAt?: number;
}

/** A key named by project and id (the deletion sweeper's work list). */
export interface KeyRef {
  projectId: string;
  keyId: string;
  deletionDate: number;
}

// ---------------------------------------------------------------------------------------------
// Tags, grants

/** A tag on a key (Huawei: key ≤ 36 characters, value ≤ 43; at most 10 per key). */
export interface TagRecord {
  projectId: string;
  keyId: string;
  key: string;
  value: string;
}

/** Huawei's grant operations (create-grant `operations[]`). */
export const GRANT_OPERATIONS = [
  "create-datakey",
  "create-datakey-without-plaintext",
  "encrypt-datakey",
  "decrypt-datakey",
  "describe-key",
  "create-grant",
  "retire-grant",
  "encrypt-data",
  "decrypt-data",
] as const;

export type GrantOperation = (typeof GRANT_OPERATIONS)[number];

export type GranteePrincipalType = "user" | "domain";

/** A grant: `granteePrincipal` may perform `operations` on one key. */
export interface GrantRecord {
  projectId: string;
  keyId: string;
  /** 64 hex digits. */
  grantId: string;
  name: string | null;
  granteePrincipal: string;
  granteePrincipalType: GranteePrincipalType;
  operations: GrantOperation[];
  /** Who may retire the grant besides the grantee; null: nobody else. */
  retiringPrincipal: string | null;
  /** The principal that created it; null when unknown. */
  creator: string | null;
  createdAt: number;
}

export interface NewGrant {
  projectId: string;
  keyId: string;
  /** Default: 64 random hex digits made by the store. */
  grantId?: string;
  name?: string | null;
  granteePrincipal: string;
  granteePrincipalType: GranteePrincipalType;
  operations: GrantOperation[];
  retiringPrincipal?: string | null;
  creator?: string | null;
  createdAt?: number;
}

// ---------------------------------------------------------------------------------------------
// Projects, principals, credentials, roles

export interface ProjectRecord {
  projectId: string;
  /** The account owning the project (Huawei domain_id). */
  domainId: string;
  name: string;
  createdAt: number;
}

export interface NewProject {
  projectId: string;
  domainId: string;
  name: string;
  createdAt?: number;
}

/** Someone who signs requests: a user of an account. */
export interface PrincipalRecord {
  principalId: string;
  domainId: string;
  name: string;
  /** A disabled principal's credentials must be refused by the service. */
  disabled: boolean;
  createdAt: number;
}

export interface NewPrincipal {
  principalId: string;
  domainId: string;
  name: string;
  disabled?: boolean;
  createdAt?: number;
}

/**
 * A secret the store keeps only in sealed form: `blob` is the output of a SecretSealer (see
 * src/kms/store/secrets.ts), `sealer` names the sealer (scheme and key) that can open it.
 */
export interface SealedSecret {
  sealer: string;
  blob: Buffer;
}

export type CredentialStatus = "active" | "inactive";

/**
 * An AK/SK credential. Verifying an SDK-HMAC-SHA256 signature needs the SK itself (the signature is
 * HMAC-SHA256(SK, stringToSign)), so the SK cannot be stored as a one-way hash; it is stored
 * sealed, under a key the backend holds in the token.
 */
export interface CredentialRecord {
  /** The access key id (AK), public. */
  accessKey: string;
  principalId: string;
  /** The secret key (SK), sealed. */
  secret: SealedSecret;
  status: CredentialStatus;
  createdAt: number;
  /** null: never expires. */
  expiresAt: number | null;
  description: string;
}

export interface NewCredential {
  accessKey: string;
  principalId: string;
  secret: SealedSecret;
  status?: CredentialStatus;
  createdAt?: number;
  expiresAt?: number | null;
  description?: string;
}

/**
 * Roles a principal holds in a project (DESIGN.md "Projects and access"): key administration
 * (lifecycle, grants, tags, aliases), cryptographic use (encrypt, decrypt, data keys), audit
 * reading.
 */
export const ROLES = ["key_admin", "crypto_user", "auditor"] as const;

export type Role = (typeof ROLES)[number];

export interface RoleRecord {
  principalId: string;
  projectId: string;
  role: Role;
  createdAt: number;
}

// ---------------------------------------------------------------------------------------------
// Usage counters

/** How often one action succeeded on one key, and when it last did. */
export interface UsageRecord {
  projectId: string;
  keyId: string;
  action: string;
  count: number;
  lastUsedAt: number;
}

// ---------------------------------------------------------------------------------------------
// Audit

/**
 * Action names. The first group are Huawei's CTS event names for KMS (OTC
 * `umn/source/auditing_logs/operations_supported_by_cts.rst`; tag operations are all
 * "dealUnifiedTags" there). The second group names operations CTS does not list, in the same
 * style; they are hsmkit's.
 */
export const AUDIT_ACTIONS = [
  // Huawei CTS event names.
  "createKey",
  "createDataKey",
  "createDataKeyWithoutPlaintext",
  "enableKey",
  "disableKey",
  "encryptDatakey",
  "decryptDatakey",
  "scheduleKeyDeletion",
  "cancelKeyDeletion",
  "genRandom",
  "updateKeyAlias",
  "updateKeyDescription",
  "importKeyMaterial",
  "deleteImportedKeyMaterial",
  "createGrant",
  "retireGrant",
  "revokeGrant",
  "encryptData",
  "decryptData",
  "dealUnifiedTags",
  "enableKeyRotation",
  "updateKeyRotationInterval",
  "disableKeyRotation",
  // hsmkit names for operations CTS does not list.
  "describeKey",
  "listKeys",
  "reEncryptData",
  "rotateKeyOnDemand",
  "getKeyRotationStatus",
  "listGrants",
  "listRetirableGrants",
  "listKeyTags",
  "deleteKey",
] as const;

export type KnownAuditAction = (typeof AUDIT_ACTIONS)[number];

/** A known action, or another name of the same shape (letters and digits, 1–64, leading letter). */
export type AuditAction = KnownAuditAction | (string & {});

/**
 * success: done. failure: the request was allowed but failed (bad state, bad input, token error).
 * denied: authentication or authorization refused it.
 */
export type AuditOutcome = "success" | "failure" | "denied";

/** What the caller says about an operation; the outcome is added by the store (atomic writes) or by the caller. */
export interface AuditEvent {
  /** When the request arrived; default: when it was handed to the store. */
  time?: number;
  /** X-Request-Id. */
  requestId: string;
  /** null when the request named no project the caller may see (e.g. denied before that). */
  projectId: string | null;
  /** The authenticated principal; null when authentication failed. */
  principalId: string | null;
  /** Where the request came from: client address, "cli", "library". */
  source: string;
  action: AuditAction;
  /** null for operations on no key (genRandom, listKeys). */
  keyId: string | null;
  /** Short operator-facing context (a grant id, a new alias); never key material or plaintext. */
  detail?: string | null;
}

/** An AuditEvent with its outcome: what audit.append takes. */
export interface AuditInput extends AuditEvent {
  outcome: AuditOutcome;
  /** The KMS.XXXX code of a failure or denial; null on success. */
  errorCode?: string | null;
}

/** A record of the audit log, as stored and as exported. */
export interface AuditRecord {
  /** 1, 2, … without gaps, in commit order. */
  seq: number;
  time: number;
  requestId: string;
  projectId: string | null;
  principalId: string | null;
  source: string;
  action: string;
  keyId: string | null;
  outcome: AuditOutcome;
  errorCode: string | null;
  detail: string | null;
  /** SHA-256 chain value after this record (docs/kms-store.md "Audit chain"). */
  hash: Buffer;
}

/** Why a checkpoint was written. */
export type CheckpointReason = "count" | "interval" | "close" | "recovery" | "manual";

/** A MACed statement "the chain value after record `seq` is `hash`". */
export interface AuditCheckpoint {
  /** 1, 2, … without gaps. */
  index: number;
  seq: number;
  hash: Buffer;
  time: number;
  reason: CheckpointReason;
  /** MAC (token-held HMAC key) over the checkpoint's canonical encoding. */
  mac: Buffer;
}

/**
 * A checkpoint exported for keeping outside the database (another system, a ticket, a log
 * shipper): it lets verify() detect a log cut back to before it, which nothing inside the database
 * can. Hex strings, so it travels as JSON.
 */
export interface AuditAnchor {
  /** The log's identity (16 bytes, hex), made when the store was created. */
  logId: string;
  index: number;
  seq: number;
  hash: string;
  time: number;
  reason: CheckpointReason;
  mac: string;
}
