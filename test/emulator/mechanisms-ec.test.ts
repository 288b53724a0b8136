// Elliptic curves through the PKCS#11 surface: key-pair generation on P-256/384/521, ECDSA (raw
// over a caller's hash, and hash-then-sign), ECDH1_DERIVE, C_CreateObject of EC keys, EC private
// keys under AES-KWP — against node:crypto (OpenSSL) in both directions.
import test from "ava";
import {
  createCipheriv, createDecipheriv, createECDH, createHash, createPrivateKey, createPublicKey, diffieHellman, randomBytes,
  sign as nodeSign, verify as nodeVerify, type KeyObject,
} from "node:crypto";
import { curveOrder } from "../../emulator/mechanisms/arith.js";
import { generateKeyPair, ecdsaSignDigest, ecdsaVerifyDigest } from "../../src/crypto/signatures.js";
import type { Handle, Mechanism, Template } from "../../emulator/pkcs11.js";
import {
  P, P256, P384, P521, SECP256K1, attr, boolAttr, decrypt, ecPair, encrypt, openToken, secretKey, sign, signParts, throwsCkr, ulongAttr, verify,
  verifyParts, type Token,
} from "./mechanisms-helpers.js";

interface CurveCase {
  name: string;
  crv: string;
  nodeName: string;
  params: Buffer;
  fieldBytes: number;
}

const CURVES: CurveCase[] = [
  { name: "P-256", crv: "P-256", nodeName: "prime256v1", params: P256, fieldBytes: 32 },
  { name: "P-384", crv: "P-384", nodeName: "secp384r1", params: P384, fieldBytes: 48 },
  { name: "P-521", crv: "P-521", nodeName: "secp521r1", params: P521, fieldBytes: 66 },
];

/** The DER OCTET STRING around an uncompressed point, as CKA_EC_POINT holds it. */
function derPoint(point: Buffer): Buffer {
  const length = point.length < 0x80 ? Buffer.from([point.length]) : Buffer.from([0x81, point.length]);
  return Buffer.concat([Buffer.from([0x04]), length, point]);
}

function uncompressed(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, "base64url"), Buffer.from(jwk.y!, "base64url")]);
}

/** node:crypto KeyObjects of a token key pair (private key revealable). */
function nodeKeys(token: Token, curve: CurveCase, pair: { publicKey: Handle; privateKey: Handle }): { publicKey: KeyObject; privateKey: KeyObject } {
  const point = attr(token, pair.publicKey, P.CKA_EC_POINT).subarray(-(1 + 2 * curve.fieldBytes));
  const x = point.subarray(1, 1 + curve.fieldBytes).toString("base64url");
  const y = point.subarray(1 + curve.fieldBytes).toString("base64url");
  const d = Buffer.concat([Buffer.alloc(curve.fieldBytes), attr(token, pair.privateKey, P.CKA_VALUE)]).subarray(-curve.fieldBytes).toString("base64url");
  return {
    publicKey: createPublicKey({ key: { kty: "EC", crv: curve.crv, x, y }, format: "jwk" }),
    privateKey: createPrivateKey({ key: { kty: "EC", crv: curve.crv, x, y, d }, format: "jwk" }),
  };
}

test("raw-digest ECDSA in OpenSSL (native core): signatures node:crypto verifies, and rejection of out-of-range or wrong ones", (t) => {
  for (const curve of CURVES) {
    const { privateKey, publicKey } = generateKeyPair({ kind: "ec", curve: curve.nodeName });
    const scalarBytes = curve.fieldBytes;
    const hashName = scalarBytes > 48 ? "sha512" : scalarBytes > 32 ? "sha384" : "sha256";
    const message = randomBytes(100);
    const digest = createHash(hashName).update(message).digest();
    const ours = ecdsaSignDigest(privateKey, digest, scalarBytes);
    t.is(ours.length, 2 * scalarBytes, curve.name);
    t.true(nodeVerify(hashName, message, { key: publicKey, dsaEncoding: "ieee-p1363" }, ours), `${curve.name}: node verifies ours`);
    const theirs = nodeSign(hashName, message, { key: privateKey, dsaEncoding: "ieee-p1363" });
    t.true(ecdsaVerifyDigest(publicKey, digest, theirs), `${curve.name}: we verify node's`);
    const n = Buffer.from(curveOrder(curve.nodeName).toString(16).padStart(scalarBytes * 2, "0"), "hex");
    t.false(ecdsaVerifyDigest(publicKey, digest, Buffer.concat([Buffer.alloc(scalarBytes), theirs.subarray(scalarBytes)])));
    t.false(ecdsaVerifyDigest(publicKey, digest, Buffer.concat([n, theirs.subarray(scalarBytes)])));
    t.false(ecdsaVerifyDigest(publicKey, digest, Buffer.concat([theirs.subarray(0, scalarBytes), n])));
    t.false(ecdsaVerifyDigest(publicKey, digest, theirs.subarray(1)));
    const flipped = Buffer.from(digest);
    flipped[0]! ^= 1;
    t.false(ecdsaVerifyDigest(publicKey, flipped, theirs));
  }
});

test("key-pair generation on each curve: attributes, CKA_EC_POINT as a DER OCTET STRING, computed flags", (t) => {
  const token = openToken(t);
  for (const curve of CURVES) {
    const pair = ecPair(token, curve.params, [], [{ type: P.CKA_SENSITIVE, value: true }]);
    const point = attr(token, pair.publicKey, P.CKA_EC_POINT);
    t.is(point[0], 0x04, curve.name);
    t.is(point[point.length - 1 - 2 * curve.fieldBytes], 0x04);
    t.is(point.length, (curve.fieldBytes > 62 ? 3 : 2) + 1 + 2 * curve.fieldBytes);
    t.deepEqual(attr(token, pair.publicKey, P.CKA_EC_PARAMS), curve.params);
    t.deepEqual(attr(token, pair.privateKey, P.CKA_EC_PARAMS), curve.params);
    for (const handle of [pair.publicKey, pair.privateKey]) {
      t.true(boolAttr(token, handle, P.CKA_LOCAL));
      t.is(ulongAttr(token, handle, P.CKA_KEY_GEN_MECHANISM), P.CKM_EC_KEY_PAIR_GEN);
      t.is(ulongAttr(token, handle, P.CKA_KEY_TYPE), P.CKK_EC);
    }
    t.true(boolAttr(token, pair.privateKey, P.CKA_ALWAYS_SENSITIVE));
    t.false(boolAttr(token, pair.privateKey, P.CKA_NEVER_EXTRACTABLE));
    throwsCkr(t, () => attr(token, pair.privateKey, P.CKA_VALUE), P.CKR_ATTRIBUTE_SENSITIVE);
    throwsCkr(t, () => attr(token, pair.privateKey, P.CKA_EC_POINT), P.CKR_ATTRIBUTE_TYPE_INVALID);
    const spki = createPublicKey({ key: nodeKeyFromPoint(curve, point), format: "jwk" }).export({ type: "spki", format: "der" });
    t.deepEqual(attr(token, pair.publicKey, 0x129), spki, "CKA_PUBLIC_KEY_INFO");
  }
  const { p11, session } = token;
  const gen = { mechanism: P.CKM_EC_KEY_PAIR_GEN };
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [], []), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_EC_PARAMS, value: SECP256K1 }], []), 0x140 /* CKR_CURVE_NOT_SUPPORTED */);
  for (const params of [Buffer.from("06082a8648ce3d0301", "hex"), Buffer.from("1305502d323536", "hex"), Buffer.from("3000", "hex"), Buffer.alloc(0)]) {
    throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_EC_PARAMS, value: params }], []), P.CKR_DOMAIN_PARAMS_INVALID, params.toString("hex"));
  }
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_EC_PARAMS, value: P256 }], [{ type: P.CKA_EC_PARAMS, value: P256 }]), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_EC_PARAMS, value: P256 }, { type: P.CKA_EC_POINT, value: Buffer.alloc(67) }], []), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_GenerateKeyPair(session, gen, [{ type: P.CKA_EC_PARAMS, value: P256 }], [{ type: P.CKA_KEY_TYPE, value: P.CKK_RSA }]), P.CKR_TEMPLATE_INCONSISTENT);
});

function nodeKeyFromPoint(curve: CurveCase, derEncoded: Buffer): { kty: string; crv: string; x: string; y: string } {
  const point = derEncoded.subarray(-(1 + 2 * curve.fieldBytes));
  return { kty: "EC", crv: curve.crv, x: point.subarray(1, 1 + curve.fieldBytes).toString("base64url"), y: point.subarray(1 + curve.fieldBytes).toString("base64url") };
}

test("ECDSA agrees with node:crypto on every curve: raw over a hash, and ECDSA_SHA256/384/512", (t) => {
  const token = openToken(t);
  let count = 0;
  for (const curve of CURVES) {
    const pair = ecPair(token, curve.params);
    const { publicKey, privateKey } = nodeKeys(token, curve, pair);
    const signatureLength = 2 * curve.fieldBytes;
    for (const [name, mechanism] of [["sha256", P.CKM_ECDSA_SHA256], ["sha384", P.CKM_ECDSA_SHA384], ["sha512", P.CKM_ECDSA_SHA512]] as const) {
      for (const size of [0, 1, 1000]) {
        const data = randomBytes(size);
        const options = { dsaEncoding: "ieee-p1363" as const };
        const signature = sign(token, { mechanism }, pair.privateKey, data);
        t.is(signature.length, signatureLength);
        t.true(nodeVerify(name, data, { key: publicKey, ...options }, signature), `${curve.name} ${name} ${size}`);
        t.true(nodeVerify(name, data, { key: publicKey, ...options }, signParts(token, { mechanism }, pair.privateKey, data, [7])));
        const fromNode = nodeSign(name, data, { key: privateKey, ...options });
        t.is(verify(token, { mechanism }, pair.publicKey, data, fromNode), true);
        t.is(verifyParts(token, { mechanism }, pair.publicKey, data, fromNode, [300]), true);
        // Raw ECDSA over the same hash: node's signature verifies, and ours verifies in node.
        const hash = createHash(name).update(data).digest();
        t.is(verify(token, { mechanism: P.CKM_ECDSA }, pair.publicKey, hash, fromNode), true);
        const raw = sign(token, { mechanism: P.CKM_ECDSA }, pair.privateKey, hash);
        t.true(nodeVerify(name, data, { key: publicKey, ...options }, raw), `raw ${curve.name} ${name}`);
        const bad = Buffer.from(raw);
        bad[signatureLength - 1]! ^= 1;
        t.is(verify(token, { mechanism: P.CKM_ECDSA }, pair.publicKey, hash, bad), P.CKR_SIGNATURE_INVALID);
        t.is(verify(token, { mechanism }, pair.publicKey, data, bad), P.CKR_SIGNATURE_INVALID);
        t.is(verify(token, { mechanism }, pair.publicKey, data, raw.subarray(1)), P.CKR_SIGNATURE_LEN_RANGE);
        t.is(verify(token, { mechanism: P.CKM_ECDSA }, pair.publicKey, hash, Buffer.concat([raw, Buffer.alloc(1)])), P.CKR_SIGNATURE_LEN_RANGE);
        count++;
      }
    }
    // Raw ECDSA truncates long hashes to the order's length, as OpenSSL does.
    const long = randomBytes(80);
    t.is(verify(token, { mechanism: P.CKM_ECDSA }, pair.publicKey, long, sign(token, { mechanism: P.CKM_ECDSA }, pair.privateKey, long)), true);
    const hash = createHash("sha512").update("x").digest();
    t.true(nodeVerify("sha512", Buffer.from("x"), { key: publicKey, dsaEncoding: "ieee-p1363" }, sign(token, { mechanism: P.CKM_ECDSA }, pair.privateKey, hash)));
  }
  t.log(`${count} ECDSA cases, both directions`);
});

test("ECDSA: key types, usage flags and parameters", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = ecPair(token, P256, [{ type: P.CKA_VERIFY, value: false }]);
  throwsCkr(t, () => p11.C_VerifyInit(session, { mechanism: P.CKM_ECDSA }, pair.publicKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_ECDSA }, pair.publicKey), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_ECDSA_SHA256 }, secretKey(token, randomBytes(32))), P.CKR_KEY_TYPE_INCONSISTENT);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_ECDSA_SHA256, parameter: Buffer.alloc(4) }, pair.privateKey), P.CKR_MECHANISM_PARAM_INVALID);
  throwsCkr(t, () => p11.C_SignInit(session, { mechanism: P.CKM_ECDSA, parameter: 1 }, pair.privateKey), P.CKR_MECHANISM_PARAM_INVALID);
  p11.C_SignInit(session, { mechanism: P.CKM_ECDSA_SHA384 }, pair.privateKey);
  throwsCkr(t, () => p11.C_Sign(session, Buffer.from("x"), Buffer.alloc(63)), P.CKR_BUFFER_TOO_SMALL);
  t.is(p11.C_Sign(session, Buffer.from("x"), Buffer.alloc(64)).length, 64);
});

test("ECDH1_DERIVE agrees with node:crypto: generic secrets and AES keys, raw and DER public data", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  for (const curve of CURVES) {
    const pair = ecPair(token, curve.params);
    const { privateKey } = nodeKeys(token, curve, pair);
    const peer = generateKeyPair({ kind: "ec", curve: curve.nodeName });
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey(privateKey) });
    t.deepEqual(expected, diffieHellman({ privateKey, publicKey: peer.publicKey }));
    const raw = uncompressed(peer.publicKey);
    for (const publicData of [raw, derPoint(raw)]) {
      const mechanism: Mechanism = { mechanism: P.CKM_ECDH1_DERIVE, parameter: { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData } as never };
      const base: Template = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false }];
      const generic = p11.C_DeriveKey(session, mechanism, pair.privateKey, [...base, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }]);
      t.deepEqual(attr(token, generic, P.CKA_VALUE), expected, curve.name);
      t.is(ulongAttr(token, generic, P.CKA_VALUE_LEN), curve.fieldBytes);
      t.false(boolAttr(token, generic, P.CKA_LOCAL));
      const short = p11.C_DeriveKey(session, mechanism, pair.privateKey, [...base, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }, { type: P.CKA_VALUE_LEN, value: 20 }]);
      t.deepEqual(attr(token, short, P.CKA_VALUE), expected.subarray(expected.length - 20), "trailing bytes, as SoftHSMv2");
      for (const [valueLen, length] of [[undefined, 32], [16, 16], [24, 24], [32, 32]] as const) {
        const aes = p11.C_DeriveKey(session, mechanism, pair.privateKey, [
          ...base, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true },
          ...(valueLen === undefined ? [] : [{ type: P.CKA_VALUE_LEN, value: valueLen }]),
        ]);
        const value = expected.subarray(expected.length - length);
        t.deepEqual(attr(token, aes, P.CKA_VALUE), value);
        // The derived key works: AES-GCM as node:crypto computes it with the same secret.
        const iv = randomBytes(12);
        const gcm = { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, ivBits: 96, tagBits: 128 } as never };
        const cipher = createCipheriv(`aes-${length * 8}-gcm` as "aes-256-gcm", value, iv);
        const data = Buffer.from("agreed");
        t.deepEqual(encrypt(token, gcm, aes, data), Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]));
        t.deepEqual(decrypt(token, gcm, aes, encrypt(token, gcm, aes, data)), data);
      }
    }
  }
});

test("ECDH1_DERIVE: parameters, templates and keys are checked", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const pair = ecPair(token, P256);
  const peer = generateKeyPair({ kind: "ec", curve: "prime256v1" });
  const publicData = uncompressed(peer.publicKey);
  const ecdh = (parameter: unknown): Mechanism => ({ mechanism: P.CKM_ECDH1_DERIVE, parameter } as Mechanism);
  const good = ecdh({ type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData });
  const template: Template = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }];
  for (const parameter of [
    undefined, publicData, { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_SHA256_KDF, publicData },
    { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData, sharedData: Buffer.from("info") },
    { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: Buffer.alloc(0) },
    { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: uncompressed(generateKeyPair({ kind: "ec", curve: "secp384r1" }).publicKey) },
    { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: Buffer.concat([Buffer.from([4]), randomBytes(64)]) },
    { type: P.CK_PARAMS_AES_GCM, iv: randomBytes(12) },
  ]) {
    throwsCkr(t, () => p11.C_DeriveKey(session, ecdh(parameter), pair.privateKey, template), P.CKR_MECHANISM_PARAM_INVALID);
  }
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }]), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [...template, { type: P.CKA_VALUE, value: Buffer.alloc(32) }]), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [...template, { type: P.CKA_VALUE_LEN, value: 33 }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [{ type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_VALUE_LEN, value: 20 }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [{ type: P.CKA_KEY_TYPE, value: P.CKK_DES3 }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.privateKey, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }]), P.CKR_TEMPLATE_INCONSISTENT);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, pair.publicKey, template), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  const noDerive = ecPair(token, P256, [], [{ type: P.CKA_DERIVE, value: false }]);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, noDerive.privateKey, template), P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  throwsCkr(t, () => p11.C_DeriveKey(session, good, secretKey(token, randomBytes(32), P.CKK_GENERIC_SECRET, [{ type: P.CKA_DERIVE, value: true }]), template), P.CKR_KEY_TYPE_INCONSISTENT);
  // A point in compressed form is a point too.
  const compressed = createECDH("prime256v1");
  compressed.generateKeys();
  t.notThrows(() => p11.C_DeriveKey(session, ecdh({ type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: compressed.getPublicKey(undefined, "compressed") }), pair.privateKey, template));
});

test("C_CreateObject of EC keys: public points raw, compressed or DER; private scalars; values read back", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  for (const curve of CURVES) {
    const { privateKey, publicKey } = generateKeyPair({ kind: "ec", curve: curve.nodeName });
    const point = uncompressed(publicKey);
    const ecdh = createECDH(curve.nodeName);
    const d = Buffer.from(privateKey.export({ format: "jwk" }).d!, "base64url");
    ecdh.setPrivateKey(d);
    for (const encoded of [point, derPoint(point), ecdh.getPublicKey(undefined, "compressed")]) {
      const handle = p11.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: curve.params },
        { type: P.CKA_EC_POINT, value: encoded }, { type: P.CKA_VERIFY, value: true },
      ]);
      t.deepEqual(attr(token, handle, P.CKA_EC_POINT), derPoint(point), `${curve.name} stored as DER`);
      const data = Buffer.from("imported");
      t.is(verify(token, { mechanism: P.CKM_ECDSA_SHA256 }, handle, data, nodeSign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" })), true);
    }
    const imported = p11.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: curve.params },
      { type: P.CKA_VALUE, value: d }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_EXTRACTABLE, value: true },
    ]);
    t.deepEqual(attr(token, imported, P.CKA_VALUE), d);
    t.false(boolAttr(token, imported, P.CKA_LOCAL));
    const data = Buffer.from("signed by an imported key");
    t.true(nodeVerify("sha384", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, sign(token, { mechanism: P.CKM_ECDSA_SHA384 }, imported, data)));
  }
  const base: Template = [{ type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: P256 }];
  const offCurve = Buffer.concat([Buffer.from([4]), randomBytes(64)]);
  throwsCkr(t, () => p11.C_CreateObject(session, [...base, { type: P.CKA_EC_POINT, value: offCurve }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_CreateObject(session, [...base, { type: P.CKA_EC_POINT, value: Buffer.alloc(10) }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  throwsCkr(t, () => p11.C_CreateObject(session, base), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => p11.C_CreateObject(session, [base[0]!, base[1]!, { type: P.CKA_EC_PARAMS, value: SECP256K1 }, { type: P.CKA_EC_POINT, value: offCurve }]), 0x140);
  const privateBase: Template = [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: P256 }];
  throwsCkr(t, () => p11.C_CreateObject(session, privateBase), P.CKR_TEMPLATE_INCOMPLETE);
  throwsCkr(t, () => p11.C_CreateObject(session, [...privateBase, { type: P.CKA_VALUE, value: Buffer.alloc(32) }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
  const n = Buffer.from(curveOrder("prime256v1").toString(16), "hex");
  throwsCkr(t, () => p11.C_CreateObject(session, [...privateBase, { type: P.CKA_VALUE, value: n }]), P.CKR_ATTRIBUTE_VALUE_INVALID);
});

test("EC private keys under AES-KWP: PKCS#8 out, back in, still signing", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const kekValue = randomBytes(16);
  const kek = secretKey(token, kekValue, P.CKK_AES);
  const pair = ecPair(token, P384);
  const { publicKey, privateKey } = nodeKeys(token, CURVES[1]!, pair);
  const wrapped = Buffer.from(p11.C_WrapKey(session, { mechanism: 0x210b }, kek, pair.privateKey, Buffer.alloc(2048)));
  const der = createDecipheriv("id-aes128-wrap-pad", kekValue, Buffer.from("a65959a6", "hex"));
  const recovered = createPrivateKey({ key: Buffer.concat([der.update(wrapped), der.final()]), format: "der", type: "pkcs8" });
  t.deepEqual(recovered.export({ format: "jwk" }), privateKey.export({ format: "jwk" }));
  const unwrapped = p11.C_UnwrapKey(session, { mechanism: 0x210b }, kek, wrapped, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_SIGN, value: true },
    { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_DERIVE, value: true },
  ]);
  t.deepEqual(attr(token, unwrapped, P.CKA_EC_PARAMS), P384);
  t.deepEqual(attr(token, unwrapped, P.CKA_VALUE), attr(token, pair.privateKey, P.CKA_VALUE));
  const data = Buffer.from("still mine");
  t.true(nodeVerify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, sign(token, { mechanism: P.CKM_ECDSA_SHA256 }, unwrapped, data)));
  t.is(privateKey.asymmetricKeyDetails?.namedCurve, "secp384r1");
  throwsCkr(t, () => p11.C_UnwrapKey(session, { mechanism: 0x210b }, kek, wrapped, [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_EC }, { type: P.CKA_EC_PARAMS, value: P384 },
  ]), P.CKR_ATTRIBUTE_READ_ONLY);
  throwsCkr(t, () => p11.C_UnwrapKey(session, { mechanism: 0x210b }, kek, wrapped, [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_RSA }]),
    P.CKR_WRAPPED_KEY_INVALID);
});

test("a derived key is always-sensitive / never-extractable only when its base key was (PKCS#11 v2.40 §4.10)", (t) => {
  const token = openToken(t);
  const { p11, session } = token;
  const peer = generateKeyPair({ kind: "ec", curve: "prime256v1" });
  const publicData = uncompressed(peer.publicKey);
  const mechanism: Mechanism = { mechanism: P.CKM_ECDH1_DERIVE, parameter: { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData } as never };
  const template: Template = [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
    { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false },
  ];
  // Generated sensitive and unextractable: the derived key inherits both histories.
  const guarded = ecPair(token, P256, [], [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_DERIVE, value: true }]);
  const fromGuarded = p11.C_DeriveKey(session, mechanism, guarded.privateKey, template);
  t.true(boolAttr(token, fromGuarded, P.CKA_ALWAYS_SENSITIVE));
  t.true(boolAttr(token, fromGuarded, P.CKA_NEVER_EXTRACTABLE));
  // Generated extractable and not sensitive: the derived key cannot claim either.
  const open = ecPair(token, P256, [], [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_DERIVE, value: true }]);
  const fromOpen = p11.C_DeriveKey(session, mechanism, open.privateKey, template);
  t.false(boolAttr(token, fromOpen, P.CKA_ALWAYS_SENSITIVE));
  t.false(boolAttr(token, fromOpen, P.CKA_NEVER_EXTRACTABLE));
});
