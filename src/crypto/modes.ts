/**
 * AES confidentiality modes (NIST SP 800-38A) in the native core, as PKCS#11 defines them:
 * CKM_AES_ECB ("ecb"), CKM_AES_CBC ("cbc"), CKM_AES_CBC_PAD ("cbc-pad", PKCS#7 padding) and
 * CKM_AES_CTR ("ctr"), single-part and multi-part. Keys are AES-128/192/256 key slots; the key
 * bytes never leave native memory.
 *
 * Lengths:
 * - ecb, cbc: input a whole number of 16-byte blocks (0 allowed); output = input.
 * - cbc-pad: encrypting, any input, output = input rounded up to the next whole block (1..16
 *   pad bytes); decrypting, input a positive whole number of blocks, output = input minus pad.
 * - ctr: any input; output = input.
 * A length the mode cannot take throws ERR_NATIVE_INVALID_ARGUMENT (the emulator's
 * CKR_DATA_LEN_RANGE / CKR_ENCRYPTED_DATA_LEN_RANGE); bad padding throws ERR_NATIVE_BAD_PADDING.
 *
 * CTR takes PKCS#11's CK_AES_CTR_PARAMS: `iv` is the 16-byte counter block and `counterBits`
 * (1..128, default 128) how many of its low bits are the big-endian counter. Starting from
 * counter value c, at most 2^counterBits - c blocks can be processed; asking for more throws
 * ERR_NATIVE_COUNTER_OVERFLOW before anything is processed (PKCS#11: the counter must not wrap).
 */
import { addon, type NativeAesOperationHandle } from "./addon.js";
import { argValueError, assertBytes, assertInteger } from "./errors.js";
import { assertKey, type KeyHandle } from "./keys.js";

export type AesMode = "ecb" | "cbc" | "cbc-pad" | "ctr";
export type CipherDirection = "encrypt" | "decrypt";

/** The AES block size in bytes: the IV and counter-block length, and the unit of ECB/CBC input. */
export const AES_BLOCK_SIZE = 16;

export interface AesModeParams {
  /** cbc, cbc-pad: the 16-byte IV. ctr: the 16-byte initial counter block. ecb: must be absent. */
  iv?: Uint8Array | undefined;
  /** ctr only: the number of low bits of the counter block that count, 1..128; default 128. */
  counterBits?: number | undefined;
}

const MODE_NUMBERS: Readonly<Record<AesMode, number>> = { ecb: 0, cbc: 1, "cbc-pad": 2, ctr: 3 };
const MAX_LENGTH = 2 ** 53;

function modeNumber(mode: AesMode): number {
  const number = Object.hasOwn(MODE_NUMBERS, mode) ? MODE_NUMBERS[mode] : undefined;
  if (number === undefined) throw argValueError("mode", `must be "ecb", "cbc", "cbc-pad" or "ctr", received ${String(mode)}`);
  return number;
}

function encrypting(direction: CipherDirection): boolean {
  if (direction === "encrypt") return true;
  if (direction === "decrypt") return false;
  throw argValueError("direction", `must be "encrypt" or "decrypt", received ${String(direction)}`);
}

interface CheckedParams {
  iv: Uint8Array | null;
  counterBits: number;
}

function checkParams(mode: AesMode, params: AesModeParams | undefined): CheckedParams {
  if (params !== undefined && (typeof params !== "object" || params === null)) {
    throw argValueError("params", "must be an object");
  }
  const iv = params?.iv;
  const counterBits = params?.counterBits;
  if (mode === "ecb") {
    if (iv !== undefined) throw argValueError("params.iv", "must be absent for AES-ECB");
  } else {
    if (iv === undefined) throw argValueError("params.iv", `is required for AES-${mode.toUpperCase()}`);
    assertBytes(iv, "params.iv");
    if (iv.length !== AES_BLOCK_SIZE) throw argValueError("params.iv", `must be 16 bytes, it has ${iv.length}`);
  }
  if (mode !== "ctr" && counterBits !== undefined) throw argValueError("params.counterBits", "is for AES-CTR only");
  if (counterBits !== undefined) assertInteger(counterBits, "params.counterBits", 1, 128);
  return { iv: iv ?? null, counterBits: counterBits ?? 128 };
}

function target(out: Uint8Array | undefined, need: number): Uint8Array {
  if (out === undefined) return Buffer.allocUnsafe(need);
  assertBytes(out, "out");
  if (out.length < need) throw argValueError("out", `must hold at least ${need} bytes, it holds ${out.length}`);
  return out;
}

const view = (out: Uint8Array, length: number): Buffer => Buffer.from(out.buffer, out.byteOffset, length);

/**
 * Bytes a single-part aesEncrypt/aesDecrypt of `inputLength` bytes writes: exact, except
 * cbc-pad decryption, where it is the upper bound inputLength - 1 (the PKCS#11 two-call length
 * query). Throws ERR_NATIVE_INVALID_ARGUMENT for a length the mode cannot take.
 */
export function aesOutputSize(mode: AesMode, direction: CipherDirection, inputLength: number): number {
  assertInteger(inputLength, "inputLength", 0, MAX_LENGTH);
  return addon.aesOutputSize(modeNumber(mode), encrypting(direction), inputLength);
}

function crypt(encrypt: boolean, key: KeyHandle, mode: AesMode, data: Uint8Array, params?: AesModeParams, out?: Uint8Array): Buffer {
  assertKey(key, "key");
  const number = modeNumber(mode);
  const checked = checkParams(mode, params);
  assertBytes(data, "data");
  const into = target(out, addon.aesOutputSize(number, encrypt, data.length));
  return view(into, addon.aesCrypt(key, number, encrypt, checked.iv, checked.counterBits, data, into));
}

/**
 * Encrypts `data` in one call (PKCS#11 C_Encrypt). Returns the ciphertext; when `out` is given
 * (at least aesOutputSize bytes; it may be `data` itself, not a part of it) the result is
 * written there and a view of the written bytes is returned.
 */
export function aesEncrypt(key: KeyHandle, mode: AesMode, data: Uint8Array, params?: AesModeParams, out?: Uint8Array): Buffer {
  return crypt(true, key, mode, data, params, out);
}

/**
 * Decrypts `data` in one call (PKCS#11 C_Decrypt); cbc-pad removes and checks the padding,
 * throwing ERR_NATIVE_BAD_PADDING (with `out` cleansed) when it is not valid PKCS#7.
 */
export function aesDecrypt(key: KeyHandle, mode: AesMode, data: Uint8Array, params?: AesModeParams, out?: Uint8Array): Buffer {
  return crypt(false, key, mode, data, params, out);
}

/**
 * A multi-part encryption or decryption (PKCS#11 C_EncryptUpdate/C_EncryptFinal and the
 * decrypt pair). update() returns the bytes that are complete so far (ecb/cbc/cbc-pad buffer a
 * partial block; cbc-pad decryption also holds back the last whole block until final());
 * final() returns the rest and ends the operation. Any error from update() or final() ends it
 * too, as PKCS#11 says; an output buffer that is too small is refused before anything happens.
 * The operation keeps its own copy of the key schedule: destroying the key meanwhile does not
 * disturb it, and the key's bytes are cleansed once the operation has ended.
 */
export class AesOperation {
  readonly mode: AesMode;
  readonly direction: CipherDirection;
  readonly #native: NativeAesOperationHandle;

  /** Use aesEncryptInit / aesDecryptInit. */
  constructor(key: KeyHandle, mode: AesMode, direction: CipherDirection, params?: AesModeParams) {
    assertKey(key, "key");
    const number = modeNumber(mode);
    const encrypt = encrypting(direction);
    const checked = checkParams(mode, params);
    this.#native = new addon.AesOperation(key, number, encrypt, checked.iv, checked.counterBits);
    this.mode = mode;
    this.direction = direction;
  }

  /** Bytes update() writes for `inputLength` more bytes (exact). */
  outputSize(inputLength: number): number {
    assertInteger(inputLength, "inputLength", 0, MAX_LENGTH);
    return this.#native.outputSize(inputLength);
  }

  /** Bytes final() needs: exact, except cbc-pad decryption (15, an upper bound). */
  finalOutputSize(): number {
    return this.#native.finalOutputSize();
  }

  /** Feeds `data`; returns the output it completes (into `out` when given; `out` must not overlap `data`). */
  update(data: Uint8Array, out?: Uint8Array): Buffer {
    assertBytes(data, "data");
    const into = target(out, this.#native.outputSize(data.length));
    return view(into, this.#native.update(data, into));
  }

  /**
   * Ends the operation and returns its last bytes. Throws ERR_NATIVE_INVALID_ARGUMENT when ecb/cbc
   * input was not whole blocks or cbc-pad ciphertext not a positive whole number of blocks, and
   * ERR_NATIVE_BAD_PADDING when cbc-pad padding is invalid.
   */
  final(out?: Uint8Array): Buffer {
    const into = target(out, this.#native.finalOutputSize());
    return view(into, this.#native.final(into));
  }

  /** Ends the operation without output (PKCS#11: a session closed or the operation cancelled). */
  abort(): void {
    this.#native.abort();
  }

  /** True after final(), abort() or an error; later calls throw ERR_NATIVE_INVALID_ARGUMENT. */
  get ended(): boolean {
    return this.#native.ended;
  }
}

/** Starts a multi-part encryption (PKCS#11 C_EncryptInit). */
export function aesEncryptInit(key: KeyHandle, mode: AesMode, params?: AesModeParams): AesOperation {
  return new AesOperation(key, mode, "encrypt", params);
}

/** Starts a multi-part decryption (PKCS#11 C_DecryptInit). */
export function aesDecryptInit(key: KeyHandle, mode: AesMode, params?: AesModeParams): AesOperation {
  return new AesOperation(key, mode, "decrypt", params);
}
