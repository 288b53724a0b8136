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

/** Output length of a wrap of `length` bytes (the input padded to 8 bytes, plus 8). */
export function wrappedLength(mode: KeyWrapMode, length: number): number {
  return padded(mode) ? Math.ceil(length / 8) * 8 + 8 : length + 8;
}

function target(out: Uint8Array | undefined, need: number): Uint8Array {
  if (out === undefined) return Buffer.allocUnsafe(need);
  assertBytes(out, "out");
  if (out.length < need) throw argValueError("out", `must hold at least ${need} bytes, it holds ${out.length}`);
  return out;
}

const view = (out: Uint8Array, length: number): Buffer => Buffer.from(out.buffer, out.byteOffset, length);

/** Wraps arbitrary bytes under `kek`; into `out` when given (no allocation). */
export function keyWrap(kek: KeyHandle, mode: KeyWrapMode, data: Uint8Array, out?: Uint8Array): Buffer {
  assertKey(kek, "kek");
  assertBytes(data, "data");
  const into = target(out, wrappedLength(mode, data.length));
  return view(into, addon.keyWrap(kek, padded(mode), data, into));
}

/** Unwraps to bytes; throws ERR_NATIVE_UNWRAP when the integrity check fails. `out` needs wrapped.length - 8 bytes. */
export function keyUnwrap(kek: KeyHandle, mode: KeyWrapMode, wrapped: Uint8Array, out?: Uint8Array): Buffer {
  assertKey(kek, "kek");
  assertBytes(wrapped, "wrapped");
  const into = target(out, Math.max(0, wrapped.length - 8));
  return view(into, addon.keyUnwrap(kek, padded(mode), wrapped, into));
}

/** Wraps the key held in `key` without its bytes entering JavaScript. */
export function keyWrapKey(kek: KeyHandle, mode: KeyWrapMode, key: KeyHandle, out?: Uint8Array): Buffer {
  assertKey(kek, "kek");
  assertKey(key, "key");
  const into = target(out, wrappedLength(mode, key.length));
  return view(into, addon.keyWrapKey(kek, padded(mode), key, into));
}

/** Unwraps straight into a new key slot; the bytes never enter JavaScript. */
export function keyUnwrapKey(kek: KeyHandle, mode: KeyWrapMode, wrapped: Uint8Array): KeyHandle {
  assertKey(kek, "kek");
  assertBytes(wrapped, "wrapped");
  return addon.keyUnwrapKey(kek, padded(mode), wrapped);
}
