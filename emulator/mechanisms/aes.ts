/**
 * The AES family in the native core: CKM_AES_KEY_GEN (§2.8.3), CKM_AES_GCM (§2.12.2, v2.40
 * "AES GCM and CCM mechanisms"), CKM_AES_KEY_WRAP (§2.14, RFC 3394), CKM_AES_KEY_WRAP_PAD and
 * CKM_AES_KEY_WRAP_KWP (both RFC 5649 KWP: _PAD is what SoftHSMv2 intends for it, though its
 * wrap of lengths that are not a multiple of 8 deviates — a SoftHSMv2 defect we do not copy).
 * Under KWP, private keys (RSA, EC) are wrapped as their PKCS#8 PrivateKeyInfo DER, as SoftHSMv2
 * wraps them; KW wraps secret keys only.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { gcmOpen, gcmSeal, type GcmParams } from "../../src/crypto/aead.js";
import { generateKey, importKey, type KeyHandle } from "../../src/crypto/keys.js";
import { keyUnwrap, keyUnwrapKey, keyWrap, keyWrapKey, type KeyWrapMode } from "../../src/crypto/keywrap.js";
import { CkrError } from "../errors.js";
import { CKM_AES_KEY_WRAP_KWP } from "../extra-constants.js";
import { readUlong, ulong } from "../objects/attributes.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";
import { privateKeyFromPkcs8, privateKeyToPkcs8 } from "./asymmetric.js";
import type { CipherOperation, MechanismFamily, NewKey } from "./mechanism.js";
import { native, translate, type NativeErrorMeaning } from "./native-errors.js";
import { gcmParameters, noParameter, type GcmParameters } from "./params.js";

const P = pkcs11;
const AES_KEY_LENGTHS = [16, 24, 32];

/** Attributes of a new secret key of `keyType` and `length` bytes; checks the template agrees. */
export function secretKeyAttributes(template: Map<number, Buffer>, keyType: number, length: number, generatedBy?: number): Map<number, Buffer> {
  const fixed = new Map<number, Buffer>([
    [P.CKA_CLASS, ulong(P.CKO_SECRET_KEY)],
    [P.CKA_KEY_TYPE, ulong(keyType)],
    [P.CKA_VALUE_LEN, ulong(length)],
  ]);
  if (generatedBy !== undefined) fixed.set(P.CKA_KEY_GEN_MECHANISM, ulong(generatedBy));
  for (const type of [P.CKA_CLASS, P.CKA_KEY_TYPE]) {
    const given = template.get(type);
    if (given !== undefined && !given.equals(fixed.get(type)!)) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "class or key type disagrees with the mechanism");
  }
  return fixed;
}

/** CKA_VALUE_LEN from a template (footnote 3: required for generation). */
export function valueLength(template: Map<number, Buffer>): number {
  const value = template.get(P.CKA_VALUE_LEN);
  if (value === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required");
  return readUlong(value);
}

const aesKeyGen: MechanismFamily = {
  info: { minKeySize: 16, maxKeySize: 32, flags: P.CKF_GENERATE },
  generateKey(template, mechanism): NewKey {
    noParameter(mechanism);
    const length = valueLength(template);
    if (!AES_KEY_LENGTHS.includes(length)) throw new CkrError(P.CKR_KEY_SIZE_RANGE, "AES keys are 16, 24 or 32 bytes");
    const fixed = secretKeyAttributes(template, P.CKK_AES, length, P.CKM_AES_KEY_GEN);
    return { fixed, material: { kind: "secret", key: native({ invalidArgument: P.CKR_KEY_SIZE_RANGE }, () => generateKey(length)) } };
  },
};

const GCM_SEAL_ERRORS: NativeErrorMeaning = { invalidArgument: P.CKR_DATA_LEN_RANGE };
const GCM_OPEN_ERRORS: NativeErrorMeaning = { invalidArgument: P.CKR_ENCRYPTED_DATA_LEN_RANGE, integrity: P.CKR_ENCRYPTED_DATA_INVALID };

/**
 * GCM buffers multi-part input and seals or opens it at C_*Final: decryption must verify the tag
 * before releasing any plaintext. A class rather than an object of closures: one allocation per
 * C_EncryptInit / C_DecryptInit, which the single-part calls of the KMS make for every message.
 */
class GcmOperation implements CipherOperation {
  private readonly params: GcmParams;
  private readonly tagBytes: number;
  /** Multi-part input, made on the first C_*Update (single-part calls never need it). */
  private parts: Buffer[] | undefined;
  private buffered = 0;

  constructor(private readonly key: KeyHandle, parameters: GcmParameters, private readonly encrypt: boolean) {
    this.params = { iv: parameters.iv, aad: parameters.aad, tagLength: parameters.tagBytes };
    this.tagBytes = parameters.tagBytes;
  }

  once(input: Buffer): Buffer {
    return this.run(input, undefined);
  }

  /** A failed open zeroes what it wrote (the native core releases no unauthenticated plaintext). */
  onceInto(input: Buffer, out: Buffer): Buffer {
    return this.run(input, out);
  }

  onceLength(n: number): number {
    return this.encrypt ? n + this.tagBytes : Math.max(0, n - this.tagBytes);
  }

  update(input: Buffer): Buffer {
    (this.parts ??= []).push(Buffer.from(input));
    this.buffered += input.length;
    return Buffer.alloc(0);
  }

  updateLength(): number {
    return 0;
  }

  final(): Buffer {
    return this.run(Buffer.concat(this.parts ?? []), undefined);
  }

  finalLength(): number {
    return this.onceLength(this.buffered);
  }

  private run(input: Buffer, out: Buffer | undefined): Buffer {
    if (this.encrypt) {
      try {
        return gcmSeal(this.key, input, this.params, out);
      } catch (error) {
        throw translate(error, GCM_SEAL_ERRORS);
      }
    }
    if (input.length < this.tagBytes) throw new CkrError(P.CKR_ENCRYPTED_DATA_LEN_RANGE, "shorter than the tag");
    try {
      return gcmOpen(this.key, input, this.params, out);
    } catch (error) {
      throw translate(error, GCM_OPEN_ERRORS);
    }
  }
}

function gcmOperation(key: P11Object, mechanism: Mechanism, encrypt: boolean): CipherOperation {
  const parameters = gcmParameters(mechanism);
  return new GcmOperation(key.secretKey(), parameters, encrypt);
}

const aesGcm: MechanismFamily = {
  info: { minKeySize: 16, maxKeySize: 32, flags: P.CKF_ENCRYPT | P.CKF_DECRYPT },
  keyTypes: [P.CKK_AES],
  encrypt: (key, mechanism) => gcmOperation(key, mechanism, true),
  decrypt: (key, mechanism) => gcmOperation(key, mechanism, false),
};

/**
 * v2.40 §2.14.3: CKM_AES_KEY_WRAP "can wrap a key of any length. A key whose length is not a
 * multiple of the AES Key Wrap block size (8 bytes) will be zero padded to fit" — as SoftHSMv2
 * does. The unwrapping side drops the zeros when the template's CKA_VALUE_LEN says how long the
 * key is (kwUnpadded).
 */
function kwZeroPadded(kek: KeyHandle, key: KeyHandle): Buffer {
  const bytes = key.exportBytes();
  const padded = Buffer.alloc(Math.ceil(bytes.length / 8) * 8);
  bytes.copy(padded);
  bytes.fill(0);
  try {
    return native({ invalidArgument: P.CKR_KEY_SIZE_RANGE }, () => keyWrap(kek, "kw", padded));
  } finally {
    padded.fill(0);
  }
}

/** `key` cut to `length` bytes when what follows is under 8 zero bytes of KW padding; otherwise `key` unchanged. */
function kwUnpadded(key: KeyHandle, length: number): KeyHandle {
  if (length < 1 || length >= key.length || key.length - length >= 8) return key;
  const bytes = key.exportBytes();
  try {
    if (bytes.subarray(length).some((b) => b !== 0)) return key;
    const trimmed = importKey(bytes.subarray(0, length));
    key.destroy();
    return trimmed;
  } finally {
    bytes.fill(0);
  }
}

function keyWrapFamily(mode: KeyWrapMode): MechanismFamily {
  const integrity = { invalidArgument: P.CKR_WRAPPED_KEY_LEN_RANGE, integrity: P.CKR_WRAPPED_KEY_INVALID };
  return {
    info: { minKeySize: 16, maxKeySize: 32, flags: P.CKF_WRAP | P.CKF_UNWRAP },
    keyTypes: [P.CKK_AES],
    wrap(wrappingKey, key, mechanism) {
      noParameter(mechanism);
      if (key.material.kind === "private" && mode === "kwp") {
        const der = privateKeyToPkcs8(key);
        try {
          return native({ invalidArgument: P.CKR_KEY_SIZE_RANGE }, () => keyWrap(wrappingKey.secretKey(), mode, der));
        } finally {
          der.fill(0);
        }
      }
      if (key.material.kind !== "secret") throw new CkrError(P.CKR_KEY_NOT_WRAPPABLE, "AES key wrap takes secret keys (and private keys under KWP)");
      if (mode === "kw" && key.secretKey().length % 8 !== 0) return kwZeroPadded(wrappingKey.secretKey(), key.secretKey());
      return native({ invalidArgument: P.CKR_KEY_SIZE_RANGE }, () => keyWrapKey(wrappingKey.secretKey(), mode, key.secretKey()));
    },
    unwrap(unwrappingKey, wrapped, template, mechanism): NewKey {
      noParameter(mechanism);
      const classValue = template.get(P.CKA_CLASS);
      const keyTypeValue = template.get(P.CKA_KEY_TYPE);
      if (classValue === undefined || keyTypeValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "unwrap needs CKA_CLASS and CKA_KEY_TYPE");
      if (readUlong(classValue) === P.CKO_PRIVATE_KEY && mode === "kwp") {
        const der = native(integrity, () => keyUnwrap(unwrappingKey.secretKey(), mode, wrapped));
        try {
          return privateKeyFromPkcs8(der, template);
        } finally {
          der.fill(0);
        }
      }
      if (readUlong(classValue) !== P.CKO_SECRET_KEY) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "AES key wrap unwraps secret keys (and private keys under KWP)");
      const keyType = readUlong(keyTypeValue);
      let key = native(integrity, () => keyUnwrapKey(unwrappingKey.secretKey(), mode, wrapped));
      const given = template.get(P.CKA_VALUE_LEN);
      if (mode === "kw" && given !== undefined) key = kwUnpadded(key, readUlong(given));
      if ((keyType === P.CKK_AES && !AES_KEY_LENGTHS.includes(key.length)) || (given !== undefined && readUlong(given) !== key.length)) {
        key.destroy();
        throw new CkrError(P.CKR_WRAPPED_KEY_INVALID, "unwrapped length does not fit the key type");
      }
      const fixed = secretKeyAttributes(template, keyType, key.length);
      return { fixed, material: { kind: "secret", key } };
    },
  };
}

export const AES_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([
  [P.CKM_AES_KEY_GEN, aesKeyGen],
  [P.CKM_AES_GCM, aesGcm],
  [P.CKM_AES_KEY_WRAP, keyWrapFamily("kw")],
  [P.CKM_AES_KEY_WRAP_PAD, keyWrapFamily("kwp")],
  [CKM_AES_KEY_WRAP_KWP, keyWrapFamily("kwp")],
]);
