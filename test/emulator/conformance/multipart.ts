/**
 * Multi-part operations (PKCS#11 v2.40 §5.8–5.12): what the single-part call does once an update
 * has run, partial blocks left at C_*Final, GCM releasing nothing before its tag, and which
 * failures end an operation (§5.2: every error but CKR_BUFFER_TOO_SMALL).
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import type { ExecutionContext } from "ava";
import { byTarget, expectRv, gcm, importSecret, offers, P, rvName, userSession, type Scenario, type TokenUnderTest } from "./scenario.js";
import type { Handle } from "../../../emulator/pkcs11.js";

/** "CKR_OK" or the CKR name a call fails with, for outcomes that differ by token. */
function outcome(call: () => unknown): string {
  try {
    call();
    return "CKR_OK";
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return rvName(error.code);
    throw error;
  }
}

function hmacKey(token: TokenUnderTest, s: Handle, value: Buffer): Handle {
  return importSecret(token, s, value, [{ type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }], P.CKK_GENERIC_SECRET);
}

const SINGLE_AFTER_UPDATE_WHY =
  "v2.40 §5.8.2: C_Encrypt 'cannot be used to terminate a multi-part operation, and must be called after C_EncryptInit without intervening " +
  "C_EncryptUpdate calls' (§5.9.2, §5.10.2 alike). The emulator refuses it as SoftHSMv2 refuses C_Sign and C_Verify after an update " +
  "(CKR_OPERATION_NOT_INITIALIZED, operation ended); SoftHSMv2 2.6.1 lets C_Encrypt, C_Decrypt and C_Digest continue the multi-part operation.";

/** After the refused or accepted single-part call, the operation is over on both tokens. */
function ended(t: ExecutionContext, call: () => unknown, message: string): void {
  expectRv(t, call, P.CKR_OPERATION_NOT_INITIALIZED, message);
}

export const MULTIPART_SCENARIOS: Scenario[] = [
  {
    area: "multi-part",
    title: "C_Sign and C_Verify after an update are CKR_OPERATION_NOT_INITIALIZED and end the operation",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = hmacKey(token, s, value);
      const head = Buffer.from("head");
      const tail = Buffer.from("tail");
      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      p11.C_SignUpdate(s, head);
      expectRv(t, () => p11.C_Sign(s, tail, Buffer.alloc(64)), P.CKR_OPERATION_NOT_INITIALIZED, "C_Sign after C_SignUpdate");
      ended(t, () => p11.C_SignFinal(s, Buffer.alloc(64)), "C_SignFinal after the refused C_Sign");
      const mac = createHmac("sha256", value).update(Buffer.concat([head, tail])).digest();
      p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      p11.C_VerifyUpdate(s, head);
      expectRv(t, () => p11.C_Verify(s, tail, mac), P.CKR_OPERATION_NOT_INITIALIZED, "C_Verify after C_VerifyUpdate");
      ended(t, () => p11.C_VerifyFinal(s, mac), "C_VerifyFinal after the refused C_Verify");
      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      p11.C_SignUpdate(s, head);
      p11.C_SignUpdate(s, tail);
      t.deepEqual(p11.C_SignFinal(s, Buffer.alloc(64)), mac, "C_SignFinal finishes it");
    },
  },
  {
    area: "multi-part",
    title: "C_Encrypt, C_Decrypt and C_Digest after an update: refused by the emulator, continued by SoftHSMv2 2.6.1; never dropping buffered input",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = importSecret(token, s, randomBytes(16));
      const iv = randomBytes(12);
      const head = randomBytes(5);
      const tail = randomBytes(16);
      const refused = byTarget(t, token, { emulator: "CKR_OPERATION_NOT_INITIALIZED", softhsm: "CKR_OK" }, SINGLE_AFTER_UPDATE_WHY);

      // AES-GCM buffers updates until C_EncryptFinal: a C_Encrypt that ran would have to include them.
      p11.C_EncryptInit(s, gcm(iv), key);
      const released = p11.C_EncryptUpdate(s, head, Buffer.alloc(64));
      let sealed: Buffer | undefined;
      t.is(outcome(() => (sealed = p11.C_Encrypt(s, tail, Buffer.alloc(64)))), refused, "C_Encrypt after C_EncryptUpdate");
      ended(t, () => p11.C_EncryptFinal(s, Buffer.alloc(64)), "C_EncryptFinal after C_Encrypt");
      if (sealed !== undefined) {
        p11.C_DecryptInit(s, gcm(iv), key);
        t.deepEqual(p11.C_Decrypt(s, Buffer.concat([released, sealed]), Buffer.alloc(64)), Buffer.concat([head, tail]), "what C_Encrypt sealed covers the update's input");
      }

      p11.C_EncryptInit(s, gcm(iv), key);
      const whole = p11.C_Encrypt(s, Buffer.concat([head, tail]), Buffer.alloc(64));
      p11.C_DecryptInit(s, gcm(iv), key);
      p11.C_DecryptUpdate(s, whole.subarray(0, 8), Buffer.alloc(64));
      let opened: Buffer | undefined;
      t.is(outcome(() => (opened = p11.C_Decrypt(s, whole.subarray(8), Buffer.alloc(64)))), refused, "C_Decrypt after C_DecryptUpdate");
      ended(t, () => p11.C_DecryptFinal(s, Buffer.alloc(64)), "C_DecryptFinal after C_Decrypt");
      if (opened !== undefined) t.deepEqual(opened, Buffer.concat([head, tail]), "what C_Decrypt opened includes the update's input");

      p11.C_DigestInit(s, { mechanism: P.CKM_SHA256 });
      p11.C_DigestUpdate(s, head);
      let digest: Buffer | undefined;
      t.is(outcome(() => (digest = p11.C_Digest(s, tail, Buffer.alloc(64)))), refused, "C_Digest after C_DigestUpdate");
      ended(t, () => p11.C_DigestFinal(s, Buffer.alloc(64)), "C_DigestFinal after C_Digest");
      if (digest !== undefined) t.deepEqual(digest, createHash("sha256").update(head).update(tail).digest(), "what C_Digest hashed includes the update");
    },
  },
  {
    area: "multi-part",
    title: "a partial block left at C_EncryptFinal / C_DecryptFinal is a length-range error that ends the operation (ECB, CBC, CBC_PAD decrypt)",
    run(t, token) {
      const { p11 } = token;
      if (!offers(t, token, P.CKM_AES_ECB, P.CKM_AES_CBC, P.CKM_AES_CBC_PAD)) return;
      const s = userSession(token);
      const key = importSecret(token, s, randomBytes(16));
      const iv = randomBytes(16);
      const cases: Array<[string, { mechanism: number; parameter?: Buffer }, "Encrypt" | "Decrypt", number]> = [
        ["ECB encrypt", { mechanism: P.CKM_AES_ECB }, "Encrypt", P.CKR_DATA_LEN_RANGE],
        ["ECB decrypt", { mechanism: P.CKM_AES_ECB }, "Decrypt", P.CKR_ENCRYPTED_DATA_LEN_RANGE],
        ["CBC encrypt", { mechanism: P.CKM_AES_CBC, parameter: iv }, "Encrypt", P.CKR_DATA_LEN_RANGE],
        ["CBC decrypt", { mechanism: P.CKM_AES_CBC, parameter: iv }, "Decrypt", P.CKR_ENCRYPTED_DATA_LEN_RANGE],
        ["CBC_PAD decrypt", { mechanism: P.CKM_AES_CBC_PAD, parameter: iv }, "Decrypt", P.CKR_ENCRYPTED_DATA_LEN_RANGE],
      ];
      for (const [name, mechanism, direction, rv] of cases) {
        p11[`C_${direction}Init`](s, mechanism, key);
        t.is(p11[`C_${direction}Update`](s, randomBytes(21), Buffer.alloc(64)).length, 16, `${name}: the whole block comes out`);
        expectRv(t, () => p11[`C_${direction}Final`](s, Buffer.alloc(64)), rv, `${name}: 5 bytes left at C_${direction}Final`);
        ended(t, () => p11[`C_${direction}Final`](s, Buffer.alloc(64)), `${name}: ended`);
      }
      // CBC_PAD encryption pads what is left: 5 bytes become one block.
      p11.C_EncryptInit(s, { mechanism: P.CKM_AES_CBC_PAD, parameter: iv }, key);
      t.is(p11.C_EncryptUpdate(s, randomBytes(21), Buffer.alloc(64)).length, 16);
      t.is(p11.C_EncryptFinal(s, Buffer.alloc(64)).length, 16, "CBC_PAD: the partial block padded");
    },
  },
  {
    area: "multi-part",
    title: "AES-GCM decryption releases no plaintext before the tag verifies; a bad tag at C_DecryptFinal ends the operation, a short Buffer keeps it",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = importSecret(token, s, randomBytes(32));
      const iv = randomBytes(12);
      const plaintext = randomBytes(40);
      p11.C_EncryptInit(s, gcm(iv), key);
      const sealed = p11.C_Encrypt(s, plaintext, Buffer.alloc(64));
      const forged = Buffer.from(sealed);
      forged[forged.length - 1]! ^= 1;

      p11.C_DecryptInit(s, gcm(iv), key);
      t.is(p11.C_DecryptUpdate(s, forged.subarray(0, 30), Buffer.alloc(64)).length, 0, "nothing before the tag");
      t.is(p11.C_DecryptUpdate(s, forged.subarray(30), Buffer.alloc(64)).length, 0, "nothing before the tag");
      expectRv(t, () => p11.C_DecryptFinal(s, Buffer.alloc(8)), P.CKR_BUFFER_TOO_SMALL, "short Buffer at C_DecryptFinal");
      expectRv(t, () => p11.C_DecryptFinal(s, Buffer.alloc(64)), byTarget(t, token, { emulator: P.CKR_ENCRYPTED_DATA_INVALID, softhsm: P.CKR_GENERAL_ERROR },
        "§5.9.4 names CKR_ENCRYPTED_DATA_INVALID for ciphertext that does not authenticate; SoftHSMv2 answers a failed GCM tag with CKR_GENERAL_ERROR."), "forged tag");
      ended(t, () => p11.C_DecryptFinal(s, Buffer.alloc(64)), "after the failed tag check");

      p11.C_DecryptInit(s, gcm(iv), key);
      p11.C_DecryptUpdate(s, sealed, Buffer.alloc(64));
      expectRv(t, () => p11.C_DecryptFinal(s, Buffer.alloc(8)), P.CKR_BUFFER_TOO_SMALL, "short Buffer keeps the operation");
      t.deepEqual(p11.C_DecryptFinal(s, Buffer.alloc(64)), plaintext, "the retry opens it");
    },
  },
  {
    area: "multi-part",
    title: "errors other than CKR_BUFFER_TOO_SMALL end the operation; another kind cannot start meanwhile; usage flags at every C_*Init",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = hmacKey(token, s, value);
      const aes = importSecret(token, s, randomBytes(16));
      const mac = createHmac("sha256", value).update("message").digest();

      p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      expectRv(t, () => p11.C_Verify(s, Buffer.from("message"), mac.subarray(0, 20)), P.CKR_SIGNATURE_LEN_RANGE, "truncated MAC");
      ended(t, () => p11.C_Verify(s, Buffer.from("message"), mac), "after CKR_SIGNATURE_LEN_RANGE");

      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      p11.C_SignUpdate(s, Buffer.from("mess"));
      expectRv(t, () => p11.C_SignFinal(s, Buffer.alloc(8)), P.CKR_BUFFER_TOO_SMALL, "short Buffer");
      expectRv(t, () => p11.C_EncryptInit(s, gcm(randomBytes(12)), aes), P.CKR_OPERATION_ACTIVE, "encryption while signing");
      expectRv(t, () => p11.C_DigestInit(s, { mechanism: P.CKM_SHA256 }), P.CKR_OPERATION_ACTIVE, "digest while signing");
      expectRv(t, () => p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_HMAC }, key), P.CKR_OPERATION_ACTIVE, "verify while signing");
      p11.C_SignUpdate(s, Buffer.from("age"));
      t.deepEqual(p11.C_SignFinal(s, Buffer.alloc(64)), mac, "the signing went on");

      const noUse = importSecret(token, s, randomBytes(16), [{ type: P.CKA_ENCRYPT, value: false }, { type: P.CKA_DECRYPT, value: false }]);
      expectRv(t, () => p11.C_DecryptInit(s, gcm(randomBytes(12)), noUse), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_DECRYPT false");
      const noMac = hmacKey(token, s, randomBytes(32));
      p11.C_SetAttributeValue(s, noMac, [{ type: P.CKA_SIGN, value: false }, { type: P.CKA_VERIFY, value: false }]);
      expectRv(t, () => p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, noMac), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_SIGN false");
      expectRv(t, () => p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_HMAC }, noMac), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_VERIFY false");
      p11.C_EncryptInit(s, gcm(randomBytes(12)), aes);
      t.is(p11.C_Encrypt(s, randomBytes(16), Buffer.alloc(64)).length, 32, "the failed C_*Init calls left no operation behind");
    },
  },
  {
    area: "multi-part",
    title: "an operation whose key is destroyed after its C_*Init runs to its end (AES-GCM, AES-CBC, HMAC); the destroyed handle starts no new one",
    run(t, token) {
      const { p11 } = token;
      if (!offers(t, token, P.CKM_AES_CBC)) return;
      const s = userSession(token);
      const value = randomBytes(32);
      const iv = randomBytes(12);
      const plaintext = randomBytes(40);
      const reference = importSecret(token, s, value);
      p11.C_EncryptInit(s, gcm(iv), reference);
      const sealed = p11.C_Encrypt(s, plaintext, Buffer.alloc(128));

      let key = importSecret(token, s, value);
      p11.C_EncryptInit(s, gcm(iv), key);
      p11.C_DestroyObject(s, key);
      t.deepEqual(p11.C_Encrypt(s, plaintext, Buffer.alloc(128)), sealed, "AES-GCM C_Encrypt after the key was destroyed");
      expectRv(t, () => p11.C_EncryptInit(s, gcm(iv), key),
        byTarget(t, token, { emulator: P.CKR_KEY_HANDLE_INVALID, softhsm: P.CKR_OBJECT_HANDLE_INVALID }, "§5.8.1 lists CKR_KEY_HANDLE_INVALID for C_EncryptInit's key; SoftHSMv2 answers CKR_OBJECT_HANDLE_INVALID."),
        "the destroyed handle");

      key = importSecret(token, s, value);
      p11.C_DecryptInit(s, gcm(iv), key);
      const opened = p11.C_DecryptUpdate(s, sealed, Buffer.alloc(128));
      p11.C_DestroyObject(s, key);
      t.deepEqual(Buffer.concat([opened, p11.C_DecryptFinal(s, Buffer.alloc(128))]), plaintext, "AES-GCM C_DecryptFinal after the key was destroyed");

      key = importSecret(token, s, value);
      const cbcIv = randomBytes(16);
      p11.C_EncryptInit(s, { mechanism: P.CKM_AES_CBC, parameter: cbcIv }, key);
      const first = p11.C_EncryptUpdate(s, plaintext.subarray(0, 16), Buffer.alloc(64));
      p11.C_DestroyObject(s, key);
      const rest = Buffer.concat([p11.C_EncryptUpdate(s, plaintext.subarray(16, 32), Buffer.alloc(64)), p11.C_EncryptFinal(s, Buffer.alloc(64))]);
      const check = importSecret(token, s, value);
      p11.C_DecryptInit(s, { mechanism: P.CKM_AES_CBC, parameter: cbcIv }, check);
      t.deepEqual(p11.C_Decrypt(s, Buffer.concat([first, rest]), Buffer.alloc(64)), plaintext.subarray(0, 32), "AES-CBC after the key was destroyed");

      const hmacValue = randomBytes(32);
      const hmac = hmacKey(token, s, hmacValue);
      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, hmac);
      p11.C_DestroyObject(s, hmac);
      t.deepEqual(p11.C_Sign(s, plaintext, Buffer.alloc(64)), createHmac("sha256", hmacValue).update(plaintext).digest(), "HMAC C_Sign after the key was destroyed");
    },
  },
];
