/**
 * The AES mechanisms both tokens offer (PKCS#11 v2.40 §2.8–2.14, v3.0 §2.14.3 for KWP): the
 * mechanism list and info, key generation, GCM, key wrap with and without padding, checked
 * against node:crypto; and the operation-state rules every mechanism shares (§5.2: one active
 * operation, CKR_OPERATION_NOT_INITIALIZED, CKR_BUFFER_TOO_SMALL keeping the operation).
 */
import { createCipheriv, randomBytes } from "node:crypto";
import {
  attribute, BOGUS_HANDLE, byTarget, CKM_AES_KEY_WRAP_KWP, expectRv, gcm, generateAes, importSecret, mechanismList, mechName, offers, P,
  userSession, type Scenario,
} from "./scenario.js";

/** node:crypto's AES-GCM: ciphertext ‖ tag. */
function gcmSeal(key: Buffer, iv: Buffer, aad: Buffer, plaintext: Buffer, tagBytes = 16): Buffer {
  const cipher = createCipheriv(`aes-${key.length * 8}-gcm` as "aes-256-gcm", key, iv, { authTagLength: tagBytes });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** RFC 3394 AES key wrap (default IV A6A6A6A6A6A6A6A6), by node:crypto. */
export function rfc3394(kek: Buffer, key: Buffer): Buffer {
  const cipher = createCipheriv(`id-aes${kek.length * 8}-wrap`, kek, Buffer.from("a6a6a6a6a6a6a6a6", "hex"));
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** RFC 5649 AES key wrap with padding (AIV A65959A6 ‖ length), by node:crypto. */
export function rfc5649(kek: Buffer, key: Buffer): Buffer {
  const cipher = createCipheriv(`id-aes${kek.length * 8}-wrap-pad`, kek, Buffer.from("a65959a6", "hex"));
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** Shared with wrap.ts: a difference in unwrapped keys' CKA_VALUE_LEN. */
export const UNWRAPPED_VALUE_LEN_WHY =
  "CKA_VALUE_LEN is the length of the key value (§4.10 / §2.8 tables); an unwrapped key's value is known, so the emulator fills it in. " +
  "SoftHSMv2 2.6.1 leaves it 0 on keys from C_UnwrapKey unless the template gave it — a SoftHSMv2 defect, not behaviour to copy.";

const AES_BOTH = [P.CKM_AES_KEY_GEN, P.CKM_AES_GCM, P.CKM_AES_KEY_WRAP, P.CKM_AES_KEY_WRAP_PAD, P.CKM_GENERIC_SECRET_KEY_GEN];

export const MECHANISM_SCENARIOS: Scenario[] = [
  {
    area: "mechanisms",
    title: "the AES mechanisms and generic secret generation are listed, with their info",
    run(t, token) {
      const { p11, slot } = token;
      const list = p11.C_GetMechanismList(slot);
      t.is(new Set(list).size, list.length, "no duplicates");
      for (const mechanism of AES_BOTH) t.true(list.includes(mechanism), `${mechName(mechanism)} is listed`);
      const info = (m: number) => p11.C_GetMechanismInfo(slot, m);
      t.like(info(P.CKM_AES_KEY_GEN), { minKeySize: 16, maxKeySize: 32 });
      t.truthy(info(P.CKM_AES_KEY_GEN).flags & P.CKF_GENERATE);
      t.like(info(P.CKM_AES_GCM), { minKeySize: 16, maxKeySize: 32 });
      t.is(info(P.CKM_AES_GCM).flags & (P.CKF_ENCRYPT | P.CKF_DECRYPT), P.CKF_ENCRYPT | P.CKF_DECRYPT);
      for (const m of [P.CKM_AES_KEY_WRAP, P.CKM_AES_KEY_WRAP_PAD]) {
        const sizes = byTarget(t, token, {
          emulator: { minKeySize: 16, maxKeySize: 32 },
          softhsm: { minKeySize: m === P.CKM_AES_KEY_WRAP ? 16 : 1, maxKeySize: 0x80000000 },
        }, "v2.40 §2.14 says the key sizes of the AES key wrap mechanisms are the AES key sizes in bytes (16..32), as the emulator reports; SoftHSMv2 reports the range of the keys it will wrap instead.");
        t.like(info(m), sizes, mechName(m));
        t.is(info(m).flags & (P.CKF_WRAP | P.CKF_UNWRAP), P.CKF_WRAP | P.CKF_UNWRAP, mechName(m));
      }
      t.truthy(info(P.CKM_GENERIC_SECRET_KEY_GEN).flags & P.CKF_GENERATE);
      expectRv(t, () => p11.C_GetMechanismInfo(slot, 0x7ffffff0), P.CKR_MECHANISM_INVALID, "an unknown mechanism");
      for (const m of list) {
        const i = info(m);
        t.true(i.minKeySize <= i.maxKeySize || i.maxKeySize === 0, `${mechName(m)} key size range`);
      }
    },
  },
  {
    area: "aes",
    title: "AES key generation: 16, 24 and 32 bytes; other lengths and a missing CKA_VALUE_LEN are refused",
    run(t, token) {
      const s = userSession(token);
      for (const bytes of [16, 24, 32]) {
        const key = generateAes(token, s, bytes, [{ type: P.CKA_EXTRACTABLE, value: true }]);
        t.is(attribute(token, s, key, P.CKA_VALUE).length, bytes);
      }
      const rv17 = byTarget(t, token, { emulator: P.CKR_KEY_SIZE_RANGE, softhsm: P.CKR_ATTRIBUTE_VALUE_INVALID },
        "§5.14.1 does not name the code for an unsupported CKA_VALUE_LEN; both are listed results of C_GenerateKey. SoftHSMv2 blames the attribute, the emulator the key size.");
      expectRv(t, () => generateAes(token, s, 17), rv17, "17 bytes");
      expectRv(t, () => token.p11.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, []), P.CKR_TEMPLATE_INCOMPLETE, "no CKA_VALUE_LEN");
      expectRv(t, () => generateAes(token, s, 16, [{ type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }]), P.CKR_TEMPLATE_INCONSISTENT, "a contradicting key type");
    },
  },
  {
    area: "aes-gcm",
    title: "AES-GCM encryption equals node:crypto (12-byte IV, AAD, 128- and 96-bit tags) and decrypts back",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      for (const bytes of [16, 32]) {
        const value = randomBytes(bytes);
        const key = importSecret(token, s, value);
        for (const tagBits of [128, 96]) {
          const iv = randomBytes(12);
          const aad = randomBytes(20);
          const plaintext = randomBytes(100);
          p11.C_EncryptInit(s, gcm(iv, aad, tagBits), key);
          const sealed = p11.C_Encrypt(s, plaintext, Buffer.alloc(200));
          t.deepEqual(sealed, gcmSeal(value, iv, aad, plaintext, tagBits / 8), `AES-${bytes * 8} tag ${tagBits}`);
          p11.C_DecryptInit(s, gcm(iv, aad, tagBits), key);
          t.deepEqual(p11.C_Decrypt(s, sealed, Buffer.alloc(200)), plaintext);
        }
      }
    },
  },
  {
    area: "aes-gcm",
    title: "AES-GCM: a changed byte of ciphertext, tag or AAD is CKR_ENCRYPTED_DATA_INVALID (SoftHSMv2: CKR_GENERAL_ERROR)",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value);
      const iv = randomBytes(12);
      const aad = Buffer.from("context");
      const sealed = gcmSeal(value, iv, aad, randomBytes(64));
      const rv = byTarget(t, token, { emulator: P.CKR_ENCRYPTED_DATA_INVALID, softhsm: P.CKR_GENERAL_ERROR },
        "CKR_ENCRYPTED_DATA_INVALID is the code for ciphertext found invalid (§5.1, and C_Decrypt's list in §5.9), as the emulator answers; SoftHSMv2 2.6.1 answers a GCM tag mismatch with CKR_GENERAL_ERROR.");
      for (const index of [0, sealed.length - 1]) {
        const tampered = Buffer.from(sealed);
        tampered[index]! ^= 0x01;
        p11.C_DecryptInit(s, gcm(iv, aad), key);
        expectRv(t, () => p11.C_Decrypt(s, tampered, Buffer.alloc(128)), rv, `byte ${index}`);
      }
      p11.C_DecryptInit(s, gcm(iv, Buffer.from("other")), key);
      expectRv(t, () => p11.C_Decrypt(s, sealed, Buffer.alloc(128)), rv, "other AAD");
      p11.C_DecryptInit(s, gcm(iv, aad), key);
      t.is(p11.C_Decrypt(s, sealed, Buffer.alloc(128)).length, 64, "the session is usable afterwards");
    },
  },
  {
    area: "aes-gcm",
    title: "AES-GCM multi-part (C_EncryptUpdate/Final, C_DecryptUpdate/Final) equals single-part",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value);
      const iv = randomBytes(12);
      const plaintext = randomBytes(1000);
      p11.C_EncryptInit(s, gcm(iv), key);
      const parts = [p11.C_EncryptUpdate(s, plaintext.subarray(0, 333), Buffer.alloc(1100)), p11.C_EncryptUpdate(s, plaintext.subarray(333), Buffer.alloc(1100))];
      parts.push(p11.C_EncryptFinal(s, Buffer.alloc(1100)));
      const sealed = Buffer.concat(parts);
      t.deepEqual(sealed, gcmSeal(value, iv, Buffer.alloc(0), plaintext));
      p11.C_DecryptInit(s, gcm(iv), key);
      const opened = [p11.C_DecryptUpdate(s, sealed.subarray(0, 500), Buffer.alloc(1100)), p11.C_DecryptUpdate(s, sealed.subarray(500), Buffer.alloc(1100))];
      opened.push(p11.C_DecryptFinal(s, Buffer.alloc(1100)));
      t.deepEqual(Buffer.concat(opened), plaintext);
    },
  },
  {
    area: "aes-gcm",
    title: "AES-GCM with an empty plaintext gives the bare tag (SoftHSMv2 defect: CKR_ARGUMENTS_BAD, operation left active)",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value);
      const iv = randomBytes(12);
      const aad = Buffer.from("authenticated only");
      p11.C_EncryptInit(s, gcm(iv, aad), key);
      if (token.target === "softhsm") {
        // A SoftHSMv2 2.6.1 defect, not behaviour to copy: GCM over an empty message is valid
        // (SP 800-38D allows P of length 0: authentication only). pkcs11js passes NULL for an
        // empty Buffer, SoftHSMv2 answers CKR_ARGUMENTS_BAD and does not end the operation, so the
        // next C_EncryptInit is CKR_OPERATION_ACTIVE (shared/reference/pkcs11.md, "Measured").
        t.log("SoftHSMv2 defect: empty GCM plaintext is CKR_ARGUMENTS_BAD and leaves the operation active");
        expectRv(t, () => p11.C_Encrypt(s, Buffer.alloc(0), Buffer.alloc(16)), P.CKR_ARGUMENTS_BAD);
        expectRv(t, () => p11.C_EncryptInit(s, gcm(iv, aad), key), P.CKR_OPERATION_ACTIVE);
        return;
      }
      t.deepEqual(p11.C_Encrypt(s, Buffer.alloc(0), Buffer.alloc(16)), gcmSeal(value, iv, aad, Buffer.alloc(0)));
      p11.C_DecryptInit(s, gcm(iv, aad), key);
      t.is(p11.C_Decrypt(s, gcmSeal(value, iv, aad, Buffer.alloc(0)), Buffer.alloc(16)).length, 0);
    },
  },
  {
    area: "aes-gcm",
    title: "AES-GCM without CK_GCM_PARAMS is refused at C_EncryptInit",
    run(t, token) {
      const s = userSession(token);
      const key = generateAes(token, s, 32);
      const rv = byTarget(t, token, { emulator: P.CKR_MECHANISM_PARAM_INVALID, softhsm: P.CKR_ARGUMENTS_BAD },
        "§5.8 names CKR_MECHANISM_PARAM_INVALID for bad mechanism parameters; SoftHSMv2 answers a missing or wrongly sized CK_GCM_PARAMS with CKR_ARGUMENTS_BAD (SoftHSM.cpp SymEncryptInit). The emulator follows the specification.");
      expectRv(t, () => token.p11.C_EncryptInit(s, { mechanism: P.CKM_AES_GCM }, key), rv);
    },
  },
  {
    area: "operations",
    title: "CKR_BUFFER_TOO_SMALL for a short output Buffer keeps the operation; the retry succeeds",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(16);
      const key = importSecret(token, s, value);
      const iv = randomBytes(12);
      const plaintext = randomBytes(48);
      p11.C_EncryptInit(s, gcm(iv), key);
      expectRv(t, () => p11.C_Encrypt(s, plaintext, Buffer.alloc(10)), P.CKR_BUFFER_TOO_SMALL);
      const sealed = p11.C_Encrypt(s, plaintext, Buffer.alloc(64));
      t.deepEqual(sealed, gcmSeal(value, iv, Buffer.alloc(0), plaintext));
      p11.C_DecryptInit(s, gcm(iv), key);
      expectRv(t, () => p11.C_Decrypt(s, sealed, Buffer.alloc(1)), P.CKR_BUFFER_TOO_SMALL);
      t.deepEqual(p11.C_Decrypt(s, sealed, Buffer.alloc(64)), plaintext);
      const kek = generateAes(token, s, 32);
      const target = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      expectRv(t, () => p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, target, Buffer.alloc(8)), P.CKR_BUFFER_TOO_SMALL, "C_WrapKey");
      t.is(p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, target, Buffer.alloc(24)).length, 24);
    },
  },
  {
    area: "operations",
    title: "a second C_EncryptInit is CKR_OPERATION_ACTIVE and the first operation goes on",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value);
      const iv = randomBytes(12);
      p11.C_EncryptInit(s, gcm(iv), key);
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), key), P.CKR_OPERATION_ACTIVE);
      const plaintext = randomBytes(16);
      t.deepEqual(p11.C_Encrypt(s, plaintext, Buffer.alloc(64)), gcmSeal(value, iv, Buffer.alloc(0), plaintext));
    },
  },
  {
    area: "operations",
    title: "an active search blocks C_EncryptInit (CKR_OPERATION_ACTIVE): one operation at a time, no CKF_DUAL_CRYPTO_OPERATIONS",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 32);
      t.falsy(p11.C_GetTokenInfo(token.slot).flags & P.CKF_DUAL_CRYPTO_OPERATIONS, "the token does not claim dual operations");
      p11.C_FindObjectsInit(s, []);
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), key), P.CKR_OPERATION_ACTIVE, "search active");
      p11.C_FindObjectsFinal(s);
      p11.C_EncryptInit(s, gcm(randomBytes(12)), key);
      expectRv(t, () => p11.C_DecryptInit(s, gcm(randomBytes(12)), key), P.CKR_OPERATION_ACTIVE, "encryption active");
      expectRv(t, () => p11.C_FindObjectsInit(s, []), P.CKR_OPERATION_ACTIVE, "encryption active, then a search");
    },
  },
  {
    area: "operations",
    title: "calls without their C_*Init are CKR_OPERATION_NOT_INITIALIZED",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const out = Buffer.alloc(64);
      const calls: Array<[string, () => unknown]> = [
        ["C_Encrypt", () => p11.C_Encrypt(s, Buffer.alloc(16), out)],
        ["C_EncryptUpdate", () => p11.C_EncryptUpdate(s, Buffer.alloc(16), out)],
        ["C_EncryptFinal", () => p11.C_EncryptFinal(s, out)],
        ["C_Decrypt", () => p11.C_Decrypt(s, Buffer.alloc(32), out)],
        ["C_DecryptUpdate", () => p11.C_DecryptUpdate(s, Buffer.alloc(16), out)],
        ["C_DecryptFinal", () => p11.C_DecryptFinal(s, out)],
        ["C_Digest", () => p11.C_Digest(s, Buffer.alloc(16), out)],
        ["C_DigestUpdate", () => p11.C_DigestUpdate(s, Buffer.alloc(16))],
        ["C_DigestFinal", () => p11.C_DigestFinal(s, out)],
        ["C_Sign", () => p11.C_Sign(s, Buffer.alloc(16), out)],
        ["C_SignUpdate", () => p11.C_SignUpdate(s, Buffer.alloc(16))],
        ["C_SignFinal", () => p11.C_SignFinal(s, out)],
        ["C_Verify", () => p11.C_Verify(s, Buffer.alloc(16), Buffer.alloc(32))],
        ["C_VerifyUpdate", () => p11.C_VerifyUpdate(s, Buffer.alloc(16))],
        ["C_VerifyFinal", () => p11.C_VerifyFinal(s, Buffer.alloc(32))],
      ];
      for (const [name, call] of calls) expectRv(t, call, P.CKR_OPERATION_NOT_INITIALIZED, name);
    },
  },
  {
    area: "operations",
    title: "an operation ends with its single-part call: a second C_Encrypt is CKR_OPERATION_NOT_INITIALIZED",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 16);
      p11.C_EncryptInit(s, gcm(randomBytes(12)), key);
      p11.C_Encrypt(s, randomBytes(16), Buffer.alloc(64));
      expectRv(t, () => p11.C_Encrypt(s, randomBytes(16), Buffer.alloc(64)), P.CKR_OPERATION_NOT_INITIALIZED);
      p11.C_EncryptInit(s, gcm(randomBytes(12)), key);
      p11.C_EncryptUpdate(s, randomBytes(16), Buffer.alloc(64));
      p11.C_EncryptFinal(s, Buffer.alloc(64));
      expectRv(t, () => p11.C_EncryptFinal(s, Buffer.alloc(64)), P.CKR_OPERATION_NOT_INITIALIZED, "after C_EncryptFinal");
    },
  },
  {
    area: "operations",
    title: "key checks at C_EncryptInit: usage flag, key type, CKA_ALLOWED_MECHANISMS, handle, mechanism",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const noEncrypt = generateAes(token, s, 16, [{ type: P.CKA_ENCRYPT, value: false }]);
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), noEncrypt), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_ENCRYPT false");
      const generic = token.p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [{ type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_ENCRYPT, value: true }]);
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), generic), P.CKR_KEY_TYPE_INCONSISTENT, "a generic secret for AES-GCM");
      const wrapOnly = generateAes(token, s, 16, [{ type: P.CKA_ALLOWED_MECHANISMS, value: mechanismList(P.CKM_AES_KEY_WRAP) }]);
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), wrapOnly), P.CKR_MECHANISM_INVALID, "not in CKA_ALLOWED_MECHANISMS");
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), BOGUS_HANDLE), byTarget(t, token, { emulator: P.CKR_KEY_HANDLE_INVALID, softhsm: P.CKR_OBJECT_HANDLE_INVALID },
        "§5.8.1 lists CKR_KEY_HANDLE_INVALID for C_EncryptInit's key (CKR_OBJECT_HANDLE_INVALID is not among its results), as the emulator answers; SoftHSMv2 answers CKR_OBJECT_HANDLE_INVALID."), "no such key");
      expectRv(t, () => p11.C_EncryptInit(s, { mechanism: 0x7ffffff0 }, wrapOnly), P.CKR_MECHANISM_INVALID, "no such mechanism");
      expectRv(t, () => p11.C_EncryptInit(s, { mechanism: P.CKM_AES_KEY_GEN }, wrapOnly), P.CKR_MECHANISM_INVALID, "a generation mechanism");
    },
  },
  {
    area: "aes-kw",
    title: "CKM_AES_KEY_WRAP wraps as RFC 3394 (node:crypto) and unwraps to the same key",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kekValue = randomBytes(32);
      const kek = importSecret(token, s, kekValue);
      for (const bytes of [16, 24, 32]) {
        const value = randomBytes(bytes);
        const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }]);
        const wrapped = p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, key, Buffer.alloc(64));
        t.deepEqual(wrapped, rfc3394(kekValue, value), `${bytes}-byte key`);
        const unwrapped = p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_EXTRACTABLE, value: true },
        ]);
        t.deepEqual(attribute(token, s, unwrapped, P.CKA_VALUE), value);
        t.is(Number(attribute(token, s, unwrapped, P.CKA_VALUE_LEN).readBigUInt64LE()), byTarget(t, token, { emulator: bytes, softhsm: 0 }, UNWRAPPED_VALUE_LEN_WHY));
      }
    },
  },
  {
    area: "aes-kw",
    title: "CKM_AES_KEY_WRAP_PAD: RFC 5649 for key lengths that are multiples of 8 on both tokens; other lengths RFC 5649 on the emulator only (SoftHSMv2 defect)",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kekValue = randomBytes(32);
      const kek = importSecret(token, s, kekValue);
      for (const bytes of [16, 32, 9, 12, 20, 101]) {
        const value = randomBytes(bytes);
        const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }], P.CKK_GENERIC_SECRET);
        const wrapped = p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, key, Buffer.alloc(160));
        const expected = rfc5649(kekValue, value);
        if (token.target === "softhsm" && bytes % 8 !== 0) {
          // A SoftHSMv2 2.6.1 defect, not behaviour to copy: its wrap of lengths that are not a
          // multiple of 8 differs from RFC 5649 / SP 800-38F KWP (all 500 NIST KWP-AE vectors of
          // such lengths differ; shared/reference/pkcs11.md "Measured"). Its unwrap is RFC 5649.
          if (!wrapped.equals(expected)) t.log(`SoftHSMv2 defect: CKM_AES_KEY_WRAP_PAD of a ${bytes}-byte key is not RFC 5649`);
          else t.log(`SoftHSMv2 wrapped a ${bytes}-byte key as RFC 5649: the known defect seems fixed in this build`);
        } else {
          t.deepEqual(wrapped, expected, `${bytes}-byte key`);
        }
        const unwrapped = p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, expected, [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_EXTRACTABLE, value: true },
        ]);
        t.deepEqual(attribute(token, s, unwrapped, P.CKA_VALUE), value, `RFC 5649 unwrap of a ${bytes}-byte key`);
      }
    },
  },
  {
    area: "aes-kw",
    title: "CKM_AES_KEY_WRAP_KWP (v3.0 RFC 5649) wraps and unwraps as node:crypto",
    run(t, token) {
      if (!offers(t, token, CKM_AES_KEY_WRAP_KWP)) return;
      const { p11 } = token;
      const s = userSession(token);
      const kekValue = randomBytes(32);
      const kek = importSecret(token, s, kekValue);
      for (const bytes of [12, 32]) {
        const value = randomBytes(bytes);
        const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }], P.CKK_GENERIC_SECRET);
        const wrapped = p11.C_WrapKey(s, { mechanism: CKM_AES_KEY_WRAP_KWP }, kek, key, Buffer.alloc(64));
        t.deepEqual(wrapped, rfc5649(kekValue, value));
        const unwrapped = p11.C_UnwrapKey(s, { mechanism: CKM_AES_KEY_WRAP_KWP }, kek, wrapped, [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_EXTRACTABLE, value: true },
        ]);
        t.deepEqual(attribute(token, s, unwrapped, P.CKA_VALUE), value);
      }
    },
  },
  {
    area: "aes-kw",
    title: "CKM_AES_KEY_WRAP zero-pads a key whose length is not a multiple of 8 (v2.40 §2.14.3), and unwraps it to CKA_VALUE_LEN",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kekValue = randomBytes(32);
      const kek = importSecret(token, s, kekValue);
      const value = randomBytes(12);
      const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }], P.CKK_GENERIC_SECRET);
      const wrapped = p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, key, Buffer.alloc(64));
      t.deepEqual(wrapped, rfc3394(kekValue, Buffer.concat([value, Buffer.alloc(4)])), "RFC 3394 of the value and four zero bytes");
      const template = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_EXTRACTABLE, value: true }];
      const plain = p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, template);
      t.deepEqual(attribute(token, s, plain, P.CKA_VALUE), Buffer.concat([value, Buffer.alloc(4)]), "without CKA_VALUE_LEN the padding stays");
      const withLength = () => p11.C_UnwrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP }, kek, wrapped, [...template, { type: P.CKA_VALUE_LEN, value: 12 }]);
      if (byTarget(t, token, { emulator: true, softhsm: false },
        "a generic secret's CKA_VALUE_LEN carries footnotes 2 and 3 only, so C_UnwrapKey may be given it — the one way to undo KW's zero padding, which the emulator does. " +
        "SoftHSMv2 treats footnote 2 (not at C_CreateObject) as applying to C_UnwrapKey too and answers CKR_ATTRIBUTE_READ_ONLY.")) {
        t.deepEqual(attribute(token, s, withLength(), P.CKA_VALUE), value, "CKA_VALUE_LEN 12 drops the padding");
      } else {
        expectRv(t, withLength, P.CKR_ATTRIBUTE_READ_ONLY, "CKA_VALUE_LEN in the unwrap template");
      }
    },
  },
];
