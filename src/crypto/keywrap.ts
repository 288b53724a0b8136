/**
 * AES key wrap in the native core: KW (RFC 3394) and KWP (RFC 5649), per SP 800-38F.
 * KW wraps whole 8-byte semiblocks, at least 16 bytes; KWP wraps 1 byte to 1 GiB (our cap).
 * The output is 8 bytes longer than the (padded) input. An integrity failure on unwrap is one
 * opaque error, code ERR_NATIVE_UNWRAP.
 */
import { addon } from "./addon.js";
import { argValueError, assertBytes } from "./errors.js";
import { assertKey, type KeyHandle } from "./keys.js";

export type KeyWrapMode = "kw" | "kwp";

function padded(mode: KeyWrapMode): boolean {
  if (mode === "kw") return false;
  if (mode === "kwp") return true;
  throw argValueError("mode", `must be "kw" or "kwp", received ${String(mode)}`);
}

/** Wraps arbitrary bytes under `kek`. */
export function keyWrap(kek: KeyHandle, mode: KeyWrapMode, data: Uint8Array): Buffer {
  assertKey(kek, "kek");
  assertBytes(data, "data");
  return addon.keyWrap(kek, padded(mode), data);
}

/** Unwraps to bytes; throws ERR_NATIVE_UNWRAP when the integrity check fails. */
export function keyUnwrap(kek: KeyHandle, mode: KeyWrapMode, wrapped: Uint8Array): Buffer {
  assertKey(kek, "kek");
  assertBytes(wrapped, "wrapped");
  return addon.keyUnwrap(kek, padded(mode), wrapped);
}

/** Wraps the key held in `key` without its bytes entering JavaScript. */
export function keyWrapKey(kek: KeyHandle, mode: KeyWrapMode, key: KeyHandle): Buffer {
  assertKey(kek, "kek");
  assertKey(key, "key");
  return addon.keyWrapKey(kek, padded(mode), key);
}

/** Unwraps straight into a new key slot; the bytes never enter JavaScript. */
export function keyUnwrapKey(kek: KeyHandle, mode: KeyWrapMode, wrapped: Uint8Array): KeyHandle {
  assertKey(kek, "kek");
  assertBytes(wrapped, "wrapped");
  return addon.keyUnwrapKey(kek, padded(mode), wrapped);
}
