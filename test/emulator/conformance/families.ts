/**
 * Mechanism families beyond AES-GCM and key wrap: digests (§2.x SHA), HMAC (§2.x "General-length
 * HMAC" families), AES ECB/CBC/CBC_PAD/CTR (§2.8), RSA PKCS #1 v1.5 / PSS / OAEP (§2.1) and
 * ECDSA (§2.3), each checked against node:crypto.
 *
 * Each scenario runs the mechanisms the token lists in C_GetMechanismList and logs a note for
 * those it lacks (see `offers` in scenario.ts): the emulator's families arrive one at a time, and
 * SoftHSMv2 builds differ (2.6.1 on Debian has no CKM_ECDSA_SHA256).
 */
import { constants, createCipheriv, createHash, createHmac, createPublicKey, publicEncrypt, randomBytes, verify as nodeVerify, type KeyObject } from "node:crypto";
import type { ExecutionContext } from "ava";
import {
  attribute, boolAttribute, byTarget, expectRv, importSecret, mechName, offers, P, ulongAttribute, userSession, type Scenario, type TokenUnderTest,
} from "./scenario.js";
import type { Handle } from "../../../emulator/pkcs11.js";

/** The mechanisms of `wanted` the token offers; logs the others. Passes the test if none is offered. */
function available(t: ExecutionContext, token: TokenUnderTest, wanted: readonly number[]): number[] {
  const present = wanted.filter((m) => token.mechanisms.has(m));
  const missing = wanted.filter((m) => !token.mechanisms.has(m));
  if (missing.length > 0) t.log(`note: ${token.target} does not offer ${missing.map(mechName).join(", ")}; not run there`);
  if (present.length === 0) t.pass();
  return present;
}

const DIGESTS: ReadonlyArray<[number, string, number]> = [
  [P.CKM_MD5, "md5", 16],
  [P.CKM_SHA_1, "sha1", 20],
  [P.CKM_SHA224, "sha224", 28],
  [P.CKM_SHA256, "sha256", 32],
  [P.CKM_SHA384, "sha384", 48],
  [P.CKM_SHA512, "sha512", 64],
];

const HMACS: ReadonlyArray<[number, string, number]> = [
  [P.CKM_SHA_1_HMAC, "sha1", 20],
  [P.CKM_SHA224_HMAC, "sha224", 28],
  [P.CKM_SHA256_HMAC, "sha256", 32],
  [P.CKM_SHA384_HMAC, "sha384", 48],
  [P.CKM_SHA512_HMAC, "sha512", 64],
];

function nodeCipher(name: string, key: Buffer, iv: Buffer | null, data: Buffer, padding: boolean): Buffer {
  const cipher = createCipheriv(name, key, iv);
  cipher.setAutoPadding(padding);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** CK_AES_CTR_PARAMS as raw bytes (pkcs11js has no params type for it): ulCounterBits (CK_ULONG, 8 bytes LE), cb[16]. */
function ctrParams(counterBits: number, block: Buffer): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(BigInt(counterBits));
  block.copy(b, 8);
  return b;
}

function generateSecret(token: TokenUnderTest, session: Handle, value: Buffer): Handle {
  return importSecret(token, session, value, [{ type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }], P.CKK_GENERIC_SECRET);
}

/** DER of the P-256 OID 1.2.840.10045.3.1.7 (CKA_EC_PARAMS namedCurve). */
const P256_PARAMS = Buffer.from("06082a8648ce3d030107", "hex");

function rsaPublicKey(token: TokenUnderTest, session: Handle, key: Handle): KeyObject {
  const n = attribute(token, session, key, P.CKA_MODULUS);
  const e = attribute(token, session, key, P.CKA_PUBLIC_EXPONENT);
  return createPublicKey({ key: { kty: "RSA", n: n.toString("base64url"), e: e.toString("base64url") }, format: "jwk" });
}

function generateRsa(token: TokenUnderTest, session: Handle, bits = 2048): { publicKey: Handle; privateKey: Handle } {
  return token.p11.C_GenerateKeyPair(session, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
    { type: P.CKA_MODULUS_BITS, value: bits },
    { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
    { type: P.CKA_VERIFY, value: true },
    { type: P.CKA_ENCRYPT, value: true },
    { type: P.CKA_WRAP, value: true },
  ], [
    { type: P.CKA_SIGN, value: true },
    { type: P.CKA_DECRYPT, value: true },
    { type: P.CKA_UNWRAP, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
  ]);
}

export const FAMILY_SCENARIOS: Scenario[] = [
  {
    area: "digest",
    title: "digests equal node:crypto, single- and multi-part; a short Buffer is CKR_BUFFER_TOO_SMALL and the retry works",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const mechanisms = available(t, token, DIGESTS.map(([m]) => m));
      const message = Buffer.from("abc");
      const long = randomBytes(1000);
      for (const [mechanism, name, length] of DIGESTS.filter(([m]) => mechanisms.includes(m))) {
        p11.C_DigestInit(s, { mechanism });
        t.deepEqual(p11.C_Digest(s, message, Buffer.alloc(64)), createHash(name).update(message).digest(), mechName(mechanism));
        p11.C_DigestInit(s, { mechanism });
        p11.C_DigestUpdate(s, long.subarray(0, 10));
        p11.C_DigestUpdate(s, long.subarray(10));
        t.deepEqual(p11.C_DigestFinal(s, Buffer.alloc(64)), createHash(name).update(long).digest(), `${mechName(mechanism)} multi-part`);
        p11.C_DigestInit(s, { mechanism });
        expectRv(t, () => p11.C_Digest(s, message, Buffer.alloc(length - 1)), P.CKR_BUFFER_TOO_SMALL, `${mechName(mechanism)} short output`);
        t.is(p11.C_Digest(s, message, Buffer.alloc(length)).length, length);
      }
    },
  },
  {
    area: "digest",
    title: "C_DigestKey digests a secret key's value inside the token",
    run(t, token) {
      if (!offers(t, token, P.CKM_SHA256)) return;
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      p11.C_DigestInit(s, { mechanism: P.CKM_SHA256 });
      p11.C_DigestUpdate(s, Buffer.from("prefix"));
      p11.C_DigestKey(s, key);
      t.deepEqual(p11.C_DigestFinal(s, Buffer.alloc(32)), createHash("sha256").update("prefix").update(value).digest());
    },
  },
  {
    area: "hmac",
    title: "HMACs equal node:crypto (RFC 4231 case 6 for SHA-256); verify accepts them and refuses a changed or short MAC",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const mechanisms = available(t, token, HMACS.map(([m]) => m));
      for (const [mechanism, name, length] of HMACS.filter(([m]) => mechanisms.includes(m))) {
        // Keys at least as long as the hash output: SoftHSMv2's minimum (see the short-key scenario).
        const rfc = name === "sha256";
        const keyValue = rfc ? Buffer.alloc(131, 0xaa) : randomBytes(64);
        const data = rfc ? Buffer.from("Test Using Larger Than Block-Size Key - Hash Key First") : randomBytes(77);
        const key = generateSecret(token, s, keyValue);
        const expected = createHmac(name, keyValue).update(data).digest();
        if (rfc) t.is(expected.toString("hex"), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "RFC 4231 §4.7");
        p11.C_SignInit(s, { mechanism }, key);
        t.deepEqual(p11.C_Sign(s, data, Buffer.alloc(64)), expected, mechName(mechanism));
        p11.C_SignInit(s, { mechanism }, key);
        p11.C_SignUpdate(s, data.subarray(0, 5));
        p11.C_SignUpdate(s, data.subarray(5));
        t.deepEqual(p11.C_SignFinal(s, Buffer.alloc(64)), expected, `${mechName(mechanism)} multi-part`);
        p11.C_VerifyInit(s, { mechanism }, key);
        t.true(p11.C_Verify(s, data, expected));
        const changed = Buffer.from(expected);
        changed[0]! ^= 1;
        p11.C_VerifyInit(s, { mechanism }, key);
        expectRv(t, () => p11.C_Verify(s, data, changed), P.CKR_SIGNATURE_INVALID, `${mechName(mechanism)} changed MAC`);
        p11.C_VerifyInit(s, { mechanism }, key);
        p11.C_VerifyUpdate(s, data);
        expectRv(t, () => p11.C_VerifyFinal(s, changed), P.CKR_SIGNATURE_INVALID, `${mechName(mechanism)} changed MAC, multi-part`);
        p11.C_VerifyInit(s, { mechanism }, key);
        expectRv(t, () => p11.C_Verify(s, data, expected.subarray(0, length - 1)), P.CKR_SIGNATURE_LEN_RANGE, `${mechName(mechanism)} short MAC`);
      }
    },
  },
  {
    area: "hmac",
    title: "an HMAC key shorter than the hash output (RFC 4231 case 2, \"Jefe\"): accepted by the emulator, CKR_KEY_SIZE_RANGE on SoftHSMv2",
    run(t, token) {
      if (!offers(t, token, P.CKM_SHA256_HMAC)) return;
      const { p11 } = token;
      const s = userSession(token);
      const key = generateSecret(token, s, Buffer.from("Jefe"));
      const data = Buffer.from("what do ya want for nothing?");
      const accepts = byTarget(t, token, { emulator: true, softhsm: false },
        "RFC 2104 §3 allows keys shorter than the hash output (and RFC 4231 tests one); PKCS#11 leaves the key size range to the token's CK_MECHANISM_INFO. " +
        "SoftHSMv2 sets the minimum at the output length and answers CKR_KEY_SIZE_RANGE; the emulator accepts any length its key slots hold.");
      if (!accepts) return expectRv(t, () => p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key), P.CKR_KEY_SIZE_RANGE);
      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      t.is(p11.C_Sign(s, data, Buffer.alloc(32)).toString("hex"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "RFC 4231 §4.3");
    },
  },
  {
    area: "hmac",
    title: "HMAC signing checks the key: CKA_SIGN false is CKR_KEY_FUNCTION_NOT_PERMITTED; a short output Buffer is CKR_BUFFER_TOO_SMALL",
    run(t, token) {
      if (!offers(t, token, P.CKM_SHA256_HMAC)) return;
      const { p11 } = token;
      const s = userSession(token);
      const noSign = importSecret(token, s, randomBytes(32), [{ type: P.CKA_SIGN, value: false }], P.CKK_GENERIC_SECRET);
      expectRv(t, () => p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, noSign), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
      const key = generateSecret(token, s, randomBytes(32));
      p11.C_SignInit(s, { mechanism: P.CKM_SHA256_HMAC }, key);
      expectRv(t, () => p11.C_Sign(s, Buffer.from("data"), Buffer.alloc(31)), P.CKR_BUFFER_TOO_SMALL);
      t.is(p11.C_Sign(s, Buffer.from("data"), Buffer.alloc(32)).length, 32);
    },
  },
  {
    area: "aes-modes",
    title: "AES-ECB and AES-CBC (no padding) equal node:crypto, single- and multi-part; a partial block is CKR_DATA_LEN_RANGE",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const mechanisms = available(t, token, [P.CKM_AES_ECB, P.CKM_AES_CBC]);
      const value = randomBytes(16);
      const key = importSecret(token, s, value);
      const iv = randomBytes(16);
      const plaintext = randomBytes(64);
      for (const mechanism of mechanisms) {
        const m = mechanism === P.CKM_AES_CBC ? { mechanism, parameter: iv } : { mechanism };
        const expected = nodeCipher(mechanism === P.CKM_AES_CBC ? "aes-128-cbc" : "aes-128-ecb", value, mechanism === P.CKM_AES_CBC ? iv : null, plaintext, false);
        p11.C_EncryptInit(s, m, key);
        t.deepEqual(p11.C_Encrypt(s, plaintext, Buffer.alloc(80)), expected, mechName(mechanism));
        p11.C_EncryptInit(s, m, key);
        const parts = [p11.C_EncryptUpdate(s, plaintext.subarray(0, 20), Buffer.alloc(80)), p11.C_EncryptUpdate(s, plaintext.subarray(20), Buffer.alloc(80))];
        parts.push(p11.C_EncryptFinal(s, Buffer.alloc(80)));
        t.deepEqual(Buffer.concat(parts), expected, `${mechName(mechanism)} multi-part`);
        p11.C_DecryptInit(s, m, key);
        t.deepEqual(p11.C_Decrypt(s, expected, Buffer.alloc(80)), plaintext);
        p11.C_EncryptInit(s, m, key);
        expectRv(t, () => p11.C_Encrypt(s, plaintext.subarray(0, 20), Buffer.alloc(80)), P.CKR_DATA_LEN_RANGE, `${mechName(mechanism)} 20 bytes`);
        p11.C_DecryptInit(s, m, key);
        expectRv(t, () => p11.C_Decrypt(s, expected.subarray(0, 20), Buffer.alloc(80)), P.CKR_ENCRYPTED_DATA_LEN_RANGE, `${mechName(mechanism)} decrypt 20 bytes`);
      }
    },
  },
  {
    area: "aes-modes",
    title: "AES-CBC-PAD equals node:crypto's PKCS#7 padding at lengths 1..33; a bad IV length is CKR_MECHANISM_PARAM_INVALID (SoftHSMv2: CKR_MECHANISM_INVALID)",
    run(t, token) {
      if (!offers(t, token, P.CKM_AES_CBC_PAD)) return;
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(32);
      const key = importSecret(token, s, value);
      const iv = randomBytes(16);
      for (let length = 1; length <= 33; length += 8) {
        const plaintext = randomBytes(length);
        const expected = nodeCipher("aes-256-cbc", value, iv, plaintext, true);
        p11.C_EncryptInit(s, { mechanism: P.CKM_AES_CBC_PAD, parameter: iv }, key);
        t.deepEqual(p11.C_Encrypt(s, plaintext, Buffer.alloc(64)), expected, `${length} bytes`);
        p11.C_DecryptInit(s, { mechanism: P.CKM_AES_CBC_PAD, parameter: iv }, key);
        t.deepEqual(p11.C_Decrypt(s, expected, Buffer.alloc(64)), plaintext);
      }
      expectRv(t, () => p11.C_EncryptInit(s, { mechanism: P.CKM_AES_CBC_PAD, parameter: Buffer.alloc(8) }, key), byTarget(t, token,
        { emulator: P.CKR_MECHANISM_PARAM_INVALID, softhsm: P.CKR_MECHANISM_INVALID },
        "a CBC IV that is not 16 bytes is a bad mechanism parameter: CKR_MECHANISM_PARAM_INVALID (§5.8.1), as the emulator answers; SoftHSMv2 2.6.1 answers CKR_MECHANISM_INVALID."), "8-byte IV");
    },
  },
  {
    area: "aes-modes",
    title: "AES-CTR (128-bit counter) equals node:crypto",
    run(t, token) {
      if (!offers(t, token, P.CKM_AES_CTR)) return;
      const { p11 } = token;
      const s = userSession(token);
      const value = randomBytes(16);
      const key = importSecret(token, s, value);
      const counter = randomBytes(16);
      counter.writeUInt32BE(0xfffffffe, 12); // crosses a 32-bit boundary within the message
      const plaintext = randomBytes(100);
      const expected = nodeCipher("aes-128-ctr", value, counter, plaintext, false);
      p11.C_EncryptInit(s, { mechanism: P.CKM_AES_CTR, parameter: ctrParams(128, counter) }, key);
      t.deepEqual(p11.C_Encrypt(s, plaintext, Buffer.alloc(128)), expected);
      p11.C_DecryptInit(s, { mechanism: P.CKM_AES_CTR, parameter: ctrParams(128, counter) }, key);
      t.deepEqual(p11.C_Decrypt(s, expected, Buffer.alloc(128)), plaintext);
    },
  },
  {
    area: "rsa",
    title: "RSA key pair generation: attributes, and the private exponent stays inside (CKR_ATTRIBUTE_SENSITIVE)",
    run(t, token) {
      if (!offers(t, token, P.CKM_RSA_PKCS_KEY_PAIR_GEN)) return;
      const { p11 } = token;
      const s = userSession(token);
      const { publicKey, privateKey } = generateRsa(token, s);
      t.is(attribute(token, s, publicKey, P.CKA_MODULUS).length, 256);
      t.deepEqual(attribute(token, s, publicKey, P.CKA_PUBLIC_EXPONENT).toString("hex").replace(/^0+/u, ""), "10001");
      t.is(ulongAttribute(token, s, publicKey, P.CKA_MODULUS_BITS), 2048);
      t.deepEqual(attribute(token, s, privateKey, P.CKA_MODULUS), attribute(token, s, publicKey, P.CKA_MODULUS));
      for (const key of [publicKey, privateKey]) {
        t.true(boolAttribute(token, s, key, P.CKA_LOCAL));
        t.is(ulongAttribute(token, s, key, P.CKA_KEY_GEN_MECHANISM), P.CKM_RSA_PKCS_KEY_PAIR_GEN);
        t.is(ulongAttribute(token, s, key, P.CKA_KEY_TYPE), P.CKK_RSA);
      }
      t.true(boolAttribute(token, s, privateKey, P.CKA_ALWAYS_SENSITIVE));
      t.true(boolAttribute(token, s, privateKey, P.CKA_NEVER_EXTRACTABLE));
      for (const type of [P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2, P.CKA_COEFFICIENT]) {
        expectRv(t, () => p11.C_GetAttributeValue(s, privateKey, [{ type }]), P.CKR_ATTRIBUTE_SENSITIVE, `attribute 0x${type.toString(16)}`);
      }
    },
  },
  {
    area: "rsa",
    title: "RSA PKCS #1 v1.5 and PSS signatures (SHA-256) verify with node:crypto and on the token",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const mechanisms = available(t, token, [P.CKM_SHA256_RSA_PKCS, P.CKM_SHA256_RSA_PKCS_PSS]);
      if (mechanisms.length === 0 || !offers(t, token, P.CKM_RSA_PKCS_KEY_PAIR_GEN)) return;
      const { publicKey, privateKey } = generateRsa(token, s);
      const nodeKey = rsaPublicKey(token, s, publicKey);
      const data = randomBytes(300);
      if (mechanisms.includes(P.CKM_SHA256_RSA_PKCS)) {
        p11.C_SignInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, privateKey);
        const signature = p11.C_Sign(s, data, Buffer.alloc(256));
        t.true(nodeVerify("sha256", data, nodeKey, signature), "PKCS #1 v1.5 by node:crypto");
        p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, publicKey);
        t.true(p11.C_Verify(s, data, signature));
        const changed = Buffer.from(signature);
        changed[10]! ^= 1;
        p11.C_VerifyInit(s, { mechanism: P.CKM_SHA256_RSA_PKCS }, publicKey);
        expectRv(t, () => p11.C_Verify(s, data, changed), P.CKR_SIGNATURE_INVALID);
      }
      if (mechanisms.includes(P.CKM_SHA256_RSA_PKCS_PSS)) {
        const pss = { mechanism: P.CKM_SHA256_RSA_PKCS_PSS, parameter: { type: P.CK_PARAMS_RSA_PSS, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, saltLen: 32 } };
        p11.C_SignInit(s, pss, privateKey);
        const signature = p11.C_Sign(s, data, Buffer.alloc(256));
        t.true(nodeVerify("sha256", data, { key: nodeKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature), "PSS by node:crypto");
        p11.C_VerifyInit(s, pss, publicKey);
        t.true(p11.C_Verify(s, data, signature));
      }
    },
  },
  {
    area: "rsa",
    title: "RSA-OAEP (SHA-1): node:crypto encrypts, the token decrypts; the token wraps an AES key and unwraps it",
    run(t, token) {
      if (!offers(t, token, P.CKM_RSA_PKCS_KEY_PAIR_GEN, P.CKM_RSA_PKCS_OAEP)) return;
      const { p11 } = token;
      const s = userSession(token);
      const { publicKey, privateKey } = generateRsa(token, s);
      const oaep = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, source: 1 } };
      const message = randomBytes(32);
      const encrypted = publicEncrypt({ key: rsaPublicKey(token, s, publicKey), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, message);
      p11.C_DecryptInit(s, oaep, privateKey);
      t.deepEqual(p11.C_Decrypt(s, encrypted, Buffer.alloc(256)), message);
      const value = randomBytes(32);
      const aes = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const wrapped = p11.C_WrapKey(s, oaep, publicKey, aes, Buffer.alloc(256));
      t.is(wrapped.length, 256);
      const unwrapped = p11.C_UnwrapKey(s, oaep, privateKey, wrapped, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_EXTRACTABLE, value: true },
      ]);
      t.deepEqual(attribute(token, s, unwrapped, P.CKA_VALUE), value);
    },
  },
  {
    area: "ec",
    title: "EC P-256 key pair: ECDSA over a SHA-256 digest verifies with node:crypto and on the token; a changed signature is CKR_SIGNATURE_INVALID",
    run(t, token) {
      if (!offers(t, token, P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDSA)) return;
      const { p11 } = token;
      const s = userSession(token);
      const { publicKey, privateKey } = p11.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
        [{ type: P.CKA_EC_PARAMS, value: P256_PARAMS }, { type: P.CKA_VERIFY, value: true }],
        [{ type: P.CKA_SIGN, value: true }, { type: P.CKA_SENSITIVE, value: true }]);
      const point = attribute(token, s, publicKey, P.CKA_EC_POINT);
      t.is(point.length, 67, "DER OCTET STRING of an uncompressed P-256 point");
      t.deepEqual(point.subarray(0, 3), Buffer.from("044104", "hex"));
      const nodeKey = createPublicKey({ key: { kty: "EC", crv: "P-256", x: point.subarray(3, 35).toString("base64url"), y: point.subarray(35).toString("base64url") }, format: "jwk" });
      expectRv(t, () => p11.C_GetAttributeValue(s, privateKey, [{ type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE);
      const data = randomBytes(100);
      const digest = createHash("sha256").update(data).digest();
      p11.C_SignInit(s, { mechanism: P.CKM_ECDSA }, privateKey);
      const signature = p11.C_Sign(s, digest, Buffer.alloc(64));
      t.is(signature.length, 64);
      t.true(nodeVerify("sha256", data, { key: nodeKey, dsaEncoding: "ieee-p1363" }, signature));
      p11.C_VerifyInit(s, { mechanism: P.CKM_ECDSA }, publicKey);
      t.true(p11.C_Verify(s, digest, signature));
      const changed = Buffer.from(signature);
      changed[5]! ^= 1;
      p11.C_VerifyInit(s, { mechanism: P.CKM_ECDSA }, publicKey);
      expectRv(t, () => p11.C_Verify(s, digest, changed), P.CKR_SIGNATURE_INVALID);

      // Single-part (Current Mechanisms v2.40 §2.3.1 table): no C_SignUpdate / C_VerifyUpdate, and
      // the refused call ends the operation (§5.2) — code fed in parts must fail on both tokens.
      const refused = byTarget(t, token, { emulator: P.CKR_FUNCTION_NOT_SUPPORTED, softhsm: P.CKR_OPERATION_NOT_INITIALIZED },
        "a single-part mechanism's C_SignUpdate: the emulator says CKR_FUNCTION_NOT_SUPPORTED (as for its single-part ciphers), SoftHSMv2 CKR_OPERATION_NOT_INITIALIZED; both end the operation");
      p11.C_SignInit(s, { mechanism: P.CKM_ECDSA }, privateKey);
      expectRv(t, () => p11.C_SignUpdate(s, digest), refused, "C_SignUpdate");
      expectRv(t, () => p11.C_Sign(s, digest, Buffer.alloc(64)), P.CKR_OPERATION_NOT_INITIALIZED, "the sign operation ended");
      p11.C_VerifyInit(s, { mechanism: P.CKM_ECDSA }, publicKey);
      expectRv(t, () => p11.C_VerifyUpdate(s, digest), refused, "C_VerifyUpdate");
      expectRv(t, () => p11.C_Verify(s, digest, signature), P.CKR_OPERATION_NOT_INITIALIZED, "the verify operation ended");
    },
  },
  {
    area: "ec",
    title: "CKM_ECDSA_SHA256 hashes inside the token and verifies with node:crypto",
    run(t, token) {
      if (!offers(t, token, P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDSA_SHA256)) return;
      const { p11 } = token;
      const s = userSession(token);
      const { publicKey, privateKey } = p11.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
        [{ type: P.CKA_EC_PARAMS, value: P256_PARAMS }, { type: P.CKA_VERIFY, value: true }], [{ type: P.CKA_SIGN, value: true }]);
      const point = attribute(token, s, publicKey, P.CKA_EC_POINT);
      const nodeKey = createPublicKey({ key: { kty: "EC", crv: "P-256", x: point.subarray(3, 35).toString("base64url"), y: point.subarray(35).toString("base64url") }, format: "jwk" });
      const data = randomBytes(100);
      p11.C_SignInit(s, { mechanism: P.CKM_ECDSA_SHA256 }, privateKey);
      const signature = p11.C_Sign(s, data, Buffer.alloc(64));
      t.true(nodeVerify("sha256", data, { key: nodeKey, dsaEncoding: "ieee-p1363" }, signature));
      p11.C_VerifyInit(s, { mechanism: P.CKM_ECDSA_SHA256 }, publicKey);
      t.true(p11.C_Verify(s, data, signature));
    },
  },
];
