// graphene-pk11 drives the asymmetric, HMAC, digest and AES-mode mechanisms unchanged. graphene's
// verify returns false for a bad signature only when the error is pkcs11js's own Pkcs11Error with
// CKR_SIGNATURE_INVALID — checked here for RSA, ECDSA and HMAC, in the sync and callback forms.
import test from "ava";
import {
  constants, createCipheriv, createHash, createHmac, createPublicKey, diffieHellman, privateDecrypt, publicEncrypt, randomBytes,
  verify as nodeVerify, type KeyObject,
} from "node:crypto";
import { generateKeyPair } from "../../src/crypto/signatures.js";
import { createRequire } from "node:module";
import type * as Graphene from "graphene-pk11";
import { Emulator } from "../../emulator/index.js";
import { FAST_KDF } from "./mechanisms-helpers.js";

const graphene = createRequire(import.meta.url)("graphene-pk11") as typeof Graphene;

function openModule(t: { teardown(fn: () => void): void }): Graphene.Session {
  const emulator = new Emulator({ kdf: FAST_KDF, slots: [{ token: { label: "graphene", soPin: "12345678", userPin: "1234" } }] });
  const module = new graphene.Module(emulator);
  module.initialize();
  const session = module.getSlots(0).open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
  session.login("1234", graphene.UserType.USER);
  t.teardown(() => {
    session.close();
    module.finalize();
  });
  return session;
}

function rsaPublicKey(key: Graphene.PublicKey): KeyObject {
  const { modulus, publicExponent } = key.getAttribute({ modulus: null, publicExponent: null }) as { modulus: Buffer; publicExponent: Buffer };
  return createPublicKey({ key: { kty: "RSA", n: modulus.toString("base64url"), e: publicExponent.toString("base64url") }, format: "jwk" });
}

function ecPublicKey(key: Graphene.PublicKey, crv: string, fieldBytes: number): KeyObject {
  const point = (key.getAttribute({ pointEC: null }) as { pointEC: Buffer }).pointEC.subarray(-(1 + 2 * fieldBytes));
  return createPublicKey({
    key: { kty: "EC", crv, x: point.subarray(1, 1 + fieldBytes).toString("base64url"), y: point.subarray(1 + fieldBytes).toString("base64url") },
    format: "jwk",
  });
}

const verifyLater = (verifier: Graphene.Verify, data: Buffer, signature: Buffer): Promise<boolean> =>
  new Promise((resolve, reject) => verifier.once(data, signature, (error, valid) => (error ? reject(error) : resolve(valid))));

test("RSA: key generation, PKCS #1 and PSS signatures, OAEP — verify gives false for a bad signature", async (t) => {
  const session = openModule(t);
  const keys = session.generateKeyPair(graphene.KeyGenMechanism.RSA, {
    keyType: graphene.KeyType.RSA, modulusBits: 2048, publicExponent: Buffer.from([1, 0, 1]), verify: true, encrypt: true, token: false,
  }, {
    keyType: graphene.KeyType.RSA, sign: true, decrypt: true, token: false, sensitive: true, extractable: false,
  });
  t.deepEqual(keys.privateKey.getAttribute({ local: null, alwaysSensitive: null, neverExtractable: null }), { local: true, alwaysSensitive: true, neverExtractable: true });
  t.is(keys.publicKey.getAttribute({ modulusBits: null }).modulusBits, 2048);
  const publicKey = rsaPublicKey(keys.publicKey);
  const data = Buffer.from("graphene signs");

  const signature = session.createSign("SHA256_RSA_PKCS", keys.privateKey).once(data);
  t.true(nodeVerify("sha256", data, publicKey, signature));
  t.true(session.createVerify("SHA256_RSA_PKCS", keys.publicKey).once(data, signature));
  const bad = Buffer.from(signature);
  bad[0]! ^= 1;
  t.false(session.createVerify("SHA256_RSA_PKCS", keys.publicKey).once(data, bad));
  t.false(await verifyLater(session.createVerify("SHA256_RSA_PKCS", keys.publicKey), data, bad));
  t.true(await verifyLater(session.createVerify("SHA256_RSA_PKCS", keys.publicKey), data, signature));
  const streaming = session.createVerify("SHA256_RSA_PKCS", keys.publicKey);
  streaming.update(data.subarray(0, 5));
  streaming.update(data.subarray(5));
  t.false(streaming.final(bad));

  const pss = { name: "SHA256_RSA_PKCS_PSS", params: new graphene.RsaPssParams(graphene.MechanismEnum.SHA256, graphene.RsaMgf.MGF1_SHA256, 32) };
  const pssSignature = session.createSign(pss, keys.privateKey).once(data);
  t.true(nodeVerify("sha256", data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pssSignature));
  t.true(session.createVerify(pss, keys.publicKey).once(data, pssSignature));
  t.false(session.createVerify(pss, keys.publicKey).once(Buffer.from("other"), pssSignature));

  const oaep = { name: "RSA_PKCS_OAEP", params: new graphene.RsaOaepParams(graphene.MechanismEnum.SHA256, graphene.RsaMgf.MGF1_SHA256) };
  const secret = randomBytes(32);
  const ciphertext = session.createCipher(oaep, keys.publicKey).once(secret, Buffer.alloc(256));
  t.deepEqual(session.createDecipher(oaep, keys.privateKey).once(ciphertext, Buffer.alloc(256)), secret);
  const fromNode = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, secret);
  t.deepEqual(session.createDecipher(oaep, keys.privateKey).once(fromNode, Buffer.alloc(256)), secret);
  // The default graphene OAEP parameters (SHA-1) work too.
  const sha1 = { name: "RSA_PKCS_OAEP", params: new graphene.RsaOaepParams() };
  const sha1Ciphertext = session.createCipher(sha1, keys.publicKey).once(secret, Buffer.alloc(256));
  t.deepEqual(session.createDecipher(sha1, keys.privateKey).once(sha1Ciphertext, Buffer.alloc(256)), secret);
});

test("RSA OAEP wrap of an AES key that node:crypto unwraps", (t) => {
  const session = openModule(t);
  const keys = session.generateKeyPair(graphene.KeyGenMechanism.RSA, {
    keyType: graphene.KeyType.RSA, modulusBits: 2048, publicExponent: Buffer.from([1, 0, 1]), wrap: true,
  }, { keyType: graphene.KeyType.RSA, unwrap: true, extractable: true, sensitive: false });
  const aes = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 32, extractable: true, sensitive: false, encrypt: true });
  const oaep = { name: "RSA_PKCS_OAEP", params: new graphene.RsaOaepParams(graphene.MechanismEnum.SHA256, graphene.RsaMgf.MGF1_SHA256) };
  const wrapped = session.wrapKey(oaep, keys.publicKey, aes);
  const { privateExponent, prime1, prime2, exp1, exp2, coefficient, modulus, publicExponent } = keys.privateKey.getAttribute({
    privateExponent: null, prime1: null, prime2: null, exp1: null, exp2: null, coefficient: null, modulus: null, publicExponent: null,
  }) as Record<string, Buffer>;
  const b = (x: Buffer | undefined): string => x!.toString("base64url");
  const { createPrivateKey } = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
  const privateKey = createPrivateKey({
    key: { kty: "RSA", n: b(modulus), e: b(publicExponent), d: b(privateExponent), p: b(prime1), q: b(prime2), dp: b(exp1), dq: b(exp2), qi: b(coefficient) },
    format: "jwk",
  });
  const value = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, wrapped);
  t.deepEqual(value, aes.getAttribute({ value: null }).value);
  const unwrapped = session.unwrapKey(oaep, keys.privateKey, wrapped, {
    class: graphene.ObjectClass.SECRET_KEY, keyType: graphene.KeyType.AES, extractable: true, sensitive: false, encrypt: true,
  });
  t.deepEqual(unwrapped.getAttribute({ value: null }).value, value);
});

test("EC: key generation, ECDSA (hashed and raw) and ECDH derive that node:crypto agrees with", async (t) => {
  const session = openModule(t);
  const keys = session.generateKeyPair(graphene.KeyGenMechanism.EC, {
    keyType: graphene.KeyType.EC, paramsEC: graphene.NamedCurve.getByName("secp256r1").value, verify: true, token: false,
  }, {
    keyType: graphene.KeyType.EC, sign: true, derive: true, token: false,
  });
  t.deepEqual(keys.privateKey.getAttribute({ local: null, keyGenMechanism: null }), { local: true, keyGenMechanism: graphene.MechanismEnum.EC_KEY_PAIR_GEN });
  const publicKey = ecPublicKey(keys.publicKey, "P-256", 32);
  const data = Buffer.from("graphene signs with ECDSA");
  const signature = session.createSign("ECDSA_SHA256", keys.privateKey).once(data);
  t.is(signature.length, 64);
  t.true(nodeVerify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature));
  t.true(session.createVerify("ECDSA_SHA256", keys.publicKey).once(data, signature));
  const bad = Buffer.from(signature);
  bad[40]! ^= 0x80;
  t.false(session.createVerify("ECDSA_SHA256", keys.publicKey).once(data, bad));
  t.false(await verifyLater(session.createVerify("ECDSA_SHA256", keys.publicKey), data, bad));
  const hash = createHash("sha256").update(data).digest();
  const raw = session.createSign("ECDSA", keys.privateKey).once(hash);
  t.true(nodeVerify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, raw));
  t.true(session.createVerify("ECDSA", keys.publicKey).once(hash, signature));
  t.false(session.createVerify("ECDSA", keys.publicKey).once(hash, bad));

  const peer = generateKeyPair({ kind: "ec", curve: "prime256v1" });
  const jwk = peer.publicKey.export({ format: "jwk" });
  const peerPoint = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
  const derived = session.deriveKey({ name: "ECDH1_DERIVE", params: new graphene.EcdhParams(graphene.EcKdf.NULL, null, peerPoint) }, keys.privateKey, {
    class: graphene.ObjectClass.SECRET_KEY, keyType: graphene.KeyType.AES, valueLen: 32, encrypt: true, decrypt: true, extractable: true, sensitive: false, token: false,
  });
  const shared = diffieHellman({ privateKey: peer.privateKey, publicKey });
  t.deepEqual(derived.getAttribute({ value: null }).value, shared);
  // Both sides now hold the same AES key.
  const iv = randomBytes(12);
  const sealed = session.createCipher({ name: "AES_GCM", params: new graphene.AesGcmParams(iv, Buffer.alloc(0), 128) }, derived).once(data, Buffer.alloc(1024));
  const cipher = createCipheriv("aes-256-gcm", shared, iv);
  t.deepEqual(sealed, Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]));
});

test("HMAC, digests and AES-CBC through graphene", (t) => {
  const session = openModule(t);
  const hmacKey = session.generateKey(graphene.KeyGenMechanism.GENERIC_SECRET, {
    keyType: graphene.KeyType.GENERIC_SECRET, valueLen: 32, sign: true, verify: true, extractable: true, sensitive: false,
  });
  const value = hmacKey.getAttribute({ value: null }).value as Buffer;
  const data = Buffer.from("mac me");
  const tag = session.createSign("SHA256_HMAC", hmacKey).once(data);
  t.deepEqual(tag, createHmac("sha256", value).update(data).digest());
  t.true(session.createVerify("SHA256_HMAC", hmacKey).once(data, tag));
  const bad = Buffer.from(tag);
  bad[31]! ^= 1;
  t.false(session.createVerify("SHA256_HMAC", hmacKey).once(data, bad));
  t.deepEqual(session.createDigest("SHA384").once(data), createHash("sha384").update(data).digest());
  const aes = session.generateKey(graphene.KeyGenMechanism.AES, { keyType: graphene.KeyType.AES, valueLen: 16, encrypt: true, decrypt: true, extractable: true, sensitive: false });
  const iv = randomBytes(16);
  const plaintext = randomBytes(100);
  const alg = { name: "AES_CBC_PAD", params: new graphene.AesCbcParams(iv) };
  const cipher = session.createCipher(alg, aes);
  const encrypted = Buffer.concat([cipher.update(plaintext.subarray(0, 40)), cipher.update(plaintext.subarray(40)), cipher.final()]);
  const expected = createCipheriv("aes-128-cbc", aes.getAttribute({ value: null }).value as Buffer, iv);
  t.deepEqual(encrypted, Buffer.concat([expected.update(plaintext), expected.final()]));
  const decipher = session.createDecipher(alg, aes);
  t.deepEqual(Buffer.concat([decipher.update(encrypted), decipher.final()]), plaintext);
});

test("graphene lists every mechanism with its C_GetMechanismInfo", (t) => {
  const session = openModule(t);
  const mechanisms = session.slot.getMechanisms();
  const byName = new Map<string, Graphene.Mechanism>();
  for (let i = 0; i < mechanisms.length; i++) {
    const m = mechanisms.items(i);
    byName.set(m.name, m);
  }
  for (const name of ["SHA256", "SHA256_HMAC", "AES_CBC_PAD", "AES_CTR", "RSA_PKCS_KEY_PAIR_GEN", "RSA_PKCS_OAEP", "SHA256_RSA_PKCS_PSS", "EC_KEY_PAIR_GEN", "ECDSA", "ECDH1_DERIVE"]) {
    t.true(byName.has(name), name);
  }
  const ec = byName.get("EC_KEY_PAIR_GEN")!;
  t.deepEqual([ec.minKeySize, ec.maxKeySize], [256, 521]);
  t.truthy(ec.flags & graphene.MechanismFlag.GENERATE_KEY_PAIR);
  t.falsy(ec.flags & graphene.MechanismFlag.HW);
});
