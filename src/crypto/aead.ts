/**
 * AES-GCM (SP 800-38D) in the native core.
 *
 * Sealed layout, as PKCS#11 CKM_AES_GCM produces it: `ciphertext || tag`, the tag being the
 * first `tagLength` bytes of GCM's 16-byte tag. Keys are AES-128/192/256 key slots; IVs are
 * at least 1 byte (12 is the efficient and recommended length); tags 4..16 bytes. A tag
 * mismatch is one opaque error, code ERR_NATIVE_AUTH_TAG, and releases no plaintext.
 *
 * The caller chooses the IV here because this is the primitive under PKCS#11, where the
 * application supplies it; an IV must never repeat under one key.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { addon } from "./addon.js";
import { argValueError, assertBytes, assertInteger } from "./errors.js";
import { assertKey, type KeyHandle } from "./keys.js";

export interface GcmParams {
  /** At least 1 byte; 12 bytes unless interoperability demands otherwise. */
  iv: Uint8Array;
  /** Additional authenticated data (bound to the ciphertext, not encrypted). */
  aad?: Uint8Array | undefined;
  /** Tag bytes, 4..16; default 16. */
  tagLength?: number | undefined;
}

const MAX_IV = 0xffffffff;

function checkParams(params: GcmParams): number {
  if (typeof params !== "object" || params === null) throw argValueError("params", "must be an object");
  const { iv, aad, tagLength = 16 } = params;
  if (!(iv instanceof Uint8Array)) assertBytes(iv, "params.iv");
  if (iv.length === 0 || iv.length > MAX_IV) assertInteger(iv.length, "params.iv.length", 1, MAX_IV);
  if (aad !== undefined && !(aad instanceof Uint8Array)) assertBytes(aad, "params.aad");
  if (tagLength !== 16) assertInteger(tagLength, "params.tagLength", 4, 16);
  return tagLength;
}

function checkOut(out: Uint8Array | undefined, need: number): void {
  if (out === undefined) return;
  assertBytes(out, "out");
  if (out.length < need) throw argValueError("out", `must hold at least ${need} bytes, it holds ${out.length}`);
}

/** The written prefix of `out`: `out` itself when it is a Buffer of exactly that length (no allocation). */
function view(out: Uint8Array, length: number): Buffer {
  if (out.length === length && Buffer.isBuffer(out)) return out;
  return Buffer.from(out.buffer, out.byteOffset, length);
}

/**
 * Encrypts and authenticates `plaintext`. Returns `ciphertext || tag`; when `out` is given the
 * result is written there (no allocation) and a view of the written bytes is returned. `out`
 * may start where the input starts (in place) but must not otherwise overlap it, here and in
 * gcmOpen and the async forms (ERR_NATIVE_INVALID_ARGUMENT).
 */
export function gcmSeal(key: KeyHandle, plaintext: Uint8Array, params: GcmParams, out?: Uint8Array): Buffer {
  assertKey(key, "key");
  assertBytes(plaintext, "plaintext");
  const tagLength = checkParams(params);
  const need = plaintext.length + tagLength;
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  addon.gcmSeal(key, params.iv, params.aad ?? null, plaintext, tagLength, target);
  return view(target, need);
}

/** Verifies and decrypts `ciphertext || tag`; throws ERR_NATIVE_AUTH_TAG if anything was altered. */
export function gcmOpen(key: KeyHandle, sealed: Uint8Array, params: GcmParams, out?: Uint8Array): Buffer {
  assertKey(key, "key");
  assertBytes(sealed, "sealed");
  const tagLength = checkParams(params);
  if (sealed.length < tagLength) throw argValueError("sealed", `is shorter than its ${tagLength}-byte tag`);
  const need = sealed.length - tagLength;
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  addon.gcmOpen(key, params.iv, params.aad ?? null, sealed, tagLength, target);
  return view(target, need);
}

/** As gcmSeal, on the libuv thread pool. Do not detach or transfer the buffers before it settles. */
export async function gcmSealAsync(key: KeyHandle, plaintext: Uint8Array, params: GcmParams, out?: Uint8Array): Promise<Buffer> {
  assertKey(key, "key");
  assertBytes(plaintext, "plaintext");
  const tagLength = checkParams(params);
  const need = plaintext.length + tagLength;
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  await addon.gcmSealAsync(key, params.iv, params.aad ?? null, plaintext, tagLength, target);
  return view(target, need);
}

/** As gcmOpen, on the libuv thread pool. Do not detach or transfer the buffers before it settles. */
export async function gcmOpenAsync(key: KeyHandle, sealed: Uint8Array, params: GcmParams, out?: Uint8Array): Promise<Buffer> {
  assertKey(key, "key");
  assertBytes(sealed, "sealed");
  const tagLength = checkParams(params);
  if (sealed.length < tagLength) throw argValueError("sealed", `is shorter than its ${tagLength}-byte tag`);
  const need = sealed.length - tagLength;
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  await addon.gcmOpenAsync(key, params.iv, params.aad ?? null, sealed, tagLength, target);
  return view(target, need);
}

/**
 * Many messages under one key, packed back to back so one native call handles them all:
 * message i is `lengths[i]` bytes of `data`, its IV is bytes `[i*ivLength, (i+1)*ivLength)` of
 * `ivs`, and its AAD (optional) the i-th run of `aadLengths` in `aads`. A batch's `out` must not
 * overlap `data`, `ivs` or `aads` at all: message i's output sits at another offset than its input.
 */
export interface GcmBatch {
  ivs: Uint8Array;
  ivLength: number;
  data: Uint8Array;
  lengths: Uint32Array;
  aads?: Uint8Array | undefined;
  aadLengths?: Uint32Array | undefined;
  tagLength?: number | undefined;
}

function checkBatch(batch: GcmBatch): number {
  if (typeof batch !== "object" || batch === null) throw argValueError("batch", "must be an object");
  assertBytes(batch.ivs, "batch.ivs");
  assertInteger(batch.ivLength, "batch.ivLength", 1, MAX_IV);
  assertBytes(batch.data, "batch.data");
  if (!(batch.lengths instanceof Uint32Array)) throw argValueError("batch.lengths", "must be a Uint32Array");
  const count = batch.lengths.length;
  if (batch.ivs.length !== count * batch.ivLength) {
    throw argValueError("batch.ivs", `must hold ${count} IVs of ${batch.ivLength} bytes, it holds ${batch.ivs.length} bytes`);
  }
  if ((batch.aads === undefined) !== (batch.aadLengths === undefined)) {
    throw argValueError("batch.aads", "and batch.aadLengths must be given together");
  }
  if (batch.aads !== undefined) {
    assertBytes(batch.aads, "batch.aads");
    if (!(batch.aadLengths instanceof Uint32Array) || batch.aadLengths.length !== count) {
      throw argValueError("batch.aadLengths", `must be a Uint32Array of ${count} lengths`);
    }
  }
  const tagLength = batch.tagLength ?? 16;
  assertInteger(tagLength, "batch.tagLength", 4, 16);
  return tagLength;
}

/** Seals every message of the batch; returns the sealed messages packed (`ct_i || tag_i`, each lengths[i] + tagLength). */
export function gcmSealBatch(key: KeyHandle, batch: GcmBatch, out?: Uint8Array): Buffer {
  assertKey(key, "key");
  const tagLength = checkBatch(batch);
  const need = batch.data.length + batch.lengths.length * tagLength;
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  addon.gcmSealBatch(key, batch.ivs, batch.ivLength, batch.aads ?? null, batch.aadLengths ?? null, batch.data, batch.lengths, tagLength, target);
  return view(target, need);
}

export interface GcmOpenBatchResult {
  /** Plaintexts packed (each lengths[i] - tagLength bytes); a message that failed is zeros. */
  data: Buffer;
  /** ok[i] is 1 when message i verified. */
  ok: Uint8Array;
  /** How many messages verified. */
  verified: number;
}

/** Opens every message of the batch; one bad message does not stop the others (see `ok`). */
export function gcmOpenBatch(key: KeyHandle, batch: GcmBatch, out?: Uint8Array): GcmOpenBatchResult {
  assertKey(key, "key");
  const tagLength = checkBatch(batch);
  const need = batch.data.length - batch.lengths.length * tagLength;
  if (need < 0) throw argValueError("batch.data", "is shorter than the tags of its messages");
  checkOut(out, need);
  const target = out ?? Buffer.allocUnsafe(need);
  const ok = new Uint8Array(batch.lengths.length);
  const verified = addon.gcmOpenBatch(
    key, batch.ivs, batch.ivLength, batch.aads ?? null, batch.aadLengths ?? null, batch.data, batch.lengths, tagLength, target, ok,
  );
  return { data: view(target, need), ok, verified };
}

/** Packs separate messages into the `data`/`lengths` shape of a GcmBatch. */
export function packMessages(messages: readonly Uint8Array[]): { data: Buffer; lengths: Uint32Array } {
  const lengths = Uint32Array.from(messages, (message, i) => {
    assertBytes(message, `messages[${i}]`);
    return message.length;
  });
  return { data: Buffer.concat(messages), lengths };
}

/** Splits packed output back into one Buffer per message. */
export function unpackMessages(data: Buffer, lengths: ArrayLike<number>): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i < lengths.length; i++) {
    const length = lengths[i] as number;
    parts.push(data.subarray(offset, offset + length));
    offset += length;
  }
  return parts;
}

/**
 * Benchmark probe: `iterations` 12-byte-IV seals of `messageLength` bytes in one native loop,
 * with no JavaScript per message — the in-process ceiling for the other GCM paths.
 */
export function gcmSealCeiling(key: KeyHandle, messageLength: number, iterations: number): void {
  assertKey(key, "key");
  assertInteger(messageLength, "messageLength", 0, 1 << 30);
  assertInteger(iterations, "iterations", 0, 0xffffffff);
  addon.gcmSealCeiling(key, messageLength, iterations);
}
