/**
 * ECDSA over a digest the caller computed (PKCS#11 CKM_ECDSA), in OpenSSL via the native core:
 * node:crypto always hashes its input, so it cannot sign a given digest. Signatures here are in
 * PKCS#11's form, r ‖ s, each the curve's order length, big-endian; the DER conversion is
 * encoding only.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { addon } from "./addon.js";
import { argValueError, assertBytes } from "./errors.js";

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  let body = value.subarray(start);
  if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

/** r ‖ s → DER ECDSA-Sig-Value. */
export function rawToDerSignature(raw: Uint8Array): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(Buffer.from(raw.subarray(0, half))), derInteger(Buffer.from(raw.subarray(half)))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** DER ECDSA-Sig-Value → r ‖ s with each part `scalarBytes` long. */
export function derToRawSignature(der: Uint8Array, scalarBytes: number): Buffer {
  let offset = 0;
  const readLength = (): number => {
    const first = der[offset++]!;
    if (first < 0x80) return first;
    let length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = (length << 8) | der[offset++]!;
    return length;
  };
  if (der[offset++] !== 0x30) throw argValueError("signature", "is not a DER SEQUENCE");
  readLength();
  const parts: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    if (der[offset++] !== 0x02) throw argValueError("signature", "is not two DER INTEGERs");
    const length = readLength();
    let value = Buffer.from(der.subarray(offset, offset + length));
    offset += length;
    while (value.length > scalarBytes && value[0] === 0) value = value.subarray(1);
    if (value.length > scalarBytes) throw argValueError("signature", "has an integer longer than the curve order");
    parts.push(Buffer.concat([Buffer.alloc(scalarBytes - value.length), value]));
  }
  return Buffer.concat(parts);
}

/** ECDSA signature r ‖ s of `digest` under an EC private key. */
export function ecdsaSignDigest(privateKey: KeyObject, digest: Uint8Array, scalarBytes: number): Buffer {
  assertBytes(digest, "digest");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  try {
    return derToRawSignature(addon.ecdsaSignDigest(der, digest), scalarBytes);
  } finally {
    der.fill(0);
  }
}

/** Whether r ‖ s verifies for `digest` under an EC public key. */
export function ecdsaVerifyDigest(publicKey: KeyObject, digest: Uint8Array, signature: Uint8Array): boolean {
  assertBytes(digest, "digest");
  assertBytes(signature, "signature");
  if (signature.length === 0 || signature.length % 2 !== 0) return false;
  const spki = publicKey.export({ format: "der", type: "spki" });
  return addon.ecdsaVerifyDigest(spki, digest, rawToDerSignature(signature));
}

export { createPrivateKey, createPublicKey };
