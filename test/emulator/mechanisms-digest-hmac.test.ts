// Digests (CKM_SHA_1 … CKM_SHA512) and HMAC (CKM_SHA*_HMAC, *_HMAC_GENERAL) through the PKCS#11
// surface, against node:crypto.
import test from "ava";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { P, ckr, encrypt, openToken, secretKey, sign, signParts, split, throwsCkr, verify, verifyParts } from "./mechanisms-helpers.js";

const DIGESTS: Array<[string, number, number]> = [
  ["sha1", P.CKM_SHA_1, 20],
  ["sha224", P.CKM_SHA224, 28],
  ["sha256", P.CKM_SHA256, 32],
  ["sha384", P.CKM_SHA384, 48],
  ["sha512", P.CKM_SHA512, 64],
];

test("digests agree with node:crypto, single- and multi-part", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  for (const [name, mechanism, length] of DIGESTS) {
    for (const size of [0, 1, 55, 56, 64, 127, 128, 1000, 70_000]) {
      const data = randomBytes(size);
      const expected = createHash(name).update(data).digest();
      p11.C_DigestInit(session, { mechanism });
      t.deepEqual(Buffer.from(p11.C_Digest(session, data, Buffer.alloc(64))), expected, `${name} ${size}`);
      p11.C_DigestInit(session, { mechanism });
      for (const part of split(data, [1, 63, 200])) p11.C_DigestUpdate(session, part);
      const out = p11.C_DigestFinal(session, Buffer.alloc(length));
      t.deepEqual(Buffer.from(out), expected, `${name} ${size} multi-part`);
    }
  }
});

test("digest: a short buffer is CKR_BUFFER_TOO_SMALL and keeps the operation; a parameter is refused", (t) => {
  const { p11, session } = openToken(t);
  p11.C_DigestInit(session, { mechanism: P.CKM_SHA256 });
  throwsCkr(t, () => p11.C_Digest(session, Buffer.from("abc"), Buffer.alloc(31)), P.CKR_BUFFER_TOO_SMALL);
  t.deepEqual(Buffer.from(p11.C_Digest(session, Buffer.from("abc"), Buffer.alloc(32))), createHash("sha256").update("abc").digest());
  throwsCkr(t, () => p11.C_DigestInit(session, { mechanism: P.CKM_SHA256, parameter: Buffer.alloc(4) }), P.CKR_MECHANISM_PARAM_INVALID);
  throwsCkr(t, () => p11.C_DigestFinal(session, Buffer.alloc(32)), P.CKR_OPERATION_NOT_INITIALIZED);
});

test("C_DigestKey digests a secret key's value", (t) => {
  const token = openToken(t);
  const value = randomBytes(32);
  const key = secretKey(token, value);
  token.p11.C_DigestInit(token.session, { mechanism: P.CKM_SHA256 });
  token.p11.C_DigestUpdate(token.session, Buffer.from("prefix"));
  token.p11.C_DigestKey(token.session, key);
  const digest = Buffer.from(token.p11.C_DigestFinal(token.session, Buffer.alloc(32)));
  t.deepEqual(digest, createHash("sha256").update("prefix").update(value).digest());
});

const HMACS: Array<[string, number, number, number, number]> = [
  ["sha1", P.CKM_SHA_1_HMAC, P.CKM_SHA_1_HMAC_GENERAL, P.CKK_SHA_1_HMAC, 20],
  ["sha224", P.CKM_SHA224_HMAC, P.CKM_SHA224_HMAC_GENERAL, P.CKK_SHA224_HMAC, 28],
  ["sha256", P.CKM_SHA256_HMAC, P.CKM_SHA256_HMAC_GENERAL, P.CKK_SHA256_HMAC, 32],
  ["sha384", P.CKM_SHA384_HMAC, P.CKM_SHA384_HMAC_GENERAL, P.CKK_SHA384_HMAC, 48],
  ["sha512", P.CKM_SHA512_HMAC, P.CKM_SHA512_HMAC_GENERAL, P.CKK_SHA512_HMAC, 64],
];

test("HMAC agrees with node:crypto for every hash, key length and part split", (t) => {
  const token = openToken(t);
  for (const [name, mechanism, general, keyType, length] of HMACS) {
    for (const keyLength of [1, 16, length, 64, 129, 300]) {
      const value = randomBytes(keyLength);
      const key = secretKey(token, value, keyLength % 2 === 0 ? keyType : P.CKK_GENERIC_SECRET);
      for (const size of [0, 1, 100, 5000]) {
        const data = randomBytes(size);
        const expected = createHmac(name, value).update(data).digest();
        t.deepEqual(sign(token, { mechanism }, key, data), expected, `${name} key ${keyLength} data ${size}`);
        t.deepEqual(signParts(token, { mechanism }, key, data, [7, 64, 1]), expected);
        t.is(verify(token, { mechanism }, key, data, expected), true);
        t.is(verifyParts(token, { mechanism }, key, data, expected, [3, 500]), true);
        const truncated = expected.subarray(0, 16);
        t.deepEqual(sign(token, { mechanism: general, parameter: 16 }, key, data), truncated);
        t.is(verify(token, { mechanism: general, parameter: 16 }, key, data, truncated), true);
      }
    }
  }
});

test("HMAC verify: a wrong tag is CKR_SIGNATURE_INVALID, a wrong length CKR_SIGNATURE_LEN_RANGE", (t) => {
  const token = openToken(t);
  const value = randomBytes(32);
  const key = secretKey(token, value);
  const data = Buffer.from("message");
  const tag = createHmac("sha256", value).update(data).digest();
  for (let bit = 0; bit < 256; bit += 37) {
    const bad = Buffer.from(tag);
    bad[bit >> 3]! ^= 1 << (bit & 7);
    t.is(verify(token, { mechanism: P.CKM_SHA256_HMAC }, key, data, bad), P.CKR_SIGNATURE_INVALID);
  }
  t.is(verify(token, { mechanism: P.CKM_SHA256_HMAC }, key, data, tag.subarray(0, 31)), P.CKR_SIGNATURE_LEN_RANGE);
  t.is(verify(token, { mechanism: P.CKM_SHA256_HMAC }, key, data, Buffer.concat([tag, Buffer.alloc(1)])), P.CKR_SIGNATURE_LEN_RANGE);
  t.is(verify(token, { mechanism: P.CKM_SHA256_HMAC_GENERAL, parameter: 16 }, key, data, tag), P.CKR_SIGNATURE_LEN_RANGE);
  t.is(verify(token, { mechanism: P.CKM_SHA256_HMAC_GENERAL, parameter: 16 }, key, data, tag.subarray(0, 15)), P.CKR_SIGNATURE_LEN_RANGE);
  // The verify operation ended with the failure.
  throwsCkr(t, () => token.p11.C_VerifyFinal(token.session, tag), P.CKR_OPERATION_NOT_INITIALIZED);
});

test("HMAC: key types, usage flags, parameters and buffers", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const aes = secretKey(token, randomBytes(32), P.CKK_AES);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, aes), P.CKR_KEY_TYPE_INCONSISTENT);
  const sha384Key = secretKey(token, randomBytes(48), P.CKK_SHA384_HMAC);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, sha384Key), P.CKR_KEY_TYPE_INCONSISTENT);
  t.notThrows(() => sign(token, { mechanism: P.CKM_SHA384_HMAC }, sha384Key, Buffer.from("x")));
  const verifyOnly = secretKey(token, randomBytes(32), P.CKK_GENERIC_SECRET, [{ type: P.CKA_SIGN, value: false }]);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, verifyOnly), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  t.notThrows(() => p11.C_VerifyInit(session, { mechanism: P.CKM_SHA256_HMAC }, verifyOnly));
  throwsCkr(t, () => p11.C_VerifyFinal(session, Buffer.alloc(32)), P.CKR_SIGNATURE_INVALID);
  const key = secretKey(token, randomBytes(32));
  for (const parameter of [3, 33, 0, Buffer.alloc(2)]) {
    throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC_GENERAL, parameter }, key), P.CKR_MECHANISM_PARAM_INVALID, `param ${String(parameter)}`);
  }
  const ulong = Buffer.alloc(8);
  ulong.writeBigUInt64LE(20n);
  t.is(sign(token, { mechanism: P.CKM_SHA256_HMAC_GENERAL, parameter: ulong }, key, Buffer.from("x")).length, 20);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC, parameter: 16 }, key), P.CKR_MECHANISM_PARAM_INVALID);
  p11.C_SignInit(session, { mechanism: P.CKM_SHA256_HMAC }, key);
  throwsCkr(t, () => p11.C_Sign(session, Buffer.from("x"), Buffer.alloc(31)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_Sign(session, Buffer.from("x"), Buffer.alloc(32)).length, 32);
  // HMAC is not a cipher.
  throwsCkr(t, () => encrypt(token, { mechanism: P.CKM_SHA256_HMAC }, key, Buffer.alloc(1)), P.CKR_MECHANISM_INVALID);
  t.pass();
});

test("HMAC: a second operation of a kind is CKR_OPERATION_ACTIVE; closing the session releases it", (t) => {
  const token = openToken(t);
  const key = secretKey(token, randomBytes(32));
  token.p11.C_SignInit(token.session, { mechanism: P.CKM_SHA256_HMAC }, key);
  token.p11.C_SignUpdate(token.session, Buffer.from("part"));
  t.is(ckr(t, () => token.p11.C_SignInit(token.session, { mechanism: P.CKM_SHA256_HMAC }, key)), P.CKR_OPERATION_ACTIVE);
  token.p11.C_CloseSession(token.session);
  t.pass();
});
