/**
 * CKA_CHECK_VALUE of secret keys (PKCS#11 v2.40 base §4.10 Table 31 "Key checksum"; current
 * mechanisms §2.8.2 AES: the first three bytes of the ECB encryption of a single block of null
 * (0x00) bytes under the key; §2.37 generic secret: the first three bytes of the SHA-1 hash of
 * CKA_VALUE). The token computes it for every secret key it makes; it is not a secret, so it is
 * readable when the key is sensitive. A value the caller supplies at C_CreateObject is compared
 * (CKR_ATTRIBUTE_VALUE_INVALID if wrong), one at C_GenerateKey or C_DeriveKey refused the same
 * way, and a zero-length one asks for none (SoftHSMv2's reading, src/lib/SoftHSM.cpp generateAES /
 * deriveECDH / P11AttrCheckValue::updateAttr).
 */
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { generateKeyPair } from "../../../src/crypto/signatures.js";
import type { Handle } from "../../../emulator/pkcs11.js";
import {
  attribute, byTarget, expectRv, generateAes, importSecret, offers, P, userSession, type Scenario, type TokenUnderTest,
} from "./scenario.js";

/** The AES check value, by node:crypto (OpenSSL). */
function aesCheckValue(key: Buffer): Buffer {
  const cipher = createCipheriv(`aes-${key.length * 8}-ecb`, key, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.alloc(16)), cipher.final()]).subarray(0, 3);
}

function sha1CheckValue(key: Buffer): Buffer {
  return createHash("sha1").update(key).digest().subarray(0, 3);
}

function checkValue(token: TokenUnderTest, session: Handle, key: Handle): Buffer {
  return attribute(token, session, key, P.CKA_CHECK_VALUE);
}

/** The key's own AES-ECB encryption of a zero block, on the token: what the check value must start. */
function ecbOfZeros(token: TokenUnderTest, session: Handle, key: Handle): Buffer {
  token.p11.C_EncryptInit(session, { mechanism: P.CKM_AES_ECB }, key);
  return token.p11.C_Encrypt(session, Buffer.alloc(16), Buffer.alloc(16));
}

const UNWRAPPED_CHECK_VALUE =
  "§4.10 derives CKA_CHECK_VALUE from the key whatever made it; SoftHSMv2 2.6.1 computes it at C_CreateObject, C_GenerateKey and C_DeriveKey " +
  "but not at C_UnwrapKey (its unwrapped keys report an empty one), a SoftHSMv2 gap the emulator does not copy.";

const DERIVED_AES_CHECK_VALUE =
  "an AES key's check value is the first three bytes of AES-ECB of a zero block (v2.40 current mechanisms §2.8.2), as the emulator reports for derived keys too; " +
  "SoftHSMv2 2.6.1 (deriveECDH) casts the derived SymmetricKey to AESKey, but getKeyCheckValue is virtual, so it reports the generic-secret SHA-1 check value instead — " +
  "of the whole shared secret even when the key keeps only its trailing CKA_VALUE_LEN bytes, which then matches neither function of the key.";

export const CHECK_VALUE_SCENARIOS: Scenario[] = [
  {
    area: "check value",
    title: "generated AES and generic secret keys report their check value, also when sensitive",
    run(t, token) {
      const s = userSession(token);
      for (const bytes of [16, 24, 32]) {
        const key = generateAes(token, s, bytes, [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
        const value = checkValue(token, s, key);
        t.is(value.length, 3, `AES-${bytes * 8}`);
        if (token.mechanisms.has(P.CKM_AES_ECB)) t.deepEqual(value, ecbOfZeros(token, s, key).subarray(0, 3), `AES-${bytes * 8}`);
      }
      const clear = generateAes(token, s, 32, [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
      t.deepEqual(checkValue(token, s, clear), aesCheckValue(attribute(token, s, clear, P.CKA_VALUE)));
      const generic = token.p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: P.CKA_VALUE_LEN, value: 40 }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true },
      ]);
      t.deepEqual(checkValue(token, s, generic), sha1CheckValue(attribute(token, s, generic, P.CKA_VALUE)));
      const sensitive = token.p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: P.CKA_VALUE_LEN, value: 20 }, { type: P.CKA_SENSITIVE, value: true },
      ]);
      t.is(checkValue(token, s, sensitive).length, 3);
    },
  },
  {
    area: "check value",
    title: "C_GenerateKey refuses a supplied check value; a zero-length one means none",
    run(t, token) {
      const s = userSession(token);
      expectRv(t, () => generateAes(token, s, 16, [{ type: P.CKA_CHECK_VALUE, value: Buffer.from("abcdef", "hex") }]), P.CKR_ATTRIBUTE_VALUE_INVALID, "AES");
      expectRv(t, () => token.p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: P.CKA_VALUE_LEN, value: 16 }, { type: P.CKA_CHECK_VALUE, value: Buffer.from("abcdef", "hex") },
      ]), P.CKR_ATTRIBUTE_VALUE_INVALID, "generic secret");
      const none = generateAes(token, s, 16, [{ type: P.CKA_CHECK_VALUE, value: Buffer.alloc(0) }]);
      t.is(checkValue(token, s, none).length, 0);
    },
  },
  {
    area: "check value",
    title: "C_CreateObject computes the check value, accepts the right one and refuses a wrong one",
    run(t, token) {
      const s = userSession(token);
      for (const bytes of [16, 24, 32]) {
        const value = randomBytes(bytes);
        const expected = aesCheckValue(value);
        const computed = importSecret(token, s, value, [{ type: P.CKA_SENSITIVE, value: true }]);
        t.deepEqual(checkValue(token, s, computed), expected, `AES-${bytes * 8} computed`);
        const given = importSecret(token, s, value, [{ type: P.CKA_CHECK_VALUE, value: expected }]);
        t.deepEqual(checkValue(token, s, given), expected, `AES-${bytes * 8} given`);
        const wrong = Buffer.from(expected);
        wrong[0]! ^= 1;
        expectRv(t, () => importSecret(token, s, value, [{ type: P.CKA_CHECK_VALUE, value: wrong }]), P.CKR_ATTRIBUTE_VALUE_INVALID, `AES-${bytes * 8} wrong`);
        expectRv(t, () => importSecret(token, s, value, [{ type: P.CKA_CHECK_VALUE, value: aesCheckValue(randomBytes(bytes)) }]),
          P.CKR_ATTRIBUTE_VALUE_INVALID, `AES-${bytes * 8} another key's`);
      }
      for (const keyType of [P.CKK_GENERIC_SECRET, P.CKK_SHA256_HMAC]) {
        const value = randomBytes(33);
        const expected = sha1CheckValue(value);
        t.deepEqual(checkValue(token, s, importSecret(token, s, value, [], keyType)), expected, `key type ${keyType} computed`);
        t.deepEqual(checkValue(token, s, importSecret(token, s, value, [{ type: P.CKA_CHECK_VALUE, value: expected }], keyType)), expected);
        expectRv(t, () => importSecret(token, s, value, [{ type: P.CKA_CHECK_VALUE, value: aesCheckValue(value.subarray(0, 32)) }], keyType),
          P.CKR_ATTRIBUTE_VALUE_INVALID, `key type ${keyType} wrong`);
      }
      const none = importSecret(token, s, randomBytes(16), [{ type: P.CKA_CHECK_VALUE, value: Buffer.alloc(0) }]);
      t.is(checkValue(token, s, none).length, 0, "a zero-length check value asks for none");
    },
  },
  {
    area: "check value",
    title: "the check value is found by C_FindObjects and kept by C_CopyObject",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(16);
      const key = importSecret(token, s, value, [{ type: P.CKA_SENSITIVE, value: true }]);
      const copy = p11.C_CopyObject(s, key, [{ type: P.CKA_LABEL, value: "copy" }]);
      t.deepEqual(checkValue(token, s, copy), aesCheckValue(value));
      p11.C_FindObjectsInit(s, [{ type: P.CKA_CHECK_VALUE, value: aesCheckValue(value) }]);
      const found = p11.C_FindObjects(s, 10);
      p11.C_FindObjectsFinal(s);
      t.is(found.length, 2);
    },
  },
  {
    area: "check value",
    title: "unwrapped keys report their check value; a wrong supplied one is refused",
    run(t, token) {
      if (!offers(t, token, P.CKM_AES_KEY_WRAP)) return;
      const { p11 } = token;
      const s = userSession(token);
      const kek = generateAes(token, s, 32);
      const value = randomBytes(32);
      const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const wrapped = p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, key, Buffer.alloc(64));
      const template = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }];
      const unwrapped = p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, template);
      const expected = byTarget(t, token, { emulator: aesCheckValue(value).toString("hex"), softhsm: "" }, UNWRAPPED_CHECK_VALUE);
      t.is(checkValue(token, s, unwrapped).toString("hex"), expected);
      if (token.target === "emulator") {
        const wrong = aesCheckValue(randomBytes(32));
        expectRv(t, () => p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, [...template, { type: P.CKA_CHECK_VALUE, value: wrong }]),
          P.CKR_ATTRIBUTE_VALUE_INVALID);
        const right = p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, [...template, { type: P.CKA_CHECK_VALUE, value: aesCheckValue(value) }]);
        t.deepEqual(checkValue(token, s, right), aesCheckValue(value));
      }
    },
  },
  {
    area: "check value",
    title: "keys from ECDH1_DERIVE report their check value; a supplied one is refused",
    run(t, token) {
      if (!offers(t, token, P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDH1_DERIVE)) return;
      const { p11 } = token;
      const s = userSession(token);
      const pair = p11.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
        [{ type: P.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }], [{ type: P.CKA_DERIVE, value: true }]);
      const peer = generateKeyPair({ kind: "ec", curve: "prime256v1" });
      const publicData = peer.publicKey.export({ format: "der", type: "spki" }).subarray(-65);
      const mechanism = { mechanism: P.CKM_ECDH1_DERIVE, parameter: { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData } as never };
      const clear = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }];
      const generic = p11.C_DeriveKey(s, mechanism, pair.privateKey, [...clear, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }]);
      t.deepEqual(checkValue(token, s, generic), sha1CheckValue(attribute(token, s, generic, P.CKA_VALUE)));
      expectRv(t, () => p11.C_DeriveKey(s, mechanism, pair.privateKey, [
        ...clear, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_CHECK_VALUE, value: Buffer.from("abcdef", "hex") },
      ]), P.CKR_ATTRIBUTE_VALUE_INVALID, "a new key's check value is the token's to compute");
      // Which function of the key's value each token's check value of a derived AES key is: the whole
      // 32-byte shared secret, then its trailing 16 bytes.
      for (const [bytes, softhsm] of [[32, "SHA-1"], [16, "neither"]] as const) {
        const expected = byTarget(t, token, { emulator: "AES-ECB", softhsm }, DERIVED_AES_CHECK_VALUE);
        const aes = p11.C_DeriveKey(s, mechanism, pair.privateKey, [...clear, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_VALUE_LEN, value: bytes }]);
        const value = attribute(token, s, aes, P.CKA_VALUE);
        const reported = checkValue(token, s, aes);
        const which = reported.equals(aesCheckValue(value)) ? "AES-ECB" : reported.equals(sha1CheckValue(value)) ? "SHA-1" : "neither";
        t.is(which, expected, `AES-${bytes * 8}`);
      }
    },
  },
];
