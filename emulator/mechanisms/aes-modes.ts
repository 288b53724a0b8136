/**
 * AES confidentiality modes (PKCS#11 v2.40 current mechanisms §2.8.5–2.8.8 and §2.10 "AES with
 * Counter"; NIST SP 800-38A): CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD (PKCS#7 padding) and
 * CKM_AES_CTR, encrypt and decrypt, single- and multi-part, in the native core
 * (src/crypto/modes.ts) so the key schedule stays in native memory.
 *
 * Parameters, as pkcs11js passes them:
 * - ECB: none.
 * - CBC, CBC_PAD: the 16-byte IV as a Buffer.
 * - CTR: CK_AES_CTR_PARAMS { CK_ULONG ulCounterBits; CK_BYTE cb[16]; } as a Buffer — pkcs11js has
 *   no CK_PARAMS_ type for it, so callers pass the C struct's bytes: ulCounterBits little-endian
 *   (8 bytes on LP64, 4 on LLP64) then the counter block. ulCounterBits is 1..128; the counter is
 *   the block's low ulCounterBits bits, big-endian, and must not wrap.
 *
 * Lengths (§2.8.5–2.8.8 tables): ECB and CBC take whole 16-byte blocks (else CKR_DATA_LEN_RANGE /
 * CKR_ENCRYPTED_DATA_LEN_RANGE); CBC_PAD encrypts any length and decrypts whole blocks, bad padding
 * being CKR_ENCRYPTED_DATA_INVALID; CTR takes any length, and input that would wrap the counter is
 * a length-range error before anything is processed (SoftHSMv2 does the same). A malformed
 * parameter is CKR_MECHANISM_PARAM_INVALID (SoftHSMv2 says CKR_ARGUMENTS_BAD).
 */
import { isNativeError } from "../../src/crypto/errors.js";
import { aesDecryptInit, aesEncryptInit, aesOutputSize, type AesMode, type AesModeParams, type AesOperation } from "../../src/crypto/modes.js";
import { CkrError } from "../errors.js";
import { readUlong } from "../objects/attributes.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";
import type { CipherOperation, MechanismFamily } from "./mechanism.js";
import { translate } from "./native-errors.js";
import { bufferParameter, noParameter, paramError } from "./params.js";

const P = pkcs11;

/** CK_AES_CTR_PARAMS as bytes: ulCounterBits (8 or 4 bytes, little-endian) then cb[16]. */
function ctrParameters(mechanism: Mechanism): AesModeParams {
  const parameter = mechanism.parameter;
  if (!Buffer.isBuffer(parameter) || (parameter.length !== 24 && parameter.length !== 20)) {
    throw paramError("AES-CTR needs CK_AES_CTR_PARAMS: ulCounterBits (CK_ULONG, little-endian) then the 16-byte counter block");
  }
  const ulongBytes = parameter.length - 16;
  const counterBits = ulongBytes === 8 ? readUlong(parameter.subarray(0, 8)) : parameter.readUInt32LE(0);
  if (counterBits < 1 || counterBits > 128) throw paramError("ulCounterBits must be 1..128");
  return { iv: Buffer.from(parameter.subarray(ulongBytes)), counterBits };
}

function modeParameters(mode: AesMode, mechanism: Mechanism): AesModeParams {
  if (mode === "ecb") {
    noParameter(mechanism);
    return {};
  }
  if (mode === "ctr") return ctrParameters(mechanism);
  return { iv: Buffer.from(bufferParameter(mechanism, [16])) };
}

/** Native errors in CKR terms: lengths (and counter overflow) are the direction's length-range error. */
function modeError(error: unknown, lengthRange: number): unknown {
  if (isNativeError(error, "ERR_NATIVE_COUNTER_OVERFLOW")) return new CkrError(lengthRange, "the counter would wrap");
  return translate(error, { invalidArgument: lengthRange, integrity: P.CKR_ENCRYPTED_DATA_INVALID });
}

function modeOperation(mode: AesMode, encrypt: boolean, key: P11Object, mechanism: Mechanism): CipherOperation {
  const params = modeParameters(mode, mechanism);
  const lengthRange = encrypt ? P.CKR_DATA_LEN_RANGE : P.CKR_ENCRYPTED_DATA_LEN_RANGE;
  const direction = encrypt ? "encrypt" : "decrypt";
  const run = <T>(body: () => T): T => {
    try {
      return body();
    } catch (error) {
      throw modeError(error, lengthRange);
    }
  };
  const operation: AesOperation = run(() => (encrypt ? aesEncryptInit : aesDecryptInit)(key.secretKey(), mode, params));
  return {
    onceLength: (length) => run(() => aesOutputSize(mode, direction, length)),
    once: (input) =>
      run(() => {
        aesOutputSize(mode, direction, input.length); // refuses a length the mode cannot take before anything runs
        const head = operation.update(input);
        const tail = operation.final();
        return head.length === 0 ? tail : tail.length === 0 ? head : Buffer.concat([head, tail]);
      }),
    updateLength: (length) => run(() => operation.outputSize(length)),
    update: (input) => run(() => operation.update(input)),
    finalLength: () => run(() => operation.finalOutputSize()),
    final: () => run(() => operation.final()),
    abort() {
      if (!operation.ended) operation.abort();
    },
  };
}

function modeFamily(mode: AesMode): MechanismFamily {
  return {
    // §2.8: AES key sizes in bytes.
    info: { minKeySize: 16, maxKeySize: 32, flags: P.CKF_ENCRYPT | P.CKF_DECRYPT },
    keyTypes: [P.CKK_AES],
    encrypt: (key, mechanism) => modeOperation(mode, true, key, mechanism),
    decrypt: (key, mechanism) => modeOperation(mode, false, key, mechanism),
  };
}

export const AES_MODE_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([
  [P.CKM_AES_ECB, modeFamily("ecb")],
  [P.CKM_AES_CBC, modeFamily("cbc")],
  [P.CKM_AES_CBC_PAD, modeFamily("cbc-pad")],
  [P.CKM_AES_CTR, modeFamily("ctr")],
]);
