/**
 * RSA (PKCS#11 v2.40 current mechanisms §2.1; RFC 8017) through node:crypto KeyObjects (OpenSSL):
 *
 * - CKM_RSA_PKCS_KEY_PAIR_GEN (§2.1.4): CKA_MODULUS_BITS 2048..4096 (even: OpenSSL cannot make an
 *   odd-length modulus exactly), CKA_PUBLIC_EXPONENT odd, 3..2³²−1, default 65537.
 * - CKM_RSA_PKCS_OAEP (§2.1.8, CK_RSA_PKCS_OAEP_PARAMS): encrypt/decrypt, and wrap/unwrap of
 *   secret keys (as SoftHSMv2, private keys are not wrapped with OAEP: CKR_KEY_NOT_WRAPPABLE).
 *   hashAlg SHA-1/224/256/384/512; mgf must be MGF1 with the same hash (OpenSSL through
 *   node:crypto offers no other pairing); source CKZ_DATA_SPECIFIED with an optional label.
 *   SoftHSMv2 allows only SHA-1 and an empty label.
 * - CKM_RSA_PKCS (§2.1.6) for sign/verify only, single-part: PKCS #1 v1.5 block type 1 over the caller's data
 *   (normally a DigestInfo), at most k − 11 bytes.
 * - CKM_SHA{224,256,384,512}_RSA_PKCS (§2.1.11) and CKM_SHA{224,256,384,512}_RSA_PKCS_PSS
 *   (§2.1.12, CK_RSA_PKCS_PSS_PARAMS: hashAlg and mgf must match the mechanism's hash, sLen at
 *   most emLen − hLen − 2), single- and multi-part.
 *
 * Operations take keys of 2048..8192 bits (CKR_KEY_SIZE_RANGE otherwise). CK_MECHANISM_INFO key
 * sizes are in bits. OAEP and raw PKCS #1 are single-part: C_EncryptUpdate and friends are
 * CKR_FUNCTION_NOT_SUPPORTED, as in SoftHSMv2.
 */
import { constants, privateDecrypt, privateEncrypt, publicDecrypt, publicEncrypt, timingSafeEqual, type KeyObject } from "node:crypto";
import { importKey } from "../../src/crypto/keys.js";
import { generateKeyPair } from "../../src/crypto/signatures.js";
import { CkrError } from "../errors.js";
import { CKZ_DATA_SPECIFIED } from "../extra-constants.js";
import { readUlong, ulong } from "../objects/attributes.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";
import { secretKeyAttributes } from "./aes.js";
import { bytesToBigInt } from "./arith.js";
import { expectClassAndType, hashedSign, hashedVerify, keyAttributes, keyObject, modulusBits, privateMaterial, refuseGiven } from "./asymmetric.js";
import { HASHES, hashInfo, type HashInfo } from "./digest.js";
import type { CipherOperation, MechanismFamily, NewKey } from "./mechanism.js";
import { native } from "./native-errors.js";
import { noParameter, paramError } from "./params.js";

const P = pkcs11;

/** Key pair generation range, bits. */
const GENERATE_MIN_BITS = 2048;
const GENERATE_MAX_BITS = 4096;
/** Keys the operations accept (imported keys may be larger than generated ones), bits. */
const MIN_BITS = 2048;
const MAX_BITS = 8192;
const DEFAULT_EXPONENT = 65537n;

/** The KeyObject of an RSA key of usable size, and its modulus length k in bytes. */
function rsaKey(object: P11Object, kind: "private" | "public"): { key: KeyObject; bits: number; k: number } {
  const key = keyObject(object, kind);
  const bits = modulusBits(key);
  if (bits < MIN_BITS || bits > MAX_BITS) throw new CkrError(P.CKR_KEY_SIZE_RANGE, `RSA keys of ${MIN_BITS}..${MAX_BITS} bits`);
  return { key, bits, k: Math.ceil(bits / 8) };
}

// CKM_RSA_PKCS_KEY_PAIR_GEN

const keyPairGen: MechanismFamily = {
  info: { minKeySize: GENERATE_MIN_BITS, maxKeySize: GENERATE_MAX_BITS, flags: P.CKF_GENERATE_KEY_PAIR },
  generateKeyPair(publicTemplate, privateTemplate, mechanism) {
    noParameter(mechanism);
    expectClassAndType(publicTemplate, P.CKO_PUBLIC_KEY, P.CKK_RSA);
    expectClassAndType(privateTemplate, P.CKO_PRIVATE_KEY, P.CKK_RSA);
    refuseGiven(publicTemplate, [P.CKA_MODULUS]);
    refuseGiven(privateTemplate, [P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT]);
    const bitsValue = publicTemplate.get(P.CKA_MODULUS_BITS);
    if (bitsValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_MODULUS_BITS is required");
    const bits = readUlong(bitsValue);
    if (bits < GENERATE_MIN_BITS || bits > GENERATE_MAX_BITS || bits % 2 !== 0) {
      throw new CkrError(P.CKR_KEY_SIZE_RANGE, `RSA key pairs of ${GENERATE_MIN_BITS}..${GENERATE_MAX_BITS} bits (even)`);
    }
    const exponentValue = publicTemplate.get(P.CKA_PUBLIC_EXPONENT);
    const exponent = exponentValue === undefined ? DEFAULT_EXPONENT : bytesToBigInt(exponentValue);
    if (exponent < 3n || exponent % 2n === 0n || exponent > 0xffffffffn) {
      throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "public exponent must be odd, 3..2^32-1");
    }
    const { publicKey, privateKey } = generateKeyPair({ kind: "rsa", modulusBits: bits, publicExponent: exponent });
    if (modulusBits(publicKey) !== bits) throw new CkrError(P.CKR_KEY_SIZE_RANGE, "the generator could not make a modulus of that length");
    const publicFixed = keyAttributes(publicKey, P.CKO_PUBLIC_KEY);
    const privateFixed = keyAttributes(privateKey, P.CKO_PRIVATE_KEY);
    for (const fixed of [publicFixed, privateFixed]) fixed.set(P.CKA_KEY_GEN_MECHANISM, ulong(P.CKM_RSA_PKCS_KEY_PAIR_GEN));
    return {
      publicKey: { fixed: publicFixed, material: { kind: "public", key: publicKey } },
      privateKey: { fixed: privateFixed, material: privateMaterial(privateKey) },
    };
  },
};

// CKM_RSA_PKCS_OAEP

interface OaepParameters {
  hash: HashInfo;
  label: Buffer;
}

/** CK_RSA_PKCS_OAEP_PARAMS as pkcs11js passes it: { type: CK_PARAMS_RSA_OAEP, hashAlg, mgf, source, sourceData? }. */
function oaepParameters(mechanism: Mechanism): OaepParameters {
  const parameter = mechanism.parameter as { type?: unknown; hashAlg?: unknown; mgf?: unknown; source?: unknown; sourceData?: unknown } | undefined;
  if (typeof parameter !== "object" || parameter === null || Buffer.isBuffer(parameter) || parameter.type !== P.CK_PARAMS_RSA_OAEP) {
    throw paramError("OAEP needs CK_RSA_PKCS_OAEP_PARAMS");
  }
  const hash = HASHES.get(parameter.hashAlg as number);
  if (hash === undefined) throw paramError("OAEP hashAlg must be CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384 or CKM_SHA512");
  if (parameter.mgf !== hash.mgf) throw paramError("OAEP mgf must be MGF1 with the hashAlg's hash");
  if (parameter.source !== CKZ_DATA_SPECIFIED) throw paramError("OAEP source must be CKZ_DATA_SPECIFIED");
  const label = parameter.sourceData ?? Buffer.alloc(0);
  if (!Buffer.isBuffer(label)) throw paramError("OAEP sourceData must be a Buffer");
  return { hash, label };
}

/** The longest message OAEP takes under a k-byte modulus (RFC 8017 §7.1.1). */
const oaepCapacity = (k: number, hash: HashInfo): number => k - 2 * hash.length - 2;

function oaepEncrypt(key: KeyObject, { hash, label }: OaepParameters, message: Buffer): Buffer {
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: label }, message);
}

/** Decrypts, or throws `invalid` (one error for every failure, so nothing is learned from which check failed). */
function oaepDecrypt(key: KeyObject, { hash, label }: OaepParameters, ciphertext: Buffer, invalid: number): Buffer {
  try {
    return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name, oaepLabel: label }, ciphertext);
  } catch {
    throw new CkrError(invalid);
  }
}

function singlePart(once: (input: Buffer) => Buffer, onceLength: (length: number) => number): CipherOperation {
  const refuse = (): never => {
    throw new CkrError(P.CKR_FUNCTION_NOT_SUPPORTED, "single-part mechanism");
  };
  return { once, onceLength, update: refuse, updateLength: refuse, final: refuse, finalLength: refuse };
}

/** A secret key recovered by unwrapping: the template's class and key type, a length that fits (else CKR_WRAPPED_KEY_INVALID). */
function unwrappedSecret(bytes: Buffer, template: Map<number, Buffer>): NewKey {
  const classValue = template.get(P.CKA_CLASS);
  const keyTypeValue = template.get(P.CKA_KEY_TYPE);
  if (classValue === undefined || keyTypeValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "unwrap needs CKA_CLASS and CKA_KEY_TYPE");
  if (readUlong(classValue) !== P.CKO_SECRET_KEY) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "RSA OAEP unwraps secret keys");
  const keyType = readUlong(keyTypeValue);
  const given = template.get(P.CKA_VALUE_LEN);
  if (bytes.length === 0 || (keyType === P.CKK_AES && ![16, 24, 32].includes(bytes.length)) || (given !== undefined && readUlong(given) !== bytes.length)) {
    throw new CkrError(P.CKR_WRAPPED_KEY_INVALID, "unwrapped length does not fit the key type");
  }
  const fixed = secretKeyAttributes(template, keyType, bytes.length);
  return { fixed, material: { kind: "secret", key: native({ invalidArgument: P.CKR_WRAPPED_KEY_INVALID }, () => importKey(bytes)) } };
}

const oaep: MechanismFamily = {
  info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_ENCRYPT | P.CKF_DECRYPT | P.CKF_WRAP | P.CKF_UNWRAP },
  keyTypes: [P.CKK_RSA],
  encrypt(object, mechanism) {
    const parameters = oaepParameters(mechanism);
    const { key, k } = rsaKey(object, "public");
    const capacity = oaepCapacity(k, parameters.hash);
    return singlePart((input) => {
      if (input.length > capacity) throw new CkrError(P.CKR_DATA_LEN_RANGE, `OAEP takes at most ${capacity} bytes here`);
      return oaepEncrypt(key, parameters, input);
    }, () => k);
  },
  decrypt(object, mechanism) {
    const parameters = oaepParameters(mechanism);
    const { key, k } = rsaKey(object, "private");
    const checkLength = (length: number): void => {
      if (length !== k) throw new CkrError(P.CKR_ENCRYPTED_DATA_LEN_RANGE, `ciphertext must be ${k} bytes`);
    };
    return singlePart((input) => {
      checkLength(input.length);
      return oaepDecrypt(key, parameters, input, P.CKR_ENCRYPTED_DATA_INVALID);
    }, (length) => {
      checkLength(length);
      return oaepCapacity(k, parameters.hash);
    });
  },
  wrap(wrappingKey, target, mechanism) {
    const parameters = oaepParameters(mechanism);
    const { key, k } = rsaKey(wrappingKey, "public");
    if (target.material.kind !== "secret") throw new CkrError(P.CKR_KEY_NOT_WRAPPABLE, "RSA OAEP wraps secret keys only");
    const bytes = target.material.key.exportBytes();
    try {
      if (bytes.length > oaepCapacity(k, parameters.hash)) throw new CkrError(P.CKR_KEY_SIZE_RANGE, "key too long for OAEP under this modulus");
      return oaepEncrypt(key, parameters, bytes);
    } finally {
      bytes.fill(0);
    }
  },
  unwrap(unwrappingKey, wrapped, template, mechanism) {
    const parameters = oaepParameters(mechanism);
    const { key, k } = rsaKey(unwrappingKey, "private");
    if (wrapped.length !== k) throw new CkrError(P.CKR_WRAPPED_KEY_LEN_RANGE, `wrapped key must be ${k} bytes`);
    const bytes = oaepDecrypt(key, parameters, wrapped, P.CKR_WRAPPED_KEY_INVALID);
    try {
      return unwrappedSecret(bytes, template);
    } finally {
      bytes.fill(0);
    }
  },
};

// CKM_RSA_PKCS (sign/verify of the caller's data, PKCS #1 v1.5 block type 1)

const rawPkcs1: MechanismFamily = {
  info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_SIGN | P.CKF_VERIFY },
  keyTypes: [P.CKK_RSA],
  sign(object, mechanism) {
    noParameter(mechanism);
    const { key, k } = rsaKey(object, "private");
    const parts: Buffer[] = [];
    return {
      singlePart: true,
      update: (input) => void parts.push(Buffer.from(input)),
      final() {
        const data = Buffer.concat(parts);
        if (data.length > k - 11) throw new CkrError(P.CKR_DATA_LEN_RANGE, `at most ${k - 11} bytes`);
        return privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, data);
      },
      length: () => k,
    };
  },
  verify(object, mechanism) {
    noParameter(mechanism);
    const { key, k } = rsaKey(object, "public");
    const parts: Buffer[] = [];
    return {
      singlePart: true,
      update: (input) => void parts.push(Buffer.from(input)),
      final(signature) {
        const data = Buffer.concat(parts);
        if (data.length > k - 11) throw new CkrError(P.CKR_DATA_LEN_RANGE, `at most ${k - 11} bytes`);
        if (signature.length !== k) throw new CkrError(P.CKR_SIGNATURE_LEN_RANGE, `signature must be ${k} bytes`);
        let recovered: Buffer;
        try {
          recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature);
        } catch {
          return false;
        }
        return recovered.length === data.length && timingSafeEqual(recovered, data);
      },
    };
  },
};

// CKM_SHA*_RSA_PKCS and CKM_SHA*_RSA_PKCS_PSS

/** CK_RSA_PKCS_PSS_PARAMS ({ type: CK_PARAMS_RSA_PSS, hashAlg, mgf, saltLen }) for a key of `bits`: the salt length. */
function pssSaltLength(mechanism: Mechanism, hash: HashInfo, bits: number): number {
  const parameter = mechanism.parameter as { type?: unknown; hashAlg?: unknown; mgf?: unknown; saltLen?: unknown } | undefined;
  if (typeof parameter !== "object" || parameter === null || Buffer.isBuffer(parameter) || parameter.type !== P.CK_PARAMS_RSA_PSS) {
    throw paramError("PSS needs CK_RSA_PKCS_PSS_PARAMS");
  }
  if (parameter.hashAlg !== hash.mechanism || parameter.mgf !== hash.mgf) throw paramError("PSS hashAlg and mgf must match the mechanism's hash");
  const saltLength = parameter.saltLen;
  const emLength = Math.ceil((bits - 1) / 8); // RFC 8017 §9.1.1: emLen = ⌈(modBits − 1)/8⌉
  if (typeof saltLength !== "number" || !Number.isInteger(saltLength) || saltLength < 0 || saltLength > emLength - hash.length - 2) {
    throw paramError(`PSS sLen must be 0..${emLength - hash.length - 2} for this key`);
  }
  return saltLength;
}

function hashedRsa(hashMechanism: number, pss: boolean): MechanismFamily {
  const hash = hashInfo(hashMechanism);
  const options = (mechanism: Mechanism, bits: number) => {
    if (!pss) {
      noParameter(mechanism);
      return { padding: constants.RSA_PKCS1_PADDING };
    }
    return { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pssSaltLength(mechanism, hash, bits) };
  };
  return {
    info: { minKeySize: MIN_BITS, maxKeySize: MAX_BITS, flags: P.CKF_SIGN | P.CKF_VERIFY },
    keyTypes: [P.CKK_RSA],
    sign(object, mechanism) {
      const { key, bits, k } = rsaKey(object, "private");
      return hashedSign(hash.name, key, options(mechanism, bits), k);
    },
    verify(object, mechanism) {
      const { key, bits, k } = rsaKey(object, "public");
      return hashedVerify(hash.name, key, options(mechanism, bits), k);
    },
  };
}

export const RSA_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([
  [P.CKM_RSA_PKCS_KEY_PAIR_GEN, keyPairGen],
  [P.CKM_RSA_PKCS, rawPkcs1],
  [P.CKM_RSA_PKCS_OAEP, oaep],
  [P.CKM_SHA224_RSA_PKCS, hashedRsa(P.CKM_SHA224, false)],
  [P.CKM_SHA256_RSA_PKCS, hashedRsa(P.CKM_SHA256, false)],
  [P.CKM_SHA384_RSA_PKCS, hashedRsa(P.CKM_SHA384, false)],
  [P.CKM_SHA512_RSA_PKCS, hashedRsa(P.CKM_SHA512, false)],
  [P.CKM_SHA224_RSA_PKCS_PSS, hashedRsa(P.CKM_SHA224, true)],
  [P.CKM_SHA256_RSA_PKCS_PSS, hashedRsa(P.CKM_SHA256, true)],
  [P.CKM_SHA384_RSA_PKCS_PSS, hashedRsa(P.CKM_SHA384, true)],
  [P.CKM_SHA512_RSA_PKCS_PSS, hashedRsa(P.CKM_SHA512, true)],
]);
