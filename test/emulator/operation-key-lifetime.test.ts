// A key destroyed while an operation holds it (C_DestroyObject, its session closed) keeps its native
// material only until that operation ends, whichever way it ends; the conformance scenario
// (conformance/multipart.ts) shows the operation running on, as on SoftHSMv2.
import test from "ava";
import { randomBytes } from "node:crypto";
import { Emulator } from "../../emulator/index.js";
import { pkcs11 as P } from "../../emulator/pkcs11.js";
import { secureMemoryStats } from "../../src/crypto/keys.js";
import { gcm } from "./conformance/scenario.js";

function open(): { p11: Emulator; s: Buffer; key: () => Buffer } {
  const p11 = new Emulator({ slots: [{ token: { label: "lifetime", soPin: "12345678", userPin: "1234" } }], kdf: { N: 16, r: 1, p: 1 } });
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true)[0]!;
  const s = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  p11.C_Login(s, P.CKU_USER, "1234");
  const key = (): Buffer => p11.C_CreateObject(s, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_VALUE, value: randomBytes(32) },
  ]);
  return { p11, s, key };
}

const inUse = (): number => secureMemoryStats().bytesInUse;
const gcmParams = (): ReturnType<typeof gcm> => gcm(randomBytes(12));

test("a destroyed key's material goes when the operation holding it completes", (t) => {
  const { p11, s, key } = open();
  t.teardown(() => p11.C_Finalize());
  const handle = key();
  p11.C_EncryptInit(s, gcmParams(), handle);
  const held = inUse();
  p11.C_DestroyObject(s, handle);
  t.is(inUse(), held, "kept while the operation needs it");
  p11.C_Encrypt(s, Buffer.from("data"), Buffer.alloc(64));
  t.true(inUse() < held, "released when it completed");
});

test("... when it fails, and when its session closes", (t) => {
  const { p11, s, key } = open();
  t.teardown(() => p11.C_Finalize());
  const failing = key();
  p11.C_DecryptInit(s, gcmParams(), failing);
  const held = inUse();
  p11.C_DestroyObject(s, failing);
  t.throws(() => p11.C_Decrypt(s, randomBytes(40), Buffer.alloc(64)), { message: /CKR_ENCRYPTED_DATA_INVALID/ });
  t.true(inUse() < held, "released when the operation failed");

  const slot = p11.C_GetSlotList(true)[0]!;
  const other = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  const closing = key();
  p11.C_EncryptInit(other, gcmParams(), closing);
  const before = inUse();
  p11.C_DestroyObject(s, closing);
  t.is(inUse(), before);
  p11.C_CloseSession(other);
  t.true(inUse() < before, "released when the session holding the operation closed");
});
