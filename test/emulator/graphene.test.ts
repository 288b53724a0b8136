// graphene-pk11 drives the emulator unchanged: the flows a KMS needs.
import test from "ava";
import { createCipheriv, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import type * as Graphene from "graphene-pk11";
import { Emulator } from "../../emulator/index.js";
import { pkcs11 } from "../../emulator/pkcs11.js";

const graphene = createRequire(import.meta.url)("graphene-pk11") as typeof Graphene;

function openModule(): { module: Graphene.Module; session: Graphene.Session } {
  const emulator = new Emulator({ slots: [{ token: { label: "graphene", soPin: "12345678", userPin: "1234" } }] });
  const module = new graphene.Module(emulator);
  module.initialize();
  const session = module.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
  session.login("1234", graphene.UserType.USER);
  return { module, session };
}

test("module, slot and token information reach graphene", (t) => {
  const { module, session } = openModule();
  t.is(module.manufacturerID.trim(), "hsmkit");
  const token = module.getSlots(0).getToken();
  t.is(token.label.trim(), "graphene");
  t.truthy(token.flags & graphene.TokenFlag.TOKEN_INITIALIZED);
  t.truthy(token.flags & graphene.TokenFlag.USER_PIN_INITIALIZED);
  t.true(module.getSlots(0).getMechanisms().items(0) !== undefined);
  session.close();
  module.finalize();
});

test("AES-256 key generation and GCM encryption that node:crypto agrees with", (t) => {
  const { module, session } = openModule();
  const key = session.generateKey(graphene.KeyGenMechanism.AES, {
    keyType: graphene.KeyType.AES, valueLen: 32, encrypt: true, decrypt: true, extractable: true, sensitive: false,
  });
  const attributes = key.getAttribute({ local: null, alwaysSensitive: null, neverExtractable: null, valueLen: null });
  t.deepEqual(attributes, { local: true, alwaysSensitive: false, neverExtractable: false, valueLen: 32 });
  const iv = randomBytes(12);
  const aad = Buffer.from("context");
  const params = new graphene.AesGcmParams(iv, aad, 128);
  const plaintext = randomBytes(1000);
  const sealed = session.createCipher({ name: "AES_GCM", params }, key).once(plaintext, Buffer.alloc(2048));
  const value = key.getAttribute({ value: null }).value as Buffer;
  const cipher = createCipheriv("aes-256-gcm", value, iv);
  cipher.setAAD(aad);
  t.true(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).equals(sealed));
  t.true(session.createDecipher({ name: "AES_GCM", params }, key).once(sealed, Buffer.alloc(2048)).equals(plaintext));
  const tampered = Buffer.from(sealed);
  tampered[0]! ^= 1;
  const error = t.throws(() => session.createDecipher({ name: "AES_GCM", params }, key).once(tampered, Buffer.alloc(2048)));
  t.true(error instanceof pkcs11.Pkcs11Error);
  t.is((error as { code?: number }).code, pkcs11.CKR_ENCRYPTED_DATA_INVALID);
  session.close();
  module.finalize();
});

test("wrap and unwrap with AES-KWP; sensitive values are refused with CKR_ATTRIBUTE_SENSITIVE", (t) => {
  const { module, session } = openModule();
  const kek = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 32, wrap: true, unwrap: true, sensitive: true });
  const key = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 16, extractable: true, encrypt: true });
  const wrapped = session.wrapKey({ name: "AES_KEY_WRAP_PAD", params: null }, kek, key);
  t.is(wrapped.length, 24);
  const unwrapped = session.unwrapKey({ name: "AES_KEY_WRAP_PAD", params: null }, kek, wrapped, {
    class: graphene.ObjectClass.SECRET_KEY, keyType: graphene.KeyType.AES, extractable: true, encrypt: true,
  });
  t.true((unwrapped.getAttribute({ value: null }).value as Buffer).equals(key.getAttribute({ value: null }).value as Buffer));
  t.deepEqual(unwrapped.getAttribute({ local: null, alwaysSensitive: null }), { local: false, alwaysSensitive: false });
  const error = t.throws(() => kek.getAttribute({ value: null }));
  t.is((error as { code?: number }).code, pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  const notExtractable = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 32, extractable: false });
  const refused = t.throws(() => session.wrapKey({ name: "AES_KEY_WRAP_PAD", params: null }, kek, notExtractable));
  t.is((refused as { code?: number }).code, pkcs11.CKR_KEY_UNEXTRACTABLE);
  session.close();
  module.finalize();
});

test("random bytes, find by template, attribute set rules", (t) => {
  const { module, session } = openModule();
  t.is(session.generateRandom(32).length, 32);
  const key = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 32, label: "find-me", sensitive: false, extractable: true });
  t.is(session.find({ label: "find-me" }).length, 1);
  t.is(session.find({ label: "absent" }).length, 0);
  key.setAttribute({ sensitive: true });
  t.throws(() => key.setAttribute({ sensitive: false }), { message: "CKR_ATTRIBUTE_READ_ONLY" });
  key.setAttribute({ extractable: false });
  t.throws(() => key.setAttribute({ extractable: true }), { message: "CKR_ATTRIBUTE_READ_ONLY" });
  t.throws(() => key.setAttribute({ valueLen: 16 }), { message: "CKR_ATTRIBUTE_READ_ONLY" });
  t.throws(() => key.setAttribute({ trusted: true }), { message: "CKR_ATTRIBUTE_READ_ONLY" });
  session.close();
  module.finalize();
});
