/**
 * HMAC (PKCS#11 v2.40 current mechanisms §2.20–2.22, FIPS 198-1): CKM_SHA_1_HMAC, CKM_SHA224_HMAC,
 * CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC (full-length tags) and the *_HMAC_GENERAL
 * variants (CK_MAC_GENERAL_PARAMS: the tag length in bytes), sign and verify, single- and
 * multi-part, in the native core (src/crypto/hmac.ts): the key's bytes never enter JavaScript and
 * verification compares in constant time.
 *
 * Keys: CKK_GENERIC_SECRET, or the hash's own CKK_SHA*_HMAC type. Any length the native key slot
 * holds (1..8192 bytes) is accepted, as RFC 2104 §3 permits; SoftHSMv2 instead refuses keys
 * shorter than the hash output with CKR_KEY_SIZE_RANGE. CK_MECHANISM_INFO gives key sizes in
 * bytes, as SoftHSMv2 does (the specification does not fix a unit for HMAC).
 *
 * C_Verify with a tag of the wrong length is CKR_SIGNATURE_LEN_RANGE; a wrong tag of the right
 * length is CKR_SIGNATURE_INVALID.
 */
import { HMAC_MIN_TAG_LENGTH, hmacInit, type HmacHash, type HmacOperation } from "../../src/crypto/hmac.js";
import { MAX_KEY_BYTES } from "../../src/crypto/keys.js";
import { CkrError } from "../errors.js";
import { readUlong } from "../objects/attributes.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";
import type { MechanismFamily } from "./mechanism.js";
import { native } from "./native-errors.js";
import { noParameter, paramError } from "./params.js";

const P = pkcs11;

const KEY_ERRORS = { invalidArgument: P.CKR_KEY_SIZE_RANGE };

/** Ends a native operation that may already have ended (final, verify or an error end it). */
function release(operation: HmacOperation): void {
  if (!operation.ended) operation.abort();
}

/**
 * CK_MAC_GENERAL_PARAMS (a CK_ULONG): pkcs11js passes a number, or a Buffer holding the CK_ULONG
 * (8 bytes little-endian on LP64, 4 on LLP64). Tag lengths below 4 bytes are refused: NIST
 * SP 800-107 Rev. 1 §5.3.3 sets 32 bits as the floor for truncated HMAC.
 */
function generalLength(mechanism: Mechanism, full: number): number {
  const parameter = mechanism.parameter;
  let length: number;
  if (typeof parameter === "number") length = parameter;
  else if (Buffer.isBuffer(parameter) && parameter.length === 8) length = readUlong(parameter);
  else if (Buffer.isBuffer(parameter) && parameter.length === 4) length = parameter.readUInt32LE(0);
  else throw paramError("HMAC_GENERAL needs CK_MAC_GENERAL_PARAMS (the tag length)");
  if (!Number.isInteger(length) || length < HMAC_MIN_TAG_LENGTH || length > full) {
    throw paramError(`HMAC tag length must be ${HMAC_MIN_TAG_LENGTH}..${full} bytes`);
  }
  return length;
}

function hmacFamily(hash: HmacHash, full: number, keyType: number, general: boolean): MechanismFamily {
  const start = (key: P11Object, mechanism: Mechanism): HmacOperation => {
    let tagLength = full;
    if (general) tagLength = generalLength(mechanism, full);
    else noParameter(mechanism);
    return native(KEY_ERRORS, () => hmacInit(key.secretKey(), hash, { tagLength }));
  };
  return {
    info: { minKeySize: 1, maxKeySize: MAX_KEY_BYTES, flags: P.CKF_SIGN | P.CKF_VERIFY },
    keyTypes: [P.CKK_GENERIC_SECRET, keyType],
    sign(key, mechanism) {
      const operation = start(key, mechanism);
      return {
        update: (input) => void native(KEY_ERRORS, () => operation.update(input)),
        final: () => native(KEY_ERRORS, () => operation.sign()),
        length: () => operation.tagLength,
        abort: () => release(operation),
      };
    },
    verify(key, mechanism) {
      const operation = start(key, mechanism);
      return {
        update: (input) => void native(KEY_ERRORS, () => operation.update(input)),
        final(signature) {
          if (signature.length !== operation.tagLength) throw new CkrError(P.CKR_SIGNATURE_LEN_RANGE, `tag must be ${operation.tagLength} bytes`);
          return native(KEY_ERRORS, () => operation.verify(signature));
        },
        abort: () => release(operation),
      };
    },
  };
}

const FAMILIES: ReadonlyArray<[HmacHash, number, number, number, number]> = [
  // hash, tag bytes, CKM_*_HMAC, CKM_*_HMAC_GENERAL, CKK_*_HMAC
  ["sha1", 20, P.CKM_SHA_1_HMAC, P.CKM_SHA_1_HMAC_GENERAL, P.CKK_SHA_1_HMAC],
  ["sha224", 28, P.CKM_SHA224_HMAC, P.CKM_SHA224_HMAC_GENERAL, P.CKK_SHA224_HMAC],
  ["sha256", 32, P.CKM_SHA256_HMAC, P.CKM_SHA256_HMAC_GENERAL, P.CKK_SHA256_HMAC],
  ["sha384", 48, P.CKM_SHA384_HMAC, P.CKM_SHA384_HMAC_GENERAL, P.CKK_SHA384_HMAC],
  ["sha512", 64, P.CKM_SHA512_HMAC, P.CKM_SHA512_HMAC_GENERAL, P.CKK_SHA512_HMAC],
];

export const HMAC_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map(
  FAMILIES.flatMap(([hash, full, mechanism, generalMechanism, keyType]) => [
    [mechanism, hmacFamily(hash, full, keyType, false)],
    [generalMechanism, hmacFamily(hash, full, keyType, true)],
  ]),
);
