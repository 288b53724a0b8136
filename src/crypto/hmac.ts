/**
 * HMAC (FIPS 198-1, RFC 2104) in the native core with SHA-1, SHA-224, SHA-256, SHA-384 or
 * SHA-512, as PKCS#11 defines it: CKM_SHA*_HMAC makes the full tag, CKM_SHA*_HMAC_GENERAL
 * (CK_MAC_GENERAL_PARAMS.ulMacLength) its first `tagLength` bytes. The key is any key slot
 * (a generic secret of 1..8192 bytes); its bytes never leave native memory.
 *
 * Tag lengths run from HMAC_MIN_TAG_LENGTH (4 bytes: the 32-bit floor NIST SP 800-107 Rev. 1
 * sets for truncated HMAC, as for GCM tags here) to the hash's output size. Verification
 * compares in constant time (CRYPTO_memcmp) and returns a boolean. The verifier fixes the tag
 * length (params.tagLength, default the full length); a tag of any other length is false, so a
 * truncated tag never passes where a longer one is expected. The emulator checks the length
 * itself first when PKCS#11 wants CKR_SIGNATURE_LEN_RANGE rather than CKR_SIGNATURE_INVALID.
 */
import { addon, type NativeHmacOperationHandle } from "./addon.js";
import { argValueError, assertBytes, assertInteger } from "./errors.js";
import { assertKey, type KeyHandle } from "./keys.js";

export type HmacHash = "sha1" | "sha224" | "sha256" | "sha384" | "sha512";

/** The shortest tag accepted, in bytes. */
export const HMAC_MIN_TAG_LENGTH = 4;

export interface HmacParams {
  /** Tag bytes, HMAC_MIN_TAG_LENGTH..hmacLength(hash); default hmacLength(hash). */
  tagLength?: number | undefined;
}

const HASHES: Readonly<Record<HmacHash, { number: number; length: number }>> = {
  sha1: { number: 0, length: 20 },
  sha224: { number: 1, length: 28 },
  sha256: { number: 2, length: 32 },
  sha384: { number: 3, length: 48 },
  sha512: { number: 4, length: 64 },
};

function hashEntry(hash: HmacHash): { number: number; length: number } {
  const entry = Object.hasOwn(HASHES, hash) ? HASHES[hash] : undefined;
  if (entry === undefined) {
    throw argValueError("hash", `must be "sha1", "sha224", "sha256", "sha384" or "sha512", received ${String(hash)}`);
  }
  return entry;
}

function tagLengthOf(hash: HmacHash, params: HmacParams | undefined): number {
  if (params !== undefined && (typeof params !== "object" || params === null)) {
    throw argValueError("params", "must be an object");
  }
  const full = hashEntry(hash).length;
  const tagLength = params?.tagLength ?? full;
  assertInteger(tagLength, "params.tagLength", HMAC_MIN_TAG_LENGTH, full);
  return tagLength;
}

function target(out: Uint8Array | undefined, need: number): Uint8Array {
  if (out === undefined) return Buffer.allocUnsafe(need);
  assertBytes(out, "out");
  if (out.length < need) throw argValueError("out", `must hold at least ${need} bytes, it holds ${out.length}`);
  return out;
}

const view = (out: Uint8Array, length: number): Buffer => Buffer.from(out.buffer, out.byteOffset, length);

/** The full tag length of HMAC with `hash`: the hash's output size in bytes. */
export function hmacLength(hash: HmacHash): number {
  return hashEntry(hash).length;
}

/** The tag of `data` (PKCS#11 C_Sign): its first params.tagLength bytes, into `out` when given. */
export function hmacSign(key: KeyHandle, hash: HmacHash, data: Uint8Array, params?: HmacParams, out?: Uint8Array): Buffer {
  assertKey(key, "key");
  const tagLength = tagLengthOf(hash, params);
  assertBytes(data, "data");
  const into = target(out, tagLength);
  return view(into, addon.hmacSign(key, hashEntry(hash).number, data, tagLength, into));
}

/**
 * Whether `tag` is the tag of `data` (PKCS#11 C_Verify): true only when tag.length equals
 * params.tagLength (default the full length) and the bytes match, compared in constant time.
 */
export function hmacVerify(key: KeyHandle, hash: HmacHash, data: Uint8Array, tag: Uint8Array, params?: HmacParams): boolean {
  assertKey(key, "key");
  const tagLength = tagLengthOf(hash, params);
  assertBytes(data, "data");
  assertBytes(tag, "tag");
  return addon.hmacVerify(key, hashEntry(hash).number, data, tag, tagLength);
}

/**
 * A multi-part HMAC (PKCS#11 C_SignUpdate/C_SignFinal or C_VerifyUpdate/C_VerifyFinal): update()
 * any number of times, then sign() or verify(), which end it. An error ends it too. It keeps its
 * own copy of the keyed state: destroying the key meanwhile does not disturb it, and the key's
 * bytes are cleansed once the operation has ended.
 */
export class HmacOperation {
  readonly hash: HmacHash;
  readonly #native: NativeHmacOperationHandle;

  /** Use hmacInit. */
  constructor(key: KeyHandle, hash: HmacHash, params?: HmacParams) {
    assertKey(key, "key");
    const tagLength = tagLengthOf(hash, params);
    this.#native = new addon.HmacOperation(key, hashEntry(hash).number, tagLength);
    this.hash = hash;
  }

  /** The tag length fixed at the start. */
  get tagLength(): number {
    return this.#native.tagLength;
  }

  /** Feeds `data`; returns this operation, so calls chain. */
  update(data: Uint8Array): this {
    assertBytes(data, "data");
    this.#native.update(data);
    return this;
  }

  /** Ends the operation and returns the tag (tagLength bytes, into `out` when given). */
  sign(out?: Uint8Array): Buffer {
    const into = target(out, this.#native.tagLength);
    return view(into, this.#native.sign(into));
  }

  /** Ends the operation: whether `tag` is the tag of everything fed, as hmacVerify decides. */
  verify(tag: Uint8Array): boolean {
    assertBytes(tag, "tag");
    return this.#native.verify(tag);
  }

  /** Ends the operation without a result. */
  abort(): void {
    this.#native.abort();
  }

  /** True after sign(), verify(), abort() or an error; later calls throw ERR_NATIVE_INVALID_ARGUMENT. */
  get ended(): boolean {
    return this.#native.ended;
  }
}

/** Starts a multi-part HMAC sign or verify (PKCS#11 C_SignInit / C_VerifyInit). */
export function hmacInit(key: KeyHandle, hash: HmacHash, params?: HmacParams): HmacOperation {
  return new HmacOperation(key, hash, params);
}
