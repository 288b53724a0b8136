// Token directories: objects and PINs survive restarts; nothing secret is written in clear.
import test from "ava";
import { createCipheriv, randomBytes } from "node:crypto";
import { generateKeyPair } from "../../src/crypto/signatures.js";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Emulator } from "../../emulator/emulator.js";
import { P11Object } from "../../emulator/objects/object.js";
import { TokenFileError } from "../../emulator/store/errors.js";
import { inspectTokenDirectory } from "../../emulator/store/inspect.js";
import { openObject, readObjectHeader, sealObject } from "../../emulator/store/object-codec.js";
import { TokenDirectory } from "../../emulator/store/token-directory.js";
import { generateKey, importKey, type KeyHandle } from "../../src/crypto/keys.js";
import { ulong } from "../../emulator/objects/attributes.js";
import {
  attr, FAST_KDF, filesUnder, findAll, handleNumber, leaks, openToken, P, secretKeyTemplate, SO_PIN, tempDir, USER_PIN,
} from "./persistence-helpers.js";
import type { Handle } from "../../emulator/pkcs11.js";
import { CKS } from "./conformance/scenario.js";

const gcm = (iv: Buffer) => ({ mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, ivBits: 96, tagBits: 128 } });

/** The emulator's internals, for the checks only a test may make (these keys must never reach a file). */
interface Internals {
  state: { slots: Array<{ token: { tokenKey: { exportBytes(): Buffer } | null } }>; asymmetricImport?: unknown };
  store: { bySlot: Map<number, { objectKey: { exportBytes(): Buffer } | null }> };
}
function tokenKeyBytes(emulator: Emulator): Buffer {
  return (emulator as unknown as Internals).state.slots[0]!.token.tokenKey!.exportBytes();
}
function objectKeyBytes(emulator: Emulator): Buffer {
  return (emulator as unknown as Internals).store.bySlot.get(0)!.objectKey!.exportBytes();
}

test("token objects survive a restart: attributes, values, handles, and keys that still work", (t) => {
  const dir = tempDir(t);
  const aesValue = randomBytes(32);
  const secretValue = randomBytes(40);
  const plaintext = Buffer.from("sealed before the restart");
  const iv = randomBytes(12);
  let before: { aes: number; secret: number; data: number; publicData: number; generated: number; sealed: Buffer };
  {
    const { emulator, session } = openToken(dir);
    const aes = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, aesValue, "aes", [
      { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_ID, value: Buffer.from("a1", "hex") },
    ]));
    const secret = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_GENERIC_SECRET, secretValue, "secret", [{ type: P.CKA_EXTRACTABLE, value: true }]));
    const data = emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_LABEL, value: "data" }, { type: P.CKA_APPLICATION, value: "tests" }, { type: P.CKA_VALUE, value: Buffer.from("private data") },
    ]);
    const publicData = emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false },
      { type: P.CKA_LABEL, value: "public" }, { type: P.CKA_VALUE, value: Buffer.from("public data") },
    ]);
    const generated = emulator.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_LABEL, value: "generated" },
      { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true },
    ]);
    emulator.C_EncryptInit(session, gcm(iv), generated);
    const sealed = Buffer.from(emulator.C_Encrypt(session, plaintext, Buffer.alloc(256)));
    // A session object is not stored.
    emulator.C_CreateObject(session, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_LABEL, value: "session-only" }]);
    before = {
      aes: handleNumber(aes), secret: handleNumber(secret), data: handleNumber(data), publicData: handleNumber(publicData),
      generated: handleNumber(generated), sealed,
    };
    emulator.close();
  }
  const { emulator, slot, session } = openToken(dir, { login: false });
  t.is(emulator.C_GetTokenInfo(slot).label.trim(), "persist");
  t.truthy(emulator.C_GetTokenInfo(slot).flags & P.CKF_USER_PIN_INITIALIZED);
  t.is(findAll(emulator, session).length, 0, "before a login nothing is readable, public objects included");
  emulator.C_Login(session, P.CKU_USER, USER_PIN);
  const found = findAll(emulator, session).map(handleNumber).sort((a, b) => a - b);
  t.deepEqual(found, [before.aes, before.secret, before.data, before.publicData, before.generated].sort((a, b) => a - b));
  const byLabel = (label: string): Handle => findAll(emulator, session, [{ type: P.CKA_LABEL, value: label }])[0]!;
  t.is(handleNumber(byLabel("aes")), before.aes, "handles are stable across restarts");
  t.true(attr(emulator, session, byLabel("aes"), P.CKA_VALUE).equals(aesValue));
  t.true(attr(emulator, session, byLabel("aes"), P.CKA_ID).equals(Buffer.from("a1", "hex")));
  t.true(attr(emulator, session, byLabel("secret"), P.CKA_VALUE).equals(secretValue));
  t.is(attr(emulator, session, byLabel("secret"), P.CKA_VALUE_LEN).readBigUInt64LE(), 40n);
  t.is(attr(emulator, session, byLabel("data"), P.CKA_VALUE).toString(), "private data");
  t.is(attr(emulator, session, byLabel("data"), P.CKA_APPLICATION).toString(), "tests");
  t.is(attr(emulator, session, byLabel("public"), P.CKA_VALUE).toString(), "public data");
  t.deepEqual(findAll(emulator, session, [{ type: P.CKA_LABEL, value: "session-only" }]), []);
  const generated = byLabel("generated");
  t.deepEqual([...attr(emulator, session, generated, P.CKA_LOCAL)], [1]);
  t.deepEqual([...attr(emulator, session, generated, P.CKA_ALWAYS_SENSITIVE)], [1]);
  t.throws(() => attr(emulator, session, generated, P.CKA_VALUE), { instanceOf: P.Pkcs11Error, code: P.CKR_ATTRIBUTE_SENSITIVE });
  emulator.C_DecryptInit(session, gcm(iv), generated);
  t.true(Buffer.from(emulator.C_Decrypt(session, before.sealed, Buffer.alloc(256))).equals(plaintext));
  emulator.close();
});

test("a secret key stored without CKA_CHECK_VALUE (written before the token computed it) reports it once loaded", (t) => {
  const dir = tempDir(t);
  const value = randomBytes(16);
  const cipher = createCipheriv("aes-128-ecb", value, null);
  const expected = Buffer.concat([cipher.update(Buffer.alloc(16)), cipher.final()]).subarray(0, 3);
  {
    const { emulator, session } = openToken(dir);
    const key = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, value, "old", [{ type: P.CKA_SENSITIVE, value: true }]));
    t.true(attr(emulator, session, key, P.CKA_CHECK_VALUE).equals(expected));
    // Rewrite its file as an older hsmkit wrote it: the same object, no CKA_CHECK_VALUE.
    const internals = emulator as unknown as Internals;
    const entry = internals.store.bySlot.get(0)! as unknown as { objectKey: KeyHandle; record: { tokenId: Buffer } };
    const keys = { tokenId: entry.record.tokenId, objectKey: entry.objectKey, tokenKey: internals.state.slots[0]!.token.tokenKey as unknown as KeyHandle };
    const path = join(dir, "slot-0", "objects", `${handleNumber(key)}.object`);
    const opened = openObject(readFileSync(path), handleNumber(key), keys);
    t.true(opened.attrs.delete(P.CKA_CHECK_VALUE));
    writeFileSync(path, sealObject(new P11Object(handleNumber(key), opened.attrs, opened.material, undefined), keys));
    emulator.close();
  }
  const { emulator, session } = openToken(dir);
  const [key] = findAll(emulator, session, [{ type: P.CKA_LABEL, value: "old" }]);
  t.true(attr(emulator, session, key!, P.CKA_CHECK_VALUE).equals(expected));
  emulator.close();
});

test("C_SetAttributeValue and C_DestroyObject persist; new handles start above the stored ones", (t) => {
  const dir = tempDir(t);
  let kept: number;

  {
    const { emulator, session } = openToken(dir);
    const a = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "before"));
    const b = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "doomed"));
    emulator.C_SetAttributeValue(session, a, [{ type: P.CKA_LABEL, value: "after" }, { type: P.CKA_SENSITIVE, value: true }]);
    emulator.C_DestroyObject(session, b);
    kept = handleNumber(a);
    emulator.close();
  }
  const { emulator, session } = openToken(dir);
  const found = findAll(emulator, session);
  t.deepEqual(found.map(handleNumber), [kept]);
  t.is(attr(emulator, session, found[0]!, P.CKA_LABEL).toString(), "after");
  t.deepEqual([...attr(emulator, session, found[0]!, P.CKA_SENSITIVE)], [1]);
  const fresh = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "fresh"));
  // Above every stored handle; a handle destroyed before the restart may be given out again.
  t.true(handleNumber(fresh) > kept);
  t.not(handleNumber(fresh), kept);
  const sessionObject = emulator.C_CreateObject(session, [{ type: P.CKA_CLASS, value: P.CKO_DATA }]);
  t.true(handleNumber(sessionObject) > handleNumber(fresh));
  emulator.close();
});

test("a C_DestroyObject whose file cannot be removed fails with CKR_DEVICE_ERROR and leaves the object as the disk has it", (t) => {
  const dir = tempDir(t);
  const { emulator, session } = openToken(dir);
  const key = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(32), "stuck", [{ type: P.CKA_ENCRYPT, value: true }]));
  // A directory where the object file was: unlink(2) fails (EISDIR), even for root.
  const path = join(dir, "slot-0", "objects", `${handleNumber(key)}.object`);
  const file = readFileSync(path);
  rmSync(path);
  mkdirSync(path);
  t.throws(() => emulator.C_DestroyObject(session, key), { instanceOf: P.Pkcs11Error, code: P.CKR_DEVICE_ERROR });
  t.deepEqual(findAll(emulator, session, [{ type: P.CKA_LABEL, value: "stuck" }]).map(handleNumber), [handleNumber(key)], "still there");
  emulator.C_EncryptInit(session, gcm(randomBytes(12)), key);
  t.is(emulator.C_Encrypt(session, Buffer.from("usable"), Buffer.alloc(64)).length, 6 + 16, "and usable");
  rmSync(path, { recursive: true });
  writeFileSync(path, file);
  emulator.C_DestroyObject(session, key);
  t.deepEqual(findAll(emulator, session, [{ type: P.CKA_LABEL, value: "stuck" }]), []);
  t.false(existsSync(path));
  emulator.close();
});

test("a C_Login that cannot read the token's objects fails with CKR_DEVICE_ERROR and leaves nobody logged in", (t) => {
  const dir = tempDir(t);
  let path: string;
  let file: Buffer;
  {
    const { emulator, session } = openToken(dir);
    const key = emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(32), "unreadable"));
    path = join(dir, "slot-0", "objects", `${handleNumber(key)}.object`);
    file = readFileSync(path);
    emulator.close();
  }
  // A directory where the object file was: read(2) fails (EISDIR), even for root.
  rmSync(path);
  mkdirSync(path);
  const { emulator, session } = openToken(dir, { login: false });
  t.throws(() => emulator.C_Login(session, P.CKU_USER, USER_PIN), { instanceOf: P.Pkcs11Error, code: P.CKR_DEVICE_ERROR });
  t.is(emulator.C_GetSessionInfo(session).state, CKS.RW_PUBLIC, "not logged in");
  rmSync(path, { recursive: true });
  writeFileSync(path, file);
  emulator.C_Login(session, P.CKU_USER, USER_PIN);
  t.is(findAll(emulator, session, [{ type: P.CKA_LABEL, value: "unreadable" }]).length, 1, "a retry logs in and loads the object");
  emulator.close();
});

test("a wrong PIN opens nothing, and failures persist across restarts up to the lockout", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(32), "guarded"));
    emulator.close();
  }
  let failures = 0;
  for (let restart = 0; restart < 5; restart++) {
    const { emulator, slot, session } = openToken(dir, { login: false });
    for (let i = 0; i < 2; i++) {
      const error = t.throws(() => emulator.C_Login(session, P.CKU_USER, "wrong-pin"));
      failures++;
      // The attempt that exhausts the PIN (the tenth) is already told CKR_PIN_LOCKED.
      t.is((error as { code?: number }).code, failures >= 10 ? P.CKR_PIN_LOCKED : P.CKR_PIN_INCORRECT);
      t.is(findAll(emulator, session).length, 0);
    }
    const flags = emulator.C_GetTokenInfo(slot).flags;
    t.truthy(flags & P.CKF_USER_PIN_COUNT_LOW);
    emulator.close();
    t.is(inspectTokenDirectory(dir).tokens[0]!.userPin.failures, failures, "the counter is on disk");
  }
  const { emulator, slot, session } = openToken(dir, { login: false });
  t.truthy(emulator.C_GetTokenInfo(slot).flags & P.CKF_USER_PIN_LOCKED);
  t.throws(() => emulator.C_Login(session, P.CKU_USER, USER_PIN), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_LOCKED }, "locked even with the right PIN");
  t.is(findAll(emulator, session).length, 0);
  emulator.close();
});

test("wrong PINs given to C_SetPIN and C_InitToken count toward the lockout across restarts too", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, slot, session } = openToken(dir, { login: false });
    for (let i = 0; i < 3; i++) {
      t.throws(() => emulator.C_SetPIN(session, "wrong-pin", "new-pin-1"), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_INCORRECT });
    }
    emulator.C_CloseAllSessions(slot);
    t.throws(() => emulator.C_InitToken(slot, "wrong-so-pin", "renewed"), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_INCORRECT });
    emulator.close();
  }
  const stored = inspectTokenDirectory(dir).tokens[0]!;
  t.is(stored.userPin.failures, 3, "C_SetPIN's failures are on disk");
  t.is(stored.soPin.failures, 1, "C_InitToken's failure is on disk");
  const { emulator, slot } = openToken(dir, { login: false });
  t.truthy(emulator.C_GetTokenInfo(slot).flags & P.CKF_USER_PIN_COUNT_LOW, "and the restarted token reports them");
  emulator.close();
});

test("a successful login resets the stored failure counter", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir, { login: false });
    t.throws(() => emulator.C_Login(session, P.CKU_USER, "nope-nope"));
    t.throws(() => emulator.C_Login(session, P.CKU_SO, "nope-nope"));
    emulator.close();
  }
  t.is(inspectTokenDirectory(dir).tokens[0]!.userPin.failures, 1);
  t.is(inspectTokenDirectory(dir).tokens[0]!.soPin.failures, 1);
  const { emulator } = openToken(dir);
  emulator.close();
  t.is(inspectTokenDirectory(dir).tokens[0]!.userPin.failures, 0);
  t.is(inspectTokenDirectory(dir).tokens[0]!.soPin.failures, 1);
});

test("C_SetPIN and C_InitPIN persist: the new PIN opens the token after a restart, the old one does not", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "kept"));
    emulator.C_SetPIN(session, USER_PIN, "new-user-pin");
    emulator.close();
  }
  {
    const { emulator, session } = openToken(dir, { login: false });
    t.throws(() => emulator.C_Login(session, P.CKU_USER, USER_PIN), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_INCORRECT });
    emulator.C_Login(session, P.CKU_USER, "new-user-pin");
    t.is(findAll(emulator, session).length, 1);
    emulator.C_Logout(session);
    emulator.C_Login(session, P.CKU_SO, SO_PIN);
    emulator.C_InitPIN(session, "reset-by-so");
    emulator.close();
  }
  const { emulator, session } = openToken(dir, { login: false });
  emulator.C_Login(session, P.CKU_USER, "reset-by-so");
  t.is(attr(emulator, session, findAll(emulator, session)[0]!, P.CKA_LABEL).toString(), "kept");
  emulator.close();
});

test("no key byte appears in any token file: token and object keys, secret and private keys, data values", (t) => {
  const dir = tempDir(t);
  const values = [randomBytes(16), randomBytes(24), randomBytes(32), randomBytes(20), randomBytes(64), randomBytes(48)];
  const { emulator, session } = openToken(dir);
  const secrets: Buffer[] = [tokenKeyBytes(emulator)];
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, values[0]!, "aes128", [{ type: P.CKA_EXTRACTABLE, value: true }]));
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, values[1]!, "aes192"));
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, values[2]!, "aes256", [{ type: P.CKA_SENSITIVE, value: true }]));
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_GENERIC_SECRET, values[3]!, "hmac160"));
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_GENERIC_SECRET, values[4]!, "hmac512", [{ type: P.CKA_EXTRACTABLE, value: true }]));
  emulator.C_CreateObject(session, [
    { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_VALUE, value: values[5]! },
  ]);
  secrets.push(...values);
  const generated = emulator.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
    { type: P.CKA_TOKEN, value: true }, { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
  ]);
  secrets.push(attr(emulator, session, generated, P.CKA_VALUE), objectKeyBytes(emulator));
  // Asymmetric keys, when the mechanism families that import and make them are present.
  if ((emulator as unknown as Internals).state.asymmetricImport !== undefined) {
    const b64 = (v: string | undefined): Buffer => Buffer.from(v!, "base64url");
    const ec = generateKeyPair({ kind: "ec", curve: "P-256" }).privateKey.export({ format: "jwk" });
    emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }, { type: P.CKA_VALUE, value: b64(ec.d) }, { type: P.CKA_LABEL, value: "ec" },
    ]);
    const rsa = generateKeyPair({ kind: "rsa", modulusBits: 2048 }).privateKey.export({ format: "jwk" });
    emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_MODULUS, value: b64(rsa.n) }, { type: P.CKA_PUBLIC_EXPONENT, value: b64(rsa.e) }, { type: P.CKA_PRIVATE_EXPONENT, value: b64(rsa.d) },
      { type: P.CKA_PRIME_1, value: b64(rsa.p) }, { type: P.CKA_PRIME_2, value: b64(rsa.q) }, { type: P.CKA_LABEL, value: "rsa" },
    ]);
    secrets.push(b64(ec.d), ...[rsa.d, rsa.p, rsa.q, rsa.dp, rsa.dq, rsa.qi].map(b64));
  } else {
    t.log("no asymmetric key import yet: RSA and EC keys are covered by the object-codec test below");
  }
  const mechanisms = new Set(emulator.C_GetMechanismList(emulator.C_GetSlotList()[0]!));
  if (mechanisms.has(P.CKM_EC_KEY_PAIR_GEN)) {
    const pair = emulator.C_GenerateKeyPair(session, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
      [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }, { type: P.CKA_VERIFY, value: true }],
      [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
    secrets.push(attr(emulator, session, pair.privateKey, P.CKA_VALUE));
  } else {
    t.log("no CKM_EC_KEY_PAIR_GEN yet: EC keys are covered by the object-codec test below");
  }
  if (mechanisms.has(P.CKM_RSA_PKCS_KEY_PAIR_GEN)) {
    const pair = emulator.C_GenerateKeyPair(session, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
      [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
      [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
    for (const type of [P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2]) secrets.push(attr(emulator, session, pair.privateKey, type));
  } else {
    t.log("no CKM_RSA_PKCS_KEY_PAIR_GEN yet: RSA keys are covered by the object-codec test below");
  }
  emulator.close();
  t.true(filesUnder(dir).length >= 8);
  for (const [i, secret] of secrets.entries()) t.deepEqual(leaks(dir, secret), [], `secret ${i} (${secret.length} bytes) leaked`);
  // And after a restart and login (which rewrites token.json), still nothing.
  const again = openToken(dir);
  t.is(findAll(again.emulator, again.session).length, filesUnder(join(dir, "slot-0", "objects")).length, "every object loads back");
  t.true(secrets[0]!.equals(tokenKeyBytes(again.emulator)), "the token key is the same after a restart");
  again.emulator.close();
  for (const [i, secret] of secrets.entries()) t.deepEqual(leaks(dir, secret), [], `secret ${i} leaked after restart`);
});

test("object codec: private and public keys (RSA, EC, Ed25519) round-trip sealed, with no private byte in clear", (t) => {
  const tokenKey = generateKey(32);
  const objectKey = generateKey(32);
  const keys = { tokenId: randomBytes(16), tokenKey, objectKey };
  for (const kind of ["rsa", "ec", "ed25519"] as const) {
    const pair = kind === "rsa" ? generateKeyPair({ kind: "rsa", modulusBits: 2048 })
      : kind === "ec" ? generateKeyPair({ kind: "ec", curve: "P-256" }) : generateKeyPair({ kind: "ed25519" });
    const attrs = new Map([[P.CKA_CLASS, ulong(P.CKO_PRIVATE_KEY)], [P.CKA_LABEL, Buffer.from(kind)]]);
    const object = new P11Object(42, attrs, { kind: "private", key: pair.privateKey, publicKey: pair.publicKey }, undefined);
    const file = sealObject(object, keys);
    const jwk = pair.privateKey.export({ format: "jwk" });
    const privateParts = ["d", "p", "q", "dp", "dq", "qi"].map((f) => jwk[f]).filter((v): v is string => v !== undefined).map((v) => Buffer.from(v, "base64url"));
    t.true(privateParts.length >= 1);
    for (const part of [...privateParts, pair.privateKey.export({ format: "der", type: "pkcs8" })]) t.false(file.includes(part), `${kind} private part in clear`);
    const opened = openObject(file, 42, keys);
    t.is(opened.material.kind, "private");
    if (opened.material.kind !== "private") continue;
    t.deepEqual(opened.material.key.export({ format: "jwk" }), jwk);
    t.true(opened.material.publicKey.export({ format: "der", type: "spki" }).equals(pair.publicKey.export({ format: "der", type: "spki" })));
    t.is(opened.attrs.get(P.CKA_LABEL)!.toString(), kind);
    const publicObject = new P11Object(43, new Map([[P.CKA_CLASS, ulong(P.CKO_PUBLIC_KEY)]]), { kind: "public", key: pair.publicKey }, undefined);
    const publicOpened = openObject(sealObject(publicObject, keys), 43, keys);
    t.true(publicOpened.material.kind === "public" && publicOpened.material.key.equals(pair.publicKey));
  }
  tokenKey.destroy();
  objectKey.destroy();
});

test("object codec: handle and token are bound; any altered byte fails", (t) => {
  const keys = { tokenId: randomBytes(16), tokenKey: generateKey(32), objectKey: generateKey(32) };
  const secret = importKey(randomBytes(32));
  const object = new P11Object(7, new Map([[P.CKA_CLASS, ulong(P.CKO_SECRET_KEY)]]), { kind: "secret", key: secret }, undefined);
  const file = sealObject(object, keys);
  t.deepEqual(readObjectHeader(file), { tokenId: keys.tokenId, handle: 7 });
  const opened = openObject(file, 7, keys);
  t.true(opened.material.kind === "secret" && opened.material.key.exportBytes().equals(secret.exportBytes()));
  t.throws(() => openObject(file, 8, keys), { message: /handle 7/ });
  t.throws(() => openObject(file, 7, { ...keys, tokenId: randomBytes(16) }), { message: /another initialization/ });
  t.throws(() => openObject(file, 7, { ...keys, objectKey: generateKey(32) }), { message: /authentication/ });
  for (let i = 0; i < file.length; i++) {
    const altered = Buffer.from(file);
    altered[i]! ^= 0x01;
    t.throws(() => openObject(altered, 7, keys), undefined, `byte ${i}`);
  }
});

test("C_InitToken on a stored token removes its objects for good", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "old"));
    emulator.close();
  }
  const oldTokenId = inspectTokenDirectory(dir).tokens[0]!.tokenId;
  {
    const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
    emulator.C_Initialize();
    const slot = emulator.C_GetSlotList()[0]!;
    t.throws(() => emulator.C_InitToken(slot, "wrong-so-pin", "renewed"), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_INCORRECT });
    emulator.C_InitToken(slot, SO_PIN, "renewed");
    const session = emulator.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    emulator.C_Login(session, P.CKU_SO, SO_PIN);
    emulator.C_InitPIN(session, USER_PIN);
    emulator.close();
  }
  const summary = inspectTokenDirectory(dir).tokens[0]!;
  t.is(summary.label, "renewed");
  t.not(summary.tokenId, oldTokenId);
  t.is(summary.objectFiles, 0);
  const { emulator, session } = openToken(dir);
  t.is(findAll(emulator, session).length, 0);
  emulator.close();
});

test("a C_InitToken that cannot write token.json fails with CKR_DEVICE_ERROR and leaves the token as the disk has it", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "kept"));
    emulator.close();
  }
  const path = join(dir, "slot-0", "token.json");
  const file = readFileSync(path);
  {
    const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
    emulator.C_Initialize();
    const slot = emulator.C_GetSlotList()[0]!;
    // A directory where token.json was: rename(2) over it fails (EISDIR), even for root.
    rmSync(path);
    mkdirSync(path);
    t.throws(() => emulator.C_InitToken(slot, SO_PIN, "renewed"), { instanceOf: P.Pkcs11Error, code: P.CKR_DEVICE_ERROR });
    rmSync(path, { recursive: true });
    writeFileSync(path, file);
    t.is(emulator.C_GetTokenInfo(slot).label.trim(), "persist", "the old label");
    const session = emulator.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    // The SO's login rewrites token.json (its failure counter): it must not mix the new SO PIN
    // record into the old token's, which would leave the old object key wrapped under no PIN.
    emulator.C_Login(session, P.CKU_SO, SO_PIN);
    emulator.C_Logout(session);
    emulator.C_Login(session, P.CKU_USER, USER_PIN);
    t.deepEqual(findAll(emulator, session).map((h) => attr(emulator, session, h, P.CKA_LABEL).toString()), ["kept"]);
    emulator.close();
  }
  const { emulator, session } = openToken(dir);
  t.deepEqual(findAll(emulator, session).map((h) => attr(emulator, session, h, P.CKA_LABEL).toString()), ["kept"], "and after a restart");
  emulator.close();
});

test("files of an earlier initialization, or renamed or damaged files, never load; the rest do", async (t) => {
  const dir = tempDir(t);
  const objects = join(dir, "slot-0", "objects");
  const foreignDir = tempDir(t);
  {
    const other = openToken(foreignDir);
    other.emulator.C_CreateObject(other.session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "foreign"));
    other.emulator.close();
  }
  let handles: number[];
  {
    const { emulator, session } = openToken(dir);
    handles = ["good", "renamed", "damaged"].map((label) => handleNumber(emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), label))));
    emulator.close();
  }
  renameSync(join(objects, `${handles[1]}.object`), join(objects, "900.object"));
  const damaged = readFileSync(join(objects, `${handles[2]}.object`));
  damaged[damaged.length - 20]! ^= 0x80;
  writeFileSync(join(objects, `${handles[2]}.object`), damaged);
  const foreignName = readdirSync(join(foreignDir, "slot-0", "objects"))[0]!;
  copyFileSync(join(foreignDir, "slot-0", "objects", foreignName), join(objects, "901.object"));

  const warnings: string[] = [];
  const listeners = process.listeners("warning");
  process.removeAllListeners("warning");
  process.on("warning", (warning) => warnings.push(`${(warning as { code?: string }).code}: ${warning.message}`));
  t.teardown(() => {
    process.removeAllListeners("warning");
    for (const listener of listeners) process.on("warning", listener);
  });
  const { emulator, session } = openToken(dir);
  const found = findAll(emulator, session);
  t.deepEqual(found.map((h) => attr(emulator, session, h, P.CKA_LABEL).toString()), ["good"]);
  emulator.close();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(warnings.filter((w) => w.startsWith("HSMKIT_OBJECT_UNREADABLE")).length, 2, warnings.join("\n"));
  t.true(existsSync(join(objects, "900.object")) && existsSync(join(objects, `${handles[2]}.object`)), "damaged files stay for inspection");
  t.false(existsSync(join(objects, "901.object")), "a file of another token id is removed");
});

test("the directory decides the slots: stored tokens are kept, the slots option adds uninitialized ones", (t) => {
  const dir = tempDir(t);
  {
    const emulator = new Emulator({
      tokenDir: dir, kdf: FAST_KDF,
      slots: [{ token: { label: "zero", soPin: SO_PIN, userPin: USER_PIN } }, {}, { token: { label: "two", soPin: SO_PIN } }],
    });
    emulator.C_Initialize();
    t.is(emulator.C_GetSlotList().length, 3);
    emulator.close();
  }
  t.deepEqual(inspectTokenDirectory(dir).tokens.map((token) => [token.slot, token.label]), [[0, "zero"], [2, "two"]]);
  const serials = inspectTokenDirectory(dir).tokens.map((token) => token.serial);
  const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF, slots: [{ token: { label: "ignored", soPin: "other-pin" } }] });
  emulator.C_Initialize();
  const slots = emulator.C_GetSlotList();
  t.is(slots.length, 3, "as many slots as the directory holds");
  t.is(emulator.C_GetTokenInfo(slots[0]!).label.trim(), "zero", "a stored token is not re-initialized");
  t.is(emulator.C_GetTokenInfo(slots[0]!).serialNumber.trim(), serials[0]!);
  t.is(emulator.C_GetTokenInfo(slots[1]!).flags & P.CKF_TOKEN_INITIALIZED, 0);
  t.is(emulator.C_GetTokenInfo(slots[2]!).label.trim(), "two");
  t.is(emulator.C_GetTokenInfo(slots[2]!).flags & P.CKF_USER_PIN_INITIALIZED, 0);
  emulator.close();
});

test("close() then C_Initialize reads the directory afresh; the Emulator works again", (t) => {
  const dir = tempDir(t);
  const { emulator, session } = openToken(dir);
  emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "one"));
  emulator.close();
  t.throws(() => emulator.C_GetSlotList(), { instanceOf: P.Pkcs11Error, code: P.CKR_CRYPTOKI_NOT_INITIALIZED });
  emulator.C_Initialize();
  const slot = emulator.C_GetSlotList()[0]!;
  const again = emulator.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  t.is(findAll(emulator, again).length, 0);
  emulator.C_Login(again, P.CKU_USER, USER_PIN);
  t.deepEqual(findAll(emulator, again).map((h) => attr(emulator, again, h, P.CKA_LABEL).toString()), ["one"]);
  emulator.C_Finalize();
  emulator.C_Initialize(); // C_Finalize alone keeps the directory: nothing to re-read
  emulator.close();
});

test("crash leftovers are cleared on open: temporary files, half-deleted and half-created slots", (t) => {
  const dir = tempDir(t);
  openToken(dir).emulator.close();
  writeFileSync(join(dir, "slot-0", ".tmp-999999999-abc-token.json"), "partial");
  writeFileSync(join(dir, "slot-0", "objects", ".tmp-999999999-abc-5.object"), "partial");
  mkdirSync(join(dir, ".deleted-abc-slot-4"));
  mkdirSync(join(dir, "slot-3", "objects"), { recursive: true });
  const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
  t.deepEqual(readdirSync(dir).sort(), ["lock", "slot-0"]);
  t.deepEqual(readdirSync(join(dir, "slot-0")).sort(), ["objects", "token.json"]);
  t.deepEqual(readdirSync(join(dir, "slot-0", "objects")), []);
  emulator.close();
  t.deepEqual(readdirSync(dir), ["slot-0"], "close() removes the lock");
  mkdirSync(join(dir, "slot-5"));
  writeFileSync(join(dir, "slot-5", "notes.txt"), "not ours");
  t.throws(() => new Emulator({ tokenDir: dir }), { instanceOf: TokenFileError, message: /slot-5.*token\.json: missing, but the slot directory holds other files/ });
  t.true(existsSync(join(dir, "slot-5", "notes.txt")), "files the emulator did not write are never removed");
});

test("temporaries in a slot directory are swept even when their pid now belongs to a live process", (t) => {
  const dir = tempDir(t);
  openToken(dir).emulator.close();
  // Only the lock's owner writes inside slot directories, so a temporary there is abandoned
  // whatever its pid says: after a restart the pid is often reused (pid 1 in a container).
  const reused = process.ppid;
  writeFileSync(join(dir, "slot-0", "objects", `.tmp-${reused}-abc-5.object`), "partial");
  // A crash inside the first C_InitToken of slot 3, after token.json's temporary was written.
  mkdirSync(join(dir, "slot-3", "objects"), { recursive: true });
  writeFileSync(join(dir, "slot-3", `.tmp-${reused}-abc-token.json`), "partial");
  const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
  t.deepEqual(readdirSync(dir).sort(), ["lock", "slot-0"]);
  t.deepEqual(readdirSync(join(dir, "slot-0", "objects")), []);
  emulator.close();
});

test("a damaged token.json is an error naming the file; a bad kdf option is refused", (t) => {
  const dir = tempDir(t);
  openToken(dir).emulator.close();
  const path = join(dir, "slot-0", "token.json");
  const record = JSON.parse(readFileSync(path, "utf8")) as { pins: { user: { kdf: { N: number } } } };
  record.pins.user.kdf.N = 2 ** 24;
  writeFileSync(path, JSON.stringify(record));
  const error = t.throws(() => new Emulator({ tokenDir: dir }), { instanceOf: TokenFileError });
  t.regex(error!.message, /token\.json: pins\.user\.kdf/);
  t.false(existsSync(join(dir, "lock")), "the lock is released when opening fails");
  t.throws(() => new Emulator({ tokenDir: tempDir(t), kdf: { N: 1000, r: 8, p: 1 } }), { instanceOf: RangeError });
});

test("the default scrypt cost (N=2^14, r=8, p=1) is what is stored and it opens the token", (t) => {
  const dir = tempDir(t);
  {
    const emulator = new Emulator({ tokenDir: dir, slots: [{ token: { label: "default-kdf", soPin: SO_PIN, userPin: USER_PIN } }] });
    emulator.C_Initialize();
    const session = emulator.C_OpenSession(emulator.C_GetSlotList()[0]!, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    emulator.C_Login(session, P.CKU_USER, USER_PIN);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(32), "default"));
    emulator.close();
  }
  const token = inspectTokenDirectory(dir).tokens[0]!;
  t.deepEqual(token.userPin.kdf, { name: "scrypt", N: 16384, r: 8, p: 1 });
  t.deepEqual(token.soPin.kdf, { name: "scrypt", N: 16384, r: 8, p: 1 });
  const emulator = new Emulator({ tokenDir: dir });
  emulator.C_Initialize();
  const session = emulator.C_OpenSession(emulator.C_GetSlotList()[0]!, P.CKF_SERIAL_SESSION);
  t.throws(() => emulator.C_Login(session, P.CKU_USER, "not-the-pin"), { instanceOf: P.Pkcs11Error, code: P.CKR_PIN_INCORRECT });
  emulator.C_Login(session, P.CKU_USER, USER_PIN);
  t.is(findAll(emulator, session).length, 1);
  emulator.close();
});

test("TokenDirectory.deleteToken removes a token and its objects; the slot is free again", (t) => {
  const dir = tempDir(t);
  {
    const { emulator, session } = openToken(dir);
    emulator.C_CreateObject(session, secretKeyTemplate(P.CKK_AES, randomBytes(16), "x"));
    emulator.close();
  }
  const directory = TokenDirectory.open(dir);
  directory.deleteToken(0);
  t.throws(() => directory.deleteToken(0), { message: /no initialized token/ });
  directory.close();
  t.deepEqual(readdirSync(dir), []);
  const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
  emulator.C_Initialize();
  t.is(emulator.C_GetTokenInfo(emulator.C_GetSlotList()[0]!).flags & P.CKF_TOKEN_INITIALIZED, 0);
  emulator.close();
});
