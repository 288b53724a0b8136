/**
 * Elliptic curves over prime fields (PKCS#11 v2.40 current mechanisms §2.3) through node:crypto
 * KeyObjects (OpenSSL), on the named curves P-256, P-384 and P-521:
 *
 * - CKM_EC_KEY_PAIR_GEN (§2.3.5): CKA_EC_PARAMS (the DER OID) in the public template.
 * - CKM_ECDSA (§2.3.6): r‖s over the caller's hash, which is truncated to the order's bit length
 *   as FIPS 186-5 says, signed and verified by OpenSSL's EVP_PKEY_sign/verify in the native core
 *   (src/crypto/signatures.ts), since node:crypto always hashes its input. Single-part, as
 *   the specification has it: C_SignUpdate / C_VerifyUpdate are refused.
 * - CKM_ECDSA_SHA256 / _SHA384 / _SHA512 (§2.3.7, v2.40 names): hash-then-sign by OpenSSL,
 *   single- and multi-part; r‖s each ⌈log₂ n / 8⌉ bytes.
 * - CKM_ECDH1_DERIVE (§2.3.14, CK_ECDH1_DERIVE_PARAMS): kdf CKD_NULL only, no shared data; the
 *   peer's public point raw or as a DER OCTET STRING. The raw shared secret x-coordinate Z
 *   becomes a CKK_GENERIC_SECRET (or CKK_SHA*_HMAC) key of CKA_VALUE_LEN bytes (default all of Z)
 *   or a CKK_AES key of 16/24/32 bytes (default the longest Z allows); a shorter key keeps Z's
 *   trailing bytes, as SoftHSMv2 does.
 *
 * CK_MECHANISM_INFO key sizes are the curve's bits (256..521); every mechanism carries
 * CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS.
 */
import { diffieHellman, type KeyObject } from "node:crypto";
import { importKey } from "../../src/crypto/keys.js";
import { randomBytes } from "../../src/crypto/random.js";
import { CkrError } from "../errors.js";
import { readUlong, ulong } from "../objects/attributes.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, untypedConstant, type Mechanism } from "../pkcs11.js";
import { secretKeyAttributes } from "./aes.js";
import { ecdsaSignDigest, ecdsaVerifyDigest, generateKeyPair } from "../../src/crypto/signatures.js";
import {
  curveFromParams, curveOfKey, ecPoint, expectClassAndType, hashedSign, hashedVerify, keyAttributes, keyObject, privateMaterial,
  publicKeyFromPoint, refuseGiven, type Curve,
} from "./asymmetric.js";
import { hashInfo } from "./digest.js";
import type { MechanismFamily, NewKey } from "./mechanism.js";
import { native } from "./native-errors.js";
import { noParameter, paramError } from "./params.js";

const P = pkcs11;

const EC_FLAGS = untypedConstant("CKF_EC_F_P") | untypedConstant("CKF_EC_NAMEDCURVE") | untypedConstant("CKF_EC_UNCOMPRESS");
const MIN_BITS = 256;
const MAX_BITS = 521;

/** The KeyObject and curve of an EC key object; signatures are 2 × fieldBytes long on these curves. */
function ecKey(object: P11Object, kind: "private" | "public"): { key: KeyObject; curve: Curve; signatureLength: number } {
  const key = keyObject(object, kind);
  const curve = curveOfKey(key);
  return { key, curve, signatureLength: 2 * curve.fieldBytes };
}

/** Randomness for raw ECDSA from the token's DRBG. */

// CKM_EC_KEY_PAIR_GEN

const keyPairGen: MechanismFamily = {
  info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_GENERATE_KEY_PAIR | EC_FLAGS },
  generateKeyPair(publicTemplate, privateTemplate, mechanism) {
    noParameter(mechanism);
    expectClassAndType(publicTemplate, P.CKO_PUBLIC_KEY, P.CKK_EC);
    expectClassAndType(privateTemplate, P.CKO_PRIVATE_KEY, P.CKK_EC);
    refuseGiven(publicTemplate, [P.CKA_EC_POINT]);
    refuseGiven(privateTemplate, [P.CKA_EC_PARAMS]);
    const params = publicTemplate.get(P.CKA_EC_PARAMS);
    if (params === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS is required");
    const curve = curveFromParams(params);
    const { publicKey, privateKey } = generateKeyPair({ kind: "ec", curve: curve.nodeName });
    const publicFixed = keyAttributes(publicKey, P.CKO_PUBLIC_KEY);
    const privateFixed = keyAttributes(privateKey, P.CKO_PRIVATE_KEY);
    for (const fixed of [publicFixed, privateFixed]) fixed.set(P.CKA_KEY_GEN_MECHANISM, ulong(P.CKM_EC_KEY_PAIR_GEN));
    return {
      publicKey: { fixed: publicFixed, material: { kind: "public", key: publicKey } },
      privateKey: { fixed: privateFixed, material: privateMaterial(privateKey) },
    };
  },
};

// CKM_ECDSA (raw) and CKM_ECDSA_SHA*

const rawEcdsa: MechanismFamily = {
  info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_SIGN | P.CKF_VERIFY | EC_FLAGS },
  keyTypes: [P.CKK_EC],
  sign(object, mechanism) {
    noParameter(mechanism);
    const { key, curve, signatureLength } = ecKey(object, "private");
    const parts: Buffer[] = [];
    return {
      singlePart: true,
      update: (input) => void parts.push(Buffer.from(input)),
      final: () => native({ invalidArgument: P.CKR_DATA_LEN_RANGE }, () => ecdsaSignDigest(key, Buffer.concat(parts), signatureLength / 2)),
      length: () => signatureLength,
    };
  },
  verify(object, mechanism) {
    noParameter(mechanism);
    const { key, curve, signatureLength } = ecKey(object, "public");
    const parts: Buffer[] = [];
    return {
      singlePart: true,
      update: (input) => void parts.push(Buffer.from(input)),
      final(signature) {
        if (signature.length !== signatureLength) throw new CkrError(P.CKR_SIGNATURE_LEN_RANGE, `signature must be ${signatureLength} bytes`);
        return native({ invalidArgument: P.CKR_DATA_LEN_RANGE }, () => ecdsaVerifyDigest(key, Buffer.concat(parts), signature));
      },
    };
  },
};

function hashedEcdsa(hashMechanism: number): MechanismFamily {
  const hash = hashInfo(hashMechanism);
  return {
    info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_SIGN | P.CKF_VERIFY | EC_FLAGS },
    keyTypes: [P.CKK_EC],
    sign(object, mechanism) {
      noParameter(mechanism);
      const { key, signatureLength } = ecKey(object, "private");
      return hashedSign(hash.name, key, { dsaEncoding: "ieee-p1363" }, signatureLength);
    },
    verify(object, mechanism) {
      noParameter(mechanism);
      const { key, signatureLength } = ecKey(object, "public");
      return hashedVerify(hash.name, key, { dsaEncoding: "ieee-p1363" }, signatureLength);
    },
  };
}

// CKM_ECDH1_DERIVE

/** CK_ECDH1_DERIVE_PARAMS as pkcs11js passes it ({ type: CK_PARAMS_EC_DH, kdf, sharedData?, publicData }): the peer's point. */
function ecdhPublicData(mechanism: Mechanism): Buffer {
  const parameter = mechanism.parameter as { type?: unknown; kdf?: unknown; sharedData?: unknown; publicData?: unknown } | undefined;
  if (typeof parameter !== "object" || parameter === null || Buffer.isBuffer(parameter) || parameter.type !== P.CK_PARAMS_EC_DH) {
    throw paramError("ECDH1_DERIVE needs CK_ECDH1_DERIVE_PARAMS");
  }
  if (parameter.kdf !== P.CKD_NULL) throw paramError("only kdf CKD_NULL is supported");
  const shared = parameter.sharedData;
  if (shared !== undefined && shared !== null && !(Buffer.isBuffer(shared) && shared.length === 0)) throw paramError("CKD_NULL takes no shared data");
  const publicData = parameter.publicData;
  if (!Buffer.isBuffer(publicData) || publicData.length === 0) throw paramError("publicData (the other party's EC point) is required");
  return publicData;
}

const AES_LENGTHS = [32, 24, 16];
const GENERIC_TYPES = [P.CKK_GENERIC_SECRET, P.CKK_SHA_1_HMAC, P.CKK_SHA224_HMAC, P.CKK_SHA256_HMAC, P.CKK_SHA384_HMAC, P.CKK_SHA512_HMAC];

/** CKA_VALUE_LEN of the derived key (0 or absent: the default), CKR_ATTRIBUTE_VALUE_INVALID when it cannot be met. */
function derivedLength(keyType: number, template: Map<number, Buffer>, available: number): number {
  const value = template.get(P.CKA_VALUE_LEN);
  const asked = value === undefined ? 0 : readUlong(value);
  if (keyType === P.CKK_AES) {
    const length = asked === 0 ? AES_LENGTHS.find((l) => l <= available) : asked;
    if (length === undefined || !AES_LENGTHS.includes(length) || length > available) {
      throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "AES keys are 16, 24 or 32 bytes, at most the shared secret's length");
    }
    return length;
  }
  if (GENERIC_TYPES.includes(keyType)) {
    if (asked > available) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, `at most ${available} bytes from this curve`);
    return asked === 0 ? available : asked;
  }
  throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "ECDH derives generic secret, HMAC or AES keys");
}

const ecdh1Derive: MechanismFamily = {
  info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_DERIVE | EC_FLAGS },
  keyTypes: [P.CKK_EC],
  derive(baseKey, template, mechanism): NewKey {
    const publicData = ecdhPublicData(mechanism);
    const { key: privateKey, curve } = ecKey(baseKey, "private");
    if (template.has(P.CKA_VALUE)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "CKA_VALUE of a derived key comes from the derivation");
    const classValue = template.get(P.CKA_CLASS);
    if (classValue !== undefined && readUlong(classValue) !== P.CKO_SECRET_KEY) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "ECDH derives secret keys");
    const keyTypeValue = template.get(P.CKA_KEY_TYPE);
    if (keyTypeValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE is required");
    const keyType = readUlong(keyTypeValue);
    let peer: KeyObject;
    try {
      peer = publicKeyFromPoint(curve, publicData);
    } catch {
      throw paramError("publicData is not a point on the base key's curve");
    }
    const secret = diffieHellman({ privateKey, publicKey: peer });
    try {
      const length = derivedLength(keyType, template, secret.length);
      const fixed = secretKeyAttributes(template, keyType, length);
      const key = native({ invalidArgument: P.CKR_ATTRIBUTE_VALUE_INVALID }, () => importKey(secret.subarray(secret.length - length)));
      return { fixed, material: { kind: "secret", key } };
    } finally {
      secret.fill(0);
    }
  },
};

export const EC_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([
  [P.CKM_EC_KEY_PAIR_GEN, keyPairGen],
  [P.CKM_ECDSA, rawEcdsa],
  [P.CKM_ECDSA_SHA256, hashedEcdsa(P.CKM_SHA256)],
  [P.CKM_ECDSA_SHA384, hashedEcdsa(P.CKM_SHA384)],
  [P.CKM_ECDSA_SHA512, hashedEcdsa(P.CKM_SHA512)],
  [P.CKM_ECDH1_DERIVE, ecdh1Derive],
]);
