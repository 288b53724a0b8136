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
