// RSA through the PKCS#11 surface: key-pair generation, OAEP (encrypt/decrypt, wrap/unwrap),
// PKCS #1 v1.5 and PSS signatures, C_CreateObject of RSA keys, private keys under AES-KWP —
// each checked against node:crypto (OpenSSL) in both directions where there are two.
import test from "ava";
import {
  constants, createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt,
  randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject,
} from "node:crypto";
import { generateKeyPair } from "../../src/crypto/signatures.js";
import { CKZ_DATA_SPECIFIED } from "../../emulator/extra-constants.js";
import type { Handle, Mechanism, Template } from "../../emulator/pkcs11.js";
import {
  P, attr, boolAttr, decrypt, encrypt, openToken, rsaPair, secretKey, sign, signParts, throwsCkr, ulongAttr, verify, verifyParts, type Token,
} from "./mechanisms-helpers.js";

const HASHES: Array<[string, number, number, number]> = [
  // node name, CKM_SHA*, CKG_MGF1_SHA*, hLen
  ["sha1", P.CKM_SHA_1, P.CKG_MGF1_SHA1, 20],
  ["sha256", P.CKM_SHA256, P.CKG_MGF1_SHA256, 32],
  ["sha384", P.CKM_SHA384, P.CKG_MGF1_SHA384, 48],
  ["sha512", P.CKM_SHA512, P.CKG_MGF1_SHA512, 64],
];

function oaep(hashAlg: number, mgf: number, sourceData?: Buffer | null): Mechanism {
  return { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg, mgf, source: CKZ_DATA_SPECIFIED, sourceData } as never };
}

function pss(mechanism: number, hashAlg: number, mgf: number, saltLen: number): Mechanism {
  return { mechanism, parameter: { type: P.CK_PARAMS_RSA_PSS, hashAlg, mgf, saltLen } as never };
}

const b64u = (b: Buffer): string => b.toString("base64url");

/** node:crypto KeyObjects of a token key pair, from its attributes (the private key must be revealable). */
function nodeKeys(token: Token, pair: { publicKey: Handle; privateKey: Handle }): { publicKey: KeyObject; privateKey: KeyObject } {
  const get = (h: Handle, type: number): string => b64u(attr(token, h, type));
  const publicKey = createPublicKey({ key: { kty: "RSA", n: get(pair.publicKey, P.CKA_MODULUS), e: get(pair.publicKey, P.CKA_PUBLIC_EXPONENT) }, format: "jwk" });
  const privateKey = createPrivateKey({
    key: {
      kty: "RSA", n: get(pair.privateKey, P.CKA_MODULUS), e: get(pair.privateKey, P.CKA_PUBLIC_EXPONENT), d: get(pair.privateKey, P.CKA_PRIVATE_EXPONENT),
      p: get(pair.privateKey, P.CKA_PRIME_1), q: get(pair.privateKey, P.CKA_PRIME_2), dp: get(pair.privateKey, P.CKA_EXPONENT_1),
      dq: get(pair.privateKey, P.CKA_EXPONENT_2), qi: get(pair.privateKey, P.CKA_COEFFICIENT),
    },
    format: "jwk",
  });
  return { publicKey, privateKey };
}

/** C_CreateObject of node:crypto RSA keys; `parts` picks the private components given. */
function importRsa(token: Token, privateKey: KeyObject, parts: string[] = ["n", "e", "d", "p", "q", "dp", "dq", "qi"], extra: Template = []): { publicKey: Handle; privateKey: Handle } {
  const jwk = privateKey.export({ format: "jwk" });
  const field = (name: string): Buffer => Buffer.from((jwk as Record<string, string>)[name]!, "base64url");
  const types: Record<string, number> = {
    n: P.CKA_MODULUS, e: P.CKA_PUBLIC_EXPONENT, d: P.CKA_PRIVATE_EXPONENT, p: P.CKA_PRIME_1, q: P.CKA_PRIME_2,
    dp: P.CKA_EXPONENT_1, dq: P.CKA_EXPONENT_2, qi: P.CKA_COEFFICIENT,
  };
  const publicHandle = token.p11.C_CreateObject(token.session, [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_MODULUS, value: field("n") },
    { type: P.CKA_PUBLIC_EXPONENT, value: field("e") }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_ENCRYPT, value: true },
  ]);
  const privateHandle = token.p11.C_CreateObject(token.session, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_SIGN, value: true },
    { type: P.CKA_DECRYPT, value: true }, ...parts.map((name) => ({ type: types[name]!, value: field(name) })), ...extra,
  ]);
  return { publicKey: publicHandle, privateKey: privateHandle };
}

test("key-pair generation: attributes, computed flags and sizes", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = rsaPair(token, 2048, [{ type: P.CKA_LABEL, value: "rsa" }], [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
  t.is(ulongAttr(token, pair.publicKey, P.CKA_MODULUS_BITS), 2048);
  t.deepEqual(attr(token, pair.publicKey, P.CKA_PUBLIC_EXPONENT), Buffer.from([1, 0, 1]));
  const modulus = attr(token, pair.publicKey, P.CKA_MODULUS);
  t.is(modulus.length, 256);
  t.true(modulus[0]! >= 0x80);
  t.deepEqual(attr(token, pair.privateKey, P.CKA_MODULUS), modulus);
  t.deepEqual(attr(token, pair.privateKey, P.CKA_PUBLIC_EXPONENT), Buffer.from([1, 0, 1]));
  for (const handle of [pair.publicKey, pair.privateKey]) {
    t.true(boolAttr(token, handle, P.CKA_LOCAL));
    t.is(ulongAttr(token, handle, P.CKA_KEY_GEN_MECHANISM), P.CKM_RSA_PKCS_KEY_PAIR_GEN);
    t.is(ulongAttr(token, handle, P.CKA_KEY_TYPE), P.CKK_RSA);
  }
  t.true(boolAttr(token, pair.privateKey, P.CKA_ALWAYS_SENSITIVE));
  t.true(boolAttr(token, pair.privateKey, P.CKA_NEVER_EXTRACTABLE));
  throwsCkr(t, () => attr(token, pair.privateKey, P.CKA_PRIVATE_EXPONENT), P.CKR_ATTRIBUTE_SENSITIVE);
  throwsCkr(t, () => attr(token, pair.privateKey, P.CKA_PRIME_1), P.CKR_ATTRIBUTE_SENSITIVE);
  const spki = createPublicKey({ key: { kty: "RSA", n: b64u(modulus), e: "AQAB" }, format: "jwk" }).export({ type: "spki", format: "der" });
  t.deepEqual(attr(token, pair.publicKey, 0x129), spki, "CKA_PUBLIC_KEY_INFO");
  t.deepEqual(attr(token, pair.privateKey, 0x129), spki);

  const revealable = rsaPair(token, 2048, [{ type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([3]) }]);
  t.deepEqual(attr(token, revealable.publicKey, P.CKA_PUBLIC_EXPONENT), Buffer.from([3]));
  t.false(boolAttr(token, revealable.privateKey, P.CKA_ALWAYS_SENSITIVE));
  t.false(boolAttr(token, revealable.privateKey, P.CKA_NEVER_EXTRACTABLE));
  const { privateKey } = nodeKeys(token, revealable);
  t.is(privateKey.asymmetricKeyDetails?.publicExponent, 3n);

  const gen = { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN };
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [], []), P.CKR_TEMPLATE_INCOMPLETE);
  for (const bits of [1024, 2047, 2049, 4098, 8192]) {
    throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_MODULUS_BITS, value: bits }], []), P.CKR_KEY_SIZE_RANGE, `${bits} bits`);
  }
  for (const exponent of [[1, 0, 0], [1], [2], [1, 0, 0, 0, 0, 1]]) {
    throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from(exponent) }], []),
      P.CKR_ATTRIBUTE_VALUE_INVALID);
  }
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_MODULUS_BITS, value: 2048 }], [{ type: P.CKA_MODULUS, value: modulus }]), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_MODULUS, value: modulus }], []), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }], []), P.CKR_TEMPLATE_INCONSISTENT);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN, parameter: Buffer.alloc(1) }, [{ type: P.CKA_MODULUS_BITS, value: 2048 }], []),
    P.CKR_MECHANISM_PARAM_INVALID);
});

test("OAEP: the token decrypts what node:crypto encrypts and the other way, for every hash, with and without a label", (t) => {
  const token = openToken(t);
  const pair = rsaPair(token, 2048);
  const { publicKey, privateKey } = nodeKeys(token, pair);
  let count = 0;
  for (const [name, hashAlg, mgf, hLen] of HASHES) {
    for (const label of [undefined, Buffer.alloc(0), Buffer.from("context label")]) {
      for (const size of [0, 1, 32, 256 - 2 * hLen - 2]) {
        const message = randomBytes(size);
        const mechanism = oaep(hashAlg, mgf, label);
        const options = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: name, ...(label === undefined ? {} : { oaepLabel: label }) };
        const fromToken = encrypt(token, mechanism, pair.publicKey, message);
        t.is(fromToken.length, 256);
        t.deepEqual(privateDecrypt({ key: privateKey, ...options }, fromToken), message, `${name} ${size}`);
        const fromNode = publicEncrypt({ key: publicKey, ...options }, message);
        t.deepEqual(decrypt(token, mechanism, pair.privateKey, fromNode), message);
        count++;
      }
    }
  }
  t.log(`${count} OAEP cases, both directions`);
});

test("OAEP: lengths, integrity, parameters, key types and usage", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = rsaPair(token, 2048);
  const mechanism = oaep(P.CKM_SHA256, P.CKG_MGF1_SHA256);
  throwsCkr(t, () => encrypt(token, mechanism, pair.publicKey, Buffer.alloc(256 - 64 - 1)), P.CKR_DATA_LEN_RANGE);
  const ciphertext = encrypt(token, mechanism, pair.publicKey, Buffer.from("secret"));
  throwsCkr(t, () => decrypt(token, mechanism, pair.privateKey, ciphertext.subarray(1)), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
  throwsCkr(t, () => decrypt(token, mechanism, pair.privateKey, Buffer.concat([ciphertext, Buffer.alloc(1)])), P.CKR_ENCRYPTED_DATA_LEN_RANGE);
  const tampered = Buffer.from(ciphertext);
  tampered[100]! ^= 4;
  throwsCkr(t, () => decrypt(token, mechanism, pair.privateKey, tampered), P.CKR_ENCRYPTED_DATA_INVALID);
  throwsCkr(t, () => decrypt(token, oaep(P.CKM_SHA256, P.CKG_MGF1_SHA256, Buffer.from("other label")), pair.privateKey, ciphertext), P.CKR_ENCRYPTED_DATA_INVALID);
  throwsCkr(t, () => decrypt(token, oaep(P.CKM_SHA_1, P.CKG_MGF1_SHA1), pair.privateKey, ciphertext), P.CKR_ENCRYPTED_DATA_INVALID);
  const bad: unknown[] = [
    undefined, Buffer.alloc(40), { type: P.CK_PARAMS_RSA_PSS, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, saltLen: 32 },
    { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA1, source: CKZ_DATA_SPECIFIED },
    { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_MD5, mgf: P.CKG_MGF1_SHA1, source: CKZ_DATA_SPECIFIED },
    { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, source: 2 },
  ];
  for (const parameter of bad) {
    throwsCkr(t, () => p11.C_EncryptInit(session, { mechanism: P.CKM_RSA_PKCS_OAEP, parameter } as Mechanism, pair.publicKey), P.CKR_MECHANISM_PARAM_INVALID, JSON.stringify(parameter));
  }
  // Encryption is a public-key operation and decryption a private-key one (the other key lacks the usage attribute).
  throwsCkr(t, () => p11.C_EncryptInit(session, mechanism, pair.privateKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_DecryptInit(session, mechanism, pair.publicKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_EncryptInit(session, mechanism, secretKey(token, randomBytes(32), P.CKK_AES)), P.CKR_KEY_TYPE_INCONSISTENT);
  const noEncrypt = rsaPair(token, 2048, [{ type: P.CKA_ENCRYPT, value: false }]);
  throwsCkr(t, () => p11.C_EncryptInit(session, mechanism, noEncrypt.publicKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  // Single-part only.
  p11.C_EncryptInit(session, mechanism, pair.publicKey);
  throwsCkr(t, () => p11.C_EncryptUpdate(session, Buffer.alloc(10), Buffer.alloc(512)), P.CKR_FUNCTION_NOT_SUPPORTED);
  throwsCkr(t, () => p11.C_EncryptFinal(session, Buffer.alloc(512)), P.CKR_OPERATION_NOT_INITIALIZED);
  p11.C_EncryptInit(session, mechanism, pair.publicKey);
  throwsCkr(t, () => p11.C_Encrypt(session, Buffer.alloc(10), Buffer.alloc(255)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_Encrypt(session, Buffer.alloc(10), Buffer.alloc(256)).length, 256);
});

test("OAEP key wrap: secret keys out to node:crypto and back in; private keys are not wrappable", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = rsaPair(token, 3072);
  const { publicKey, privateKey } = nodeKeys(token, pair);
  const mechanism = oaep(P.CKM_SHA256, P.CKG_MGF1_SHA256, Buffer.from("wrap"));
  const options = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256", oaepLabel: Buffer.from("wrap") };
  const value = randomBytes(32);
  const aes = secretKey(token, value, P.CKK_AES);
  const wrapped = Buffer.from(p11.C_WrapKey(session, mechanism, pair.publicKey, aes, Buffer.alloc(1024)));
  t.is(wrapped.length, 384);
  t.deepEqual(privateDecrypt({ key: privateKey, ...options }, wrapped), value);
  const incoming = randomBytes(24);
  const unwrapTemplate: Template = [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_EXTRACTABLE, value: true },
    { type: P.CKA_ENCRYPT, value: true },
  ];
  const unwrapped = p11.C_UnwrapKey(session, mechanism, pair.privateKey, publicEncrypt({ key: publicKey, ...options }, incoming), unwrapTemplate);
  t.deepEqual(attr(token, unwrapped, P.CKA_VALUE), incoming);
  t.is(ulongAttr(token, unwrapped, P.CKA_VALUE_LEN), 24);
  t.false(boolAttr(token, unwrapped, P.CKA_LOCAL));
  // A generic secret of any length that fits.
  const hmacValue = randomBytes(200);
  const generic = p11.C_UnwrapKey(session, mechanism, pair.privateKey, publicEncrypt({ key: publicKey, ...options }, hmacValue),
    [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_EXTRACTABLE, value: true }]);
  t.deepEqual(attr(token, generic, P.CKA_VALUE), hmacValue);

  throwsCkr(t, () => p11.C_UnwrapKey(session, mechanism, pair.privateKey, publicEncrypt({ key: publicKey, ...options }, randomBytes(20)), unwrapTemplate), P.CKR_WRAPPED_KEY_INVALID);
  throwsCkr(t, () => p11.C_UnwrapKey(session, mechanism, pair.privateKey, wrapped.subarray(1), unwrapTemplate), P.CKR_WRAPPED_KEY_LEN_RANGE);
  const tampered = Buffer.from(wrapped);
  tampered[7]! ^= 1;
  throwsCkr(t, () => p11.C_UnwrapKey(session, mechanism, pair.privateKey, tampered, unwrapTemplate), P.CKR_WRAPPED_KEY_INVALID);
  throwsCkr(t, () => p11.C_UnwrapKey(session, mechanism, pair.privateKey, wrapped, [{ type: P.CKA_KEY_TYPE, value: P.CKK_AES }]), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => p11.C_UnwrapKey(session, mechanism, pair.privateKey, wrapped, [...unwrapTemplate, { type: P.CKA_VALUE_LEN, value: 16 }]), P.CKR_WRAPPED_KEY_INVALID);
  throwsCkr(t, () => p11.C_WrapKey(session, mechanism, pair.publicKey, pair.privateKey, Buffer.alloc(1024)), P.CKR_KEY_NOT_WRAPPABLE);
  const tooLong = secretKey(token, randomBytes(384 - 64 - 1));
  throwsCkr(t, () => p11.C_WrapKey(session, mechanism, pair.publicKey, tooLong, Buffer.alloc(1024)), P.CKR_KEY_SIZE_RANGE);
  const unextractable = secretKey(token, randomBytes(32), P.CKK_AES, [{ type: P.CKA_EXTRACTABLE, value: false }]);
  throwsCkr(t, () => p11.C_WrapKey(session, mechanism, pair.publicKey, unextractable, Buffer.alloc(1024)), P.CKR_KEY_UNEXTRACTABLE);
  throwsCkr(t, () => p11.C_WrapKey(session, mechanism, aes, aes, Buffer.alloc(1024)), P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
});

test("PKCS #1 v1.5 signatures: hashed mechanisms and raw CKM_RSA_PKCS agree with node:crypto", (t) => {
  const token = openToken(t);
  const pair = rsaPair(token, 2048);
  const { publicKey, privateKey } = nodeKeys(token, pair);
  const mechanisms: Array<[string, number]> = [["sha224", P.CKM_SHA224_RSA_PKCS], ["sha256", P.CKM_SHA256_RSA_PKCS], ["sha384", P.CKM_SHA384_RSA_PKCS], ["sha512", P.CKM_SHA512_RSA_PKCS]];
  for (const [name, mechanism] of mechanisms) {
    for (const size of [0, 1, 1000, 100_000]) {
      const data = randomBytes(size);
      const signature = sign(token, { mechanism }, pair.privateKey, data);
      t.true(nodeVerify(name, data, publicKey, signature), `${name} ${size}`);
      // PKCS #1 v1.5 is deterministic: node's signature is the same bytes.
      t.deepEqual(nodeSign(name, data, privateKey), signature);
      t.deepEqual(signParts(token, { mechanism }, pair.privateKey, data, [1000, 3]), signature);
      t.is(verify(token, { mechanism }, pair.publicKey, data, signature), true);
      t.is(verifyParts(token, { mechanism }, pair.publicKey, data, signature, [10]), true);
      const bad = Buffer.from(signature);
      bad[255]! ^= 1;
      t.is(verify(token, { mechanism }, pair.publicKey, data, bad), P.CKR_SIGNATURE_INVALID);
      t.is(verify(token, { mechanism }, pair.publicKey, data, signature.subarray(1)), P.CKR_SIGNATURE_LEN_RANGE);
    }
  }
  // Raw CKM_RSA_PKCS over a DigestInfo is the same signature as SHA256_RSA_PKCS.
  const data = Buffer.from("raw");
  const digestInfo = Buffer.concat([Buffer.from("3031300d060960864801650304020105000420", "hex"), createHash("sha256").update(data).digest()]);
  const raw = sign(token, { mechanism: P.CKM_RSA_PKCS }, pair.privateKey, digestInfo);
  t.true(nodeVerify("sha256", data, publicKey, raw));
  t.is(verify(token, { mechanism: P.CKM_RSA_PKCS }, pair.publicKey, digestInfo, nodeSign("sha256", data, privateKey)), true);
  t.is(verify(token, { mechanism: P.CKM_RSA_PKCS }, pair.publicKey, Buffer.from(digestInfo).fill(1, 0, 1), raw), P.CKR_SIGNATURE_INVALID);
  t.is(verify(token, { mechanism: P.CKM_RSA_PKCS }, pair.publicKey, digestInfo, Buffer.alloc(256, 0xff)), P.CKR_SIGNATURE_INVALID);
  throwsCkr(t, () => sign(token, { mechanism: P.CKM_RSA_PKCS }, pair.privateKey, randomBytes(256 - 10)), P.CKR_DATA_LEN_RANGE);
  t.is(sign(token, { mechanism: P.CKM_RSA_PKCS }, pair.privateKey, randomBytes(256 - 11)).length, 256);
  // Single-part (Current Mechanisms v2.40 §2.1.1 table): C_SignUpdate / C_VerifyUpdate are refused and end the operation.
  token.p11.C_SignInit(token.session, { mechanism: P.CKM_RSA_PKCS }, pair.privateKey);
  throwsCkr(t, () => token.p11.C_SignUpdate(token.session, digestInfo), P.CKR_FUNCTION_NOT_SUPPORTED);
  throwsCkr(t, () => token.p11.C_Sign(token.session, digestInfo, Buffer.alloc(256)), P.CKR_OPERATION_NOT_INITIALIZED);
  token.p11.C_VerifyInit(token.session, { mechanism: P.CKM_RSA_PKCS }, pair.publicKey);
  throwsCkr(t, () => token.p11.C_VerifyUpdate(token.session, digestInfo), P.CKR_FUNCTION_NOT_SUPPORTED);
  throwsCkr(t, () => token.p11.C_Verify(token.session, digestInfo, raw), P.CKR_OPERATION_NOT_INITIALIZED);
});

test("PSS signatures agree with node:crypto; CK_RSA_PKCS_PSS_PARAMS are checked", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = rsaPair(token, 2048);
  const { publicKey, privateKey } = nodeKeys(token, pair);
  const mechanisms: Array<[string, number, number, number, number]> = [
    ["sha224", P.CKM_SHA224_RSA_PKCS_PSS, P.CKM_SHA224, P.CKG_MGF1_SHA224, 28],
    ["sha256", P.CKM_SHA256_RSA_PKCS_PSS, P.CKM_SHA256, P.CKG_MGF1_SHA256, 32],
    ["sha384", P.CKM_SHA384_RSA_PKCS_PSS, P.CKM_SHA384, P.CKG_MGF1_SHA384, 48],
    ["sha512", P.CKM_SHA512_RSA_PKCS_PSS, P.CKM_SHA512, P.CKG_MGF1_SHA512, 64],
  ];
  for (const [name, mechanism, hashAlg, mgf, hLen] of mechanisms) {
    for (const saltLength of [0, hLen, 256 - hLen - 2]) {
      const data = randomBytes(777);
      const m = pss(mechanism, hashAlg, mgf, saltLength);
      const options = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength };
      const signature = sign(token, m, pair.privateKey, data);
      t.true(nodeVerify(name, data, { key: publicKey, ...options }, signature), `${name} salt ${saltLength}`);
      t.is(verify(token, m, pair.publicKey, data, nodeSign(name, data, { key: privateKey, ...options })), true);
      t.is(verifyParts(token, m, pair.publicKey, data, signature, [100]), true);
      t.is(verify(token, m, pair.publicKey, Buffer.concat([data, Buffer.alloc(1)]), signature), P.CKR_SIGNATURE_INVALID);
    }
  }
  const key = pair.privateKey;
  const mechanism = P.CKM_SHA256_RSA_PKCS_PSS;
  for (const parameter of [
    undefined,
    { type: P.CK_PARAMS_RSA_PSS, hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, saltLen: 20 },
    { type: P.CK_PARAMS_RSA_PSS, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA1, saltLen: 32 },
    { type: P.CK_PARAMS_RSA_PSS, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, saltLen: 256 - 32 - 1 },
    { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA256, mgf: P.CKG_MGF1_SHA256, source: CKZ_DATA_SPECIFIED },
  ]) {
    throwsCkr(t, () => p11.C_SignInit(session, { mechanism, parameter } as Mechanism, key), P.CKR_MECHANISM_PARAM_INVALID, JSON.stringify(parameter));
  }
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS, parameter: Buffer.alloc(8) }, key), P.CKR_MECHANISM_PARAM_INVALID);
});

test("sign/verify: key types and usage flags", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = rsaPair(token, 2048, [], [{ type: P.CKA_SIGN, value: false }]);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS }, pair.privateKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS }, pair.publicKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_VerifyInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS }, secretKey(token, randomBytes(32))), P.CKR_KEY_TYPE_INCONSISTENT);
  const ec = p11.C_GenerateKeyPair(session, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, [{ type: P.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }], []);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS }, ec.privateKey), P.CKR_KEY_TYPE_INCONSISTENT);
});

test("C_CreateObject of RSA keys: full CRT, (n, e, d) alone, primes without e; attributes read back", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const { privateKey, publicKey } = generateKeyPair({ kind: "rsa", modulusBits: 2048 });
  const jwk = privateKey.export({ format: "jwk" }) as Record<string, string>;
  const data = Buffer.from("imported");
  for (const parts of [["n", "e", "d", "p", "q", "dp", "dq", "qi"], ["n", "e", "d"], ["n", "d", "p", "q"], ["n", "e", "d", "p", "q", "qi"]]) {
    const handles = importRsa(token, privateKey, parts, [{ type: P.CKA_EXTRACTABLE, value: true }]);
    t.true(nodeVerify("sha256", data, publicKey, sign(token, { mechanism: P.CKM_SHA256_RSA_PKCS }, handles.privateKey, data)), parts.join(","));
    for (const [name, type] of [["d", P.CKA_PRIVATE_EXPONENT], ["p", P.CKA_PRIME_1], ["q", P.CKA_PRIME_2], ["dp", P.CKA_EXPONENT_1], ["dq", P.CKA_EXPONENT_2], ["qi", P.CKA_COEFFICIENT], ["e", P.CKA_PUBLIC_EXPONENT]] as const) {
      const value = attr(token, handles.privateKey, type);
      // Node's JWK and the token agree up to which prime is "p": compare as a set for the primes.
      if (["p", "q", "dp", "dq", "qi"].includes(name) && !parts.includes("p")) continue;
      t.deepEqual(value, Buffer.from(jwk[name]!, "base64url"), `${parts.join(",")}: ${name}`);
    }
    t.is(ulongAttr(token, handles.publicKey, P.CKA_MODULUS_BITS), 2048);
    t.false(boolAttr(token, handles.privateKey, P.CKA_LOCAL));
    t.false(boolAttr(token, handles.privateKey, P.CKA_ALWAYS_SENSITIVE));
    t.is(verify(token, { mechanism: P.CKM_SHA256_RSA_PKCS }, handles.publicKey, data, nodeSign("sha256", data, privateKey)), true);
  }
  // Sensitive imported keys keep their components.
  const sensitive = importRsa(token, privateKey, ["n", "e", "d"], [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }]);
  throwsCkr(t, () => attr(token, sensitive.privateKey, P.CKA_PRIVATE_EXPONENT), P.CKR_ATTRIBUTE_SENSITIVE);
  t.notThrows(() => attr(token, sensitive.privateKey, P.CKA_MODULUS));
  // Refusals.
  throwsCkr(t, () => importRsa(token, privateKey, ["n", "e"]), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => importRsa(token, privateKey, ["n", "d"]), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => importRsa(token, privateKey, ["n", "d", "p"]), P.CKR_TEMPLATE_INCOMPLETE);
  const other = generateKeyPair({ kind: "rsa", modulusBits: 2048 }).privateKey.export({ format: "jwk" }) as Record<string, string>;
  const mixed: Template = [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_MODULUS, value: Buffer.from(jwk["n"]!, "base64url") },
    { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from(jwk["e"]!, "base64url") }, { type: P.CKA_PRIVATE_EXPONENT, value: Buffer.from(other["d"]!, "base64url") },
  ];
  throwsCkr(t, () => p11.C_CreateObject(session, mixed), P.CKR_TEMPLATE_INCONSISTENT);
  throwsCkr(t, () => p11.C_CreateObject(session, [...mixed.slice(0, 4), { type: P.CKA_PRIVATE_EXPONENT, value: Buffer.from(jwk["d"]!, "base64url") },
    { type: P.CKA_PRIME_1, value: Buffer.from(other["p"]!, "base64url") }, { type: P.CKA_PRIME_2, value: Buffer.from(other["q"]!, "base64url") }]), P.CKR_TEMPLATE_INCONSISTENT);
  throwsCkr(t, () => p11.C_CreateObject(session, [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_MODULUS, value: Buffer.from(jwk["n"]!, "base64url") },
    { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: P.CKA_MODULUS_BITS, value: 2048 },
  ]), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_CreateObject(session, [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_MODULUS, value: Buffer.from(jwk["n"]!, "base64url") },
    { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 0]) },
  ]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_CreateObject(session, [{ type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_MODULUS, value: Buffer.from(jwk["n"]!, "base64url") }]),
    P.CKR_TEMPLATE_INCOMPLETE);
  // Operations refuse keys below 2048 bits.
  const small = importRsa(token, generateKeyPair({ kind: "rsa", modulusBits: 1024 }).privateKey);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_SHA256_RSA_PKCS }, small.privateKey), P.CKR_KEY_SIZE_RANGE);
});

test("private keys under AES-KWP: PKCS#8 DER that OpenSSL reads, unwrapped back into a usable key", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const kekValue = randomBytes(32);
  const kek = secretKey(token, kekValue, P.CKK_AES);
  const pair = rsaPair(token, 2048);
  const { publicKey, privateKey } = nodeKeys(token, pair);
  const kwp = { mechanism: 0x210b };
  for (const mechanism of [kwp, { mechanism: P.CKM_AES_KEY_WRAP_PAD }]) {
    const wrapped = Buffer.from(p11.C_WrapKey(session, mechanism, kek, pair.privateKey, Buffer.alloc(8096)));
    const decipher = createDecipheriv("id-aes256-wrap-pad", kekValue, Buffer.from("a65959a6", "hex"));
    const der = Buffer.concat([decipher.update(wrapped), decipher.final()]);
    const recovered = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    t.deepEqual(recovered.export({ format: "jwk" }), privateKey.export({ format: "jwk" }));
    const unwrapped = p11.C_UnwrapKey(session, mechanism, kek, wrapped, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_SIGN, value: true },
      { type: P.CKA_LABEL, value: "unwrapped" },
    ]);
    t.deepEqual(attr(token, unwrapped, P.CKA_MODULUS), attr(token, pair.publicKey, P.CKA_MODULUS));
    t.false(boolAttr(token, unwrapped, P.CKA_LOCAL));
    t.false(boolAttr(token, unwrapped, P.CKA_NEVER_EXTRACTABLE));
    const data = Buffer.from("signed by the unwrapped key");
    t.true(nodeVerify("sha256", data, publicKey, sign(token, { mechanism: P.CKM_SHA256_RSA_PKCS }, unwrapped, data)));
  }
  // A PKCS#8 key made elsewhere comes in the same way.
  const foreign = generateKeyPair({ kind: "rsa", modulusBits: 2048 });
  const cipher = createCipheriv("id-aes256-wrap-pad", kekValue, Buffer.from("a65959a6", "hex"));
  const foreignWrapped = Buffer.concat([cipher.update(foreign.privateKey.export({ type: "pkcs8", format: "der" })), cipher.final()]);
  const template: Template = [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }, { type: P.CKA_SIGN, value: true }];
  const imported = p11.C_UnwrapKey(session, kwp, kek, foreignWrapped, template);
  t.true(nodeVerify("sha256", Buffer.from("x"), foreign.publicKey, sign(token, { mechanism: P.CKM_SHA256_RSA_PKCS }, imported, Buffer.from("x"))));
  // Refusals: KW (RFC 3394) does not take private keys; the key type must match; garbage is invalid.
  throwsCkr(t, () => p11.C_WrapKey(session, { mechanism: P.CKM_AES_KEY_WRAP }, kek, pair.privateKey, Buffer.alloc(8096)), P.CKR_KEY_NOT_WRAPPABLE);
  throwsCkr(t, () => p11.C_UnwrapKey(session, kwp, kek, foreignWrapped, [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }]),
    P.CKR_WRAPPED_KEY_INVALID);
  const junk = createCipheriv("id-aes256-wrap-pad", kekValue, Buffer.from("a65959a6", "hex"));
  throwsCkr(t, () => p11.C_UnwrapKey(session, kwp, kek, Buffer.concat([junk.update(randomBytes(100)), junk.final()]), template), P.CKR_WRAPPED_KEY_INVALID);
  const tampered = Buffer.from(foreignWrapped);
  tampered[20]! ^= 1;
  throwsCkr(t, () => p11.C_UnwrapKey(session, kwp, kek, tampered, template), P.CKR_WRAPPED_KEY_INVALID);
  throwsCkr(t, () => p11.C_UnwrapKey(session, kwp, kek, foreignWrapped, [...template, { type: P.CKA_MODULUS, value: Buffer.alloc(256) }]), P.CKR_ATTRIBUTE_READ_ONLY);
  const locked = rsaPair(token, 2048, [], [{ type: P.CKA_EXTRACTABLE, value: false }]);
  throwsCkr(t, () => p11.C_WrapKey(session, kwp, kek, locked.privateKey, Buffer.alloc(8096)), P.CKR_KEY_UNEXTRACTABLE);
});
