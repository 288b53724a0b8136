/**
 * The crypto core (`hsmkit/crypto`). Every export is named (no `export *`), so the public surface
 * is exactly what this file lists.
 */
export {
  importKey, generateKey, destroyKey, exportKeyBytes, secureMemoryStats, MAX_KEY_BYTES, type KeyHandle,
} from "./keys.js";
export {
  gcmSeal, gcmOpen, gcmSealAsync, gcmOpenAsync, gcmSealBatch, gcmOpenBatch, packMessages, unpackMessages,
  type GcmParams, type GcmBatch, type GcmOpenBatchResult,
} from "./aead.js";
export { keyWrap, keyUnwrap, keyWrapKey, keyUnwrapKey, type KeyWrapMode } from "./keywrap.js";
export {
  aesEncrypt, aesDecrypt, aesEncryptInit, aesDecryptInit, aesOutputSize, AES_BLOCK_SIZE,
  type AesMode, type AesModeParams, type AesOperation, type CipherDirection,
} from "./modes.js";
export {
  hmacSign, hmacVerify, hmacInit, hmacLength, HMAC_MIN_TAG_LENGTH, type HmacHash, type HmacParams, type HmacOperation,
} from "./hmac.js";
export {
  randomBytes, randomFill, reseed, randomStatus, configureRandom, ENTROPY_SOURCE_NAMES,
  type EntropySourceName, type RandomStatus, type RandomSourceStatus, type RandomConfiguration,
} from "./random.js";
export { limitMallocArenas, KMS_MALLOC_ARENAS } from "./allocator.js";
export { isNativeError, NATIVE_ERROR_CODES, type NativeError, type NativeErrorCode } from "./errors.js";
