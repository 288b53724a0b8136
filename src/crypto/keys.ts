/**
 * Key slots: key bytes live in native, page-locked memory that is cleansed when the slot is
 * destroyed or garbage-collected. JavaScript only ever holds an opaque KeyHandle.
 */
import { addon, type NativeKeyHandle } from "./addon.js";
import { assertBytes, assertInteger, argTypeError } from "./errors.js";

/** An opaque reference to a key held in native memory. */
export type KeyHandle = NativeKeyHandle;

/** The largest key a slot holds, in bytes (generic secrets for HMAC may be long). */
export const MAX_KEY_BYTES = 8192;

/** Copies `bytes` into a new key slot. The caller should wipe its own copy afterwards. */
export function importKey(bytes: Uint8Array): KeyHandle {
  assertBytes(bytes, "bytes");
  assertInteger(bytes.length, "bytes.length", 1, MAX_KEY_BYTES);
  return addon.importKey(bytes);
}

/** A new key of `length` bytes drawn from the native CTR_DRBG. */
export function generateKey(length: number): KeyHandle {
  assertInteger(length, "length", 1, MAX_KEY_BYTES);
  return addon.generateKey(length);
}

/** Cleanses the key's bytes (once no in-flight operation holds them); later use fails with ERR_NATIVE_KEY_DESTROYED. */
export function destroyKey(key: KeyHandle): void {
  assertKey(key, "key");
  key.destroy();
}

/**
 * Copies the key's raw bytes out of native memory. This is the only path by which key bytes
 * reach JavaScript; callers (the emulator) permit it only for extractable, non-sensitive keys.
 */
export function exportKeyBytes(key: KeyHandle): Buffer {
  assertKey(key, "key");
  return key.exportBytes();
}

/** Bytes currently held in secure memory and whether all of it is page-locked. */
export function secureMemoryStats(): { bytesInUse: number; bytesReserved: number; locked: boolean } {
  return addon.secureMemoryStats();
}

export function assertKey(value: unknown, name: string): asserts value is KeyHandle {
  if (typeof value !== "object" || value === null || typeof (value as KeyHandle).destroy !== "function") {
    throw argTypeError(name, "a key handle from importKey or generateKey");
  }
}
