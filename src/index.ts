/**
 * hsmkit's public entry point. Every export is named (no `export *`), so the public surface
 * is exactly what this file lists.
 */
export {
  importKey, generateKey, destroyKey, exportKeyBytes, secureMemoryStats, MAX_KEY_BYTES, type KeyHandle,
} from "./crypto/keys.js";
export {
  gcmSeal, gcmOpen, gcmSealAsync, gcmOpenAsync, gcmSealBatch, gcmOpenBatch, packMessages, unpackMessages,
  type GcmParams, type GcmBatch, type GcmOpenBatchResult,
} from "./crypto/aead.js";
export { keyWrap, keyUnwrap, keyWrapKey, keyUnwrapKey, type KeyWrapMode } from "./crypto/keywrap.js";
export {
  aesEncrypt, aesDecrypt, aesEncryptInit, aesDecryptInit, aesOutputSize, AES_BLOCK_SIZE,
  type AesMode, type AesModeParams, type AesOperation, type CipherDirection,
} from "./crypto/modes.js";
export {
  hmacSign, hmacVerify, hmacInit, hmacLength, HMAC_MIN_TAG_LENGTH, type HmacHash, type HmacParams, type HmacOperation,
} from "./crypto/hmac.js";
export {
  randomBytes, randomFill, reseed, randomStatus, configureRandom, ENTROPY_SOURCE_NAMES,
  type EntropySourceName, type RandomStatus, type RandomSourceStatus, type RandomConfiguration,
} from "./crypto/random.js";
export { isNativeError, NATIVE_ERROR_CODES, type NativeError, type NativeErrorCode } from "./crypto/errors.js";
export {
  Kms, SYSTEM_PRINCIPAL, type KmsOptions, type OpenKmsOptions, type SweepReport,
} from "./kms/kms.js";
export { OPERATIONS as KMS_OPERATIONS, type RequestContext, type KmsOperation } from "./kms/access.js";
export type * as KmsApi from "./kms/api.js";
export { DEFAULT_LIMITS as KMS_DEFAULT_LIMITS, DEFAULT_TUNABLES as KMS_DEFAULT_TUNABLES, type KmsLimits, type KmsTunables, type KmsConfig } from "./kms/config.js";
export { DEFAULT_KEY_SERVICES, type DefaultKeyService } from "./kms/default-keys.js";
export type { KeyDetails, GrantDetails } from "./kms/details.js";
export type { KeyRotationStatus } from "./kms/rotation.js";
export type { UserQuotas, QuotaResource } from "./kms/quotas.js";
export { KmsError, isKmsError, KMS_ERRORS, type KmsErrorCode } from "./kms/errors.js";
export { KEY_STATE, GRANT_OPERATIONS, ROLES, type KeyState, type Role, type GrantOperation, type UsageRecord, type AuditRecord } from "./kms/types.js";
export type { KmsBackend } from "./kms/backend/backend.js";
export { openBackend, type GrapheneBackendOptions } from "./kms/backend/graphene.js";
export type { KmsStore } from "./kms/store/store.js";
export { openSqliteStore, type SqliteStoreOptions } from "./kms/store/sqlite.js";
