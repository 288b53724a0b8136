/**
 * The requests and results of the Kms's methods: Huawei KMS v1.0's request and response bodies
 * with their field names in camelCase (key_id → keyId), so that the HTTP layer maps one onto the
 * other field by field. Encodings stay in the HTTP layer: bytes are Uint8Arrays/Buffers here
 * (Huawei: base64 for encrypt-data's cipher_text, hex for data keys and random data), numbers are
 * numbers (Huawei sends many as JSON strings; the integer fields here accept either).
 *
 * Key references (`keyId`) take a key id (UUID) or an alias of the project; sealing requests
 * may name `<service>/default` to use (and on first use create) a default key.
 */
import type { AuditVerification, VerifyOptions } from "./audit/verify.js";
import type { GrantDetails, KeyDetails } from "./details.js";
import type { KeyRotationStatus } from "./rotation.js";
import type { GranteePrincipalType, GrantOperation, KeyState } from "./types.js";

export type { KeyDetails, GrantDetails, KeyRotationStatus, AuditVerification, VerifyOptions };

/** An integer as Huawei sends it: a number or a string of digits. */
export type IntegerField = number | string;

/** `encryption_algorithm`: symmetric keys take SYMMETRIC_DEFAULT (AES-256-GCM) only. */
export type EncryptionAlgorithm = "SYMMETRIC_DEFAULT";

/** What a ciphertext is bound to besides its key (docs/ciphertext-format.md §3): both must be repeated to decrypt. */
export interface BoundFields {
  /** Huawei `additional_authenticated_data`: ≤ 128 bytes of UTF-8. */
  additionalAuthenticatedData?: string | undefined;
  /** OTC/AWS `encryption_context`: string → string, ≤ 8192 characters of JSON. */
  encryptionContext?: Readonly<Record<string, string>> | undefined;
}

// Keys ------------------------------------------------------------------------------------------

export interface CreateKeyRequest {
  /** `^[a-zA-Z0-9:/_-]{1,255}$`, unique in the project, not ending in /default. */
  keyAlias: string;
  /** 0–255 characters. */
  keyDescription?: string | undefined;
  /** AES_256 (default). */
  keySpec?: string | undefined;
  /** ENCRYPT_DECRYPT (default). */
  keyUsage?: string | undefined;
  /** kms (default). */
  origin?: string | undefined;
}

/** describe-key, update-*, enable/disable, and every request that names one key. */
export interface KeyRequest {
  /** Key id (UUID) or alias. */
  keyId: string;
}

export interface ListKeysRequest {
  /** 1–2000 (default 2000, as Huawei's ListKeys). KMS.1601 otherwise. */
  limit?: IntegerField | undefined;
  /** The previous page's nextMarker. */
  marker?: string | undefined;
  /** Only keys in this state (1–5). */
  keyState?: IntegerField | undefined;
  /** Only keys of this spec (Huawei's names), or "ALL"; default (absent or "") AES_256. KMS.0308 otherwise. */
  keySpec?: string | undefined;
}

export interface ListKeysResult {
  /** The page's key ids. */
  keys: string[];
  keyDetails: KeyDetails[];
  /** null on the last page. */
  nextMarker: string | null;
  truncated: boolean;
  /** Keys matching the request in all pages. */
  total: number;
}

export interface UpdateKeyAliasRequest extends KeyRequest {
  keyAlias: string;
}

export interface UpdateKeyDescriptionRequest extends KeyRequest {
  keyDescription: string;
}

export interface KeyStateResult {
  keyId: string;
  keyState: KeyState;
}

export interface ScheduleKeyDeletionRequest extends KeyRequest {
  /** 7–1096. KMS.1401 otherwise. */
  pendingDays: IntegerField;
}

export interface ScheduleKeyDeletionResult extends KeyStateResult {
  /** ms since the epoch. */
  scheduledDeletionDate: number;
}

// Data and data keys -------------------------------------------------------------------------

export interface EncryptDataRequest extends BoundFields {
  /** Key id or alias; may be omitted when the request context names a service (its default key). */
  keyId?: string | undefined;
  /** 1–4096 bytes (a string is taken as UTF-8, as Huawei's plain_text). KMS.2101 otherwise. */
  plainText: Uint8Array | string;
  encryptionAlgorithm?: EncryptionAlgorithm | undefined;
}

export interface EncryptDataResult {
  keyId: string;
  /** Ciphertext blob v1 (docs/ciphertext-format.md); Huawei sends it base64. */
  cipherText: Buffer;
}

export interface DecryptDataRequest extends BoundFields {
  /** Blob v1. */
  cipherText: Uint8Array;
  /** Optional (the blob names its key); when given it is looked up first (KMS.0207 when missing) and must be the blob's key, else KMS.2201. */
  keyId?: string | undefined;
  encryptionAlgorithm?: EncryptionAlgorithm | undefined;
}

export interface DecryptDataResult {
  keyId: string;
  /** Huawei returns it as plain_text (UTF-8) and plain_text_base64. */
  plainText: Buffer;
}

export interface CreateDataKeyRequest extends BoundFields {
  keyId?: string | undefined;
  /** AES_256 (32 bytes, the default, also for "") or AES_128 (16). KMS.1902 otherwise. Ignored when datakeyLength is given (Huawei's rule). */
  keySpec?: string | undefined;
  /** Bits, 8–8192 in steps of 8 (KMS.1901 / KMS.1903). Takes precedence over keySpec; "" is none. */
  datakeyLength?: IntegerField | undefined;
}

export interface CreateDataKeyResult {
  keyId: string;
  /** The data key (Huawei: hex). */
  plainText: Buffer;
  /** The data key sealed under the key (blob v1, purpose "datakey"; Huawei: hex). */
  cipherText: Buffer;
}

export interface CreateDataKeyWithoutPlaintextResult {
  keyId: string;
  cipherText: Buffer;
}

export interface EncryptDataKeyRequest extends BoundFields {
  keyId?: string | undefined;
  /** DEK ‖ SHA-256(DEK) (Huawei: hex). KMS.2103 when the digest is wrong, KMS.2104 when the length is. */
  plainText: Uint8Array;
  /** The DEK's length in bytes. */
  datakeyPlainLength: IntegerField;
}

export interface EncryptDataKeyResult {
  keyId: string;
  cipherText: Buffer;
  /** The DEK's length in bytes. */
  datakeyLength: number;
}

export interface DecryptDataKeyRequest extends BoundFields {
  /** Required: must name the blob's key, else KMS.2201. */
  keyId: string;
  cipherText: Uint8Array;
  /** The DEK's length in bytes (Huawei's name notwithstanding). KMS.2204 when it does not match. */
  datakeyCipherLength: IntegerField;
}

export interface DecryptDataKeyResult {
  /** The DEK (Huawei: hex). */
  dataKey: Buffer;
  datakeyLength: number;
  /** SHA-256 of the DEK (Huawei: hex). */
  datakeyDgst: Buffer;
}

export interface ReEncryptRequest {
  cipherText: Uint8Array;
  /** When given, must name the blob's key (KMS.2201 otherwise). */
  sourceKeyId?: string | undefined;
  sourceAdditionalAuthenticatedData?: string | undefined;
  sourceEncryptionContext?: Readonly<Record<string, string>> | undefined;
  sourceEncryptionAlgorithm?: EncryptionAlgorithm | undefined;
  /** Key id or alias (or `<service>/default`). */
  destinationKeyId: string;
  destinationAdditionalAuthenticatedData?: string | undefined;
  destinationEncryptionContext?: Readonly<Record<string, string>> | undefined;
  destinationEncryptionAlgorithm?: EncryptionAlgorithm | undefined;
  /** Present when the ciphertext is a data key's (create-datakey, encrypt-datakey): its length in bytes. */
  datakeyCipherLength?: IntegerField | undefined;
}

export interface ReEncryptResult {
  /** The destination key. */
  keyId: string;
  sourceKeyId: string;
  cipherText: Buffer;
}

export interface GenRandomRequest {
  /** Bits, 8–8192 in steps of 8. */
  randomDataLength: IntegerField;
}

export interface GenRandomResult {
  /** From the token's generator (Huawei: hex). */
  randomData: Buffer;
}

// Rotation ----------------------------------------------------------------------------------

export interface EnableKeyRotationRequest extends KeyRequest {
  /** 30–365 days; absent: the key's interval stays (365 for a new key). */
  rotationInterval?: IntegerField | undefined;
}

export interface UpdateKeyRotationIntervalRequest extends KeyRequest {
  rotationInterval: IntegerField;
}

export interface RotateKeyResult {
  keyId: string;
  /** The new current version. */
  keyVersion: number;
  numberOfRotations: number;
}

// Grants ------------------------------------------------------------------------------------

export interface CreateGrantRequest extends KeyRequest {
  /** `^[a-zA-Z0-9]{1,64}$`: a principal id (type user) or an account id (type domain). */
  granteePrincipal: string;
  /** user (default) or domain. */
  granteePrincipalType?: GranteePrincipalType | undefined;
  /** A subset of GRANT_OPERATIONS, not create-grant alone (KMS.2401). */
  operations: readonly GrantOperation[];
  /** `^[a-zA-Z0-9:/_-]{1,255}$`. */
  name?: string | undefined;
  /** `^[a-zA-Z0-9]{1,64}$`: who may retire the grant besides its issuer and grantee. */
  retiringPrincipal?: string | undefined;
}

export interface CreateGrantResult {
  /** 64 hex digits. */
  grantId: string;
}

export interface ListGrantsRequest extends KeyRequest {
  limit?: IntegerField | undefined;
  marker?: string | undefined;
}

export interface ListRetirableGrantsRequest {
  limit?: IntegerField | undefined;
  marker?: string | undefined;
}

export interface ListGrantsResult {
  grants: GrantDetails[];
  nextMarker: string | null;
  truncated: boolean;
  total: number;
}

export interface GrantRequest extends KeyRequest {
  grantId: string;
}

// Tags --------------------------------------------------------------------------------------

export interface Tag {
  /** 1–36 characters. */
  key: string;
  /** 0–43 characters. */
  value: string;
}

export interface CreateKeyTagRequest extends KeyRequest {
  tag: Tag;
}

export interface DeleteKeyTagRequest extends KeyRequest {
  /** The tag's key. */
  key: string;
}

export interface BatchKeyTagsRequest extends KeyRequest {
  action: "create" | "delete";
  /** For delete, values are ignored. */
  tags: ReadonlyArray<{ key: string; value?: string | undefined }>;
}

export interface KeyTagsResult {
  tags: Tag[];
}

export interface ProjectTagsResult {
  tags: Array<{ key: string; values: string[] }>;
}

/** A tag condition of list-keys-by-tags: the tag key, and values of which one must match (none: any value). */
export interface TagCondition {
  key: string;
  values: string[];
}

/**
 * Huawei's ListKmsByTags (POST …/kms/resource_instances/action). Every condition given must hold:
 * `tags` — the key has every listed tag (each with one of its values); `tagsAny` — at least one;
 * `notTags` — not every one; `notTagsAny` — none; `matches` — the alias (resource_name) contains
 * the value. `filter` pages (offset, limit 1..1000, default 10) in creation order; `count` only counts.
 */
export interface ListKeysByTagsRequest {
  action: "filter" | "count";
  limit?: IntegerField | undefined;
  offset?: IntegerField | undefined;
  tags?: TagCondition[] | undefined;
  tagsAny?: TagCondition[] | undefined;
  notTags?: TagCondition[] | undefined;
  notTagsAny?: TagCondition[] | undefined;
  matches?: Array<{ key: string; value: string }> | undefined;
}

export interface KeyByTags {
  keyId: string;
  details: KeyDetails;
  tags: Tag[];
}

export interface ListKeysByTagsResult {
  /** The page (filter only). */
  keys?: KeyByTags[];
  /** How many keys match, all pages together. */
  totalCount: number;
}

// Admin -------------------------------------------------------------------------------------

/** Who performs an administrative change (creating projects, principals, roles): for its audit record. */
export interface AdminContext {
  requestId?: string | undefined;
  source?: string | undefined;
  /** Default "system". */
  principalId?: string | undefined;
}
