/**
 * CKA_CHECK_VALUE, the key checksum of secret keys (PKCS#11 v2.40 base §4.10 Table 31). Its
 * derivation depends on the key type (v2.40 current mechanisms):
 *
 * - AES (§2.8.2): the first three bytes of the ECB encryption of a single block of null (0x00)
 *   bytes under the key — computed in the native core, the key never leaving it;
 * - generic secret (§2.37.1) and the HMAC key types SoftHSMv2 treats alike: the first three bytes
 *   of the SHA-1 hash of CKA_VALUE — node:crypto over the key's bytes, copied out and wiped as
 *   C_DigestKey does (the native core has no bare digest).
 *
 * The value is not secret (it has no footnote 7) and identifies a key without revealing it.
 * Templates, as SoftHSMv2 reads them (src/lib/SoftHSM.cpp generateAES/deriveECDH,
 * P11AttrCheckValue::updateAttr): a zero-length value asks for no check value; a value given to
 * C_CreateObject or C_UnwrapKey must be the key's (CKR_ATTRIBUTE_VALUE_INVALID otherwise); one
 * given to C_GenerateKey or C_DeriveKey is refused, since the caller cannot know a new key's.
 */
import { createHash } from "node:crypto";
import type { KeyHandle } from "../../src/crypto/keys.js";
import { aesEncrypt, AES_BLOCK_SIZE } from "../../src/crypto/modes.js";
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";
import { readUlong } from "./attributes.js";
import type { ObjectMaterial, Origin } from "./object.js";

const P = pkcs11;
const CHECK_VALUE_BYTES = 3;

function aesCheckValue(key: KeyHandle): Buffer {
  return aesEncrypt(key, "ecb", Buffer.alloc(AES_BLOCK_SIZE)).subarray(0, CHECK_VALUE_BYTES);
}

function sha1CheckValue(key: KeyHandle): Buffer {
  const bytes = key.exportBytes();
  try {
    return createHash("sha1").update(bytes).digest().subarray(0, CHECK_VALUE_BYTES);
  } finally {
    bytes.fill(0);
  }
}

const BY_KEY_TYPE: ReadonlyMap<number, (key: KeyHandle) => Buffer> = new Map([
  [P.CKK_AES, aesCheckValue],
  [P.CKK_GENERIC_SECRET, sha1CheckValue],
  [P.CKK_SHA_1_HMAC, sha1CheckValue],
  [P.CKK_SHA224_HMAC, sha1CheckValue],
  [P.CKK_SHA256_HMAC, sha1CheckValue],
  [P.CKK_SHA384_HMAC, sha1CheckValue],
  [P.CKK_SHA512_HMAC, sha1CheckValue],
]);

/** The check value of a secret key of `keyType` (a key type of the attribute tables in rules.ts). */
export function checkValueOf(keyType: number, key: KeyHandle): Buffer {
  const compute = BY_KEY_TYPE.get(keyType);
  if (compute === undefined) throw new CkrError(P.CKR_GENERAL_ERROR, `no check value is defined for key type 0x${keyType.toString(16)}`);
  return compute(key);
}

/**
 * Settles CKA_CHECK_VALUE in the attributes of a new secret key made by `origin` (not a copy,
 * which keeps its source's): computes it, checks or refuses a caller's value as the file comment
 * says, and leaves a zero-length one as it is.
 */
export function settleCheckValue(attrs: Map<number, Buffer>, key: KeyHandle, origin: Origin): void {
  const given = attrs.get(P.CKA_CHECK_VALUE);
  if (given !== undefined && given.length === 0) return;
  if (given !== undefined && (origin === "generate" || origin === "derive")) {
    throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "a new key's CKA_CHECK_VALUE is computed by the token; give none or a zero-length one");
  }
  const computed = checkValueOf(readUlong(attrs.get(P.CKA_KEY_TYPE)!), key);
  if (given !== undefined && !given.equals(computed)) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_CHECK_VALUE is not this key's");
  attrs.set(P.CKA_CHECK_VALUE, computed);
}

/**
 * Token objects stored before the token computed check values have none: theirs is computed when
 * they are loaded, so every secret key reports one.
 */
export function backfillCheckValue(attrs: Map<number, Buffer>, material: ObjectMaterial): void {
  const keyType = attrs.get(P.CKA_KEY_TYPE);
  if (material.kind !== "secret" || keyType === undefined || attrs.has(P.CKA_CHECK_VALUE)) return;
  const compute = BY_KEY_TYPE.get(readUlong(keyType));
  if (compute !== undefined) attrs.set(P.CKA_CHECK_VALUE, compute(material.key));
}
