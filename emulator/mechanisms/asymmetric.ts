/**
 * RSA and EC key objects (PKCS#11 v2.40 current mechanisms §2.1.2–2.1.3 "RSA public/private key
 * objects", §2.3.3–2.3.4 "Elliptic curve public/private key objects") and the node:crypto
 * KeyObjects that hold their material: the attributes a KeyObject determines, C_CreateObject of
 * public and private keys (the ModuleState.asymmetricImport hook), private keys as PKCS#8
 * PrivateKeyInfo DER for C_WrapKey / C_UnwrapKey (as SoftHSMv2 wraps them), and what rsa.ts and
 * ec.ts share: template checks for key-pair generation and hash-then-sign operations.
 *
 * Encodings (SoftHSMv2's, except where noted):
 * - CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, …: big-endian unsigned integers.
 * - CKA_EC_PARAMS: DER of the named curve's OBJECT IDENTIFIER (P-256, P-384, P-521). Explicit
 *   parameters and curve names are CKR_DOMAIN_PARAMS_INVALID; another OID is
 *   CKR_CURVE_NOT_SUPPORTED (SoftHSMv2 gives CKR_GENERAL_ERROR for both at generation).
 * - CKA_EC_POINT: DER OCTET STRING holding the uncompressed point 04‖x‖y. On import the raw point
 *   (uncompressed or compressed) is accepted too; the stored value is always the DER form.
 * - CKA_VALUE of an EC private key: the scalar d.
 * - CKA_PUBLIC_KEY_INFO: DER SubjectPublicKeyInfo, set on generated, unwrapped and created keys
 *   (when the caller leaves it empty; a value that disagrees is CKR_TEMPLATE_INCONSISTENT).
 */
import { ECDH, createECDH, createPrivateKey, createPublicKey, createSign, createVerify, type JsonWebKey, type KeyObject } from "node:crypto";
import { CkrError } from "../errors.js";
import { CKA_PUBLIC_KEY_INFO, CKR_CURVE_NOT_SUPPORTED } from "../extra-constants.js";
import { readUlong, ulong } from "../objects/attributes.js";
import type { ObjectMaterial, P11Object } from "../objects/object.js";
import { pkcs11 } from "../pkcs11.js";
import { bigIntToBytes, bytesToBigInt, carmichael, curveOrder, gcd, modInverse, rsaCrt, rsaFactor } from "./arith.js";
import type { NewKey, SignOperation, VerifyOperation } from "./mechanism.js";

const P = pkcs11;

// DER, just what these attributes need.

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes = bigIntToBytes(BigInt(length));
  return Buffer.concat([Buffer.from([0x80 | bytes.length]), bytes]);
}

/** DER OCTET STRING of `content`. */
export function derOctetString(content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04]), derLength(content.length), content]);
}

/** The content of one DER TLV filling all of `der` with tag `tag`, or undefined. */
function derContent(der: Buffer, tag: number): Buffer | undefined {
  if (der.length < 2 || der[0] !== tag) return undefined;
  let length = der[1]!;
  let offset = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || der.length < 2 + count) return undefined;
    length = Number(bytesToBigInt(der.subarray(2, 2 + count)));
    offset += count;
    if (length < 0x80 || der[2] === 0) return undefined; // not minimal: not DER
  }
  return offset + length === der.length ? der.subarray(offset) : undefined;
}

const b64u = (bytes: Buffer): string => bytes.toString("base64url");
const unb64u = (text: string | undefined): Buffer => Buffer.from(text ?? "", "base64url");

/** An attribute's big integer without leading zero bytes (at least one byte). */
function integerBytes(value: Buffer): Buffer {
  return bigIntToBytes(bytesToBigInt(value));
}

// Curves

export interface Curve {
  /** JWK "crv". */
  name: "P-256" | "P-384" | "P-521";
  /** node:crypto / OpenSSL name. */
  nodeName: string;
  /** CKA_EC_PARAMS: the DER OBJECT IDENTIFIER. */
  params: Buffer;
  /** Bytes of a coordinate (and of d). */
  fieldBytes: number;
  /** Key size in bits, as CK_MECHANISM_INFO counts it. */
  bits: number;
}

export const CURVES: readonly Curve[] = [
  { name: "P-256", nodeName: "prime256v1", params: Buffer.from("06082a8648ce3d030107", "hex"), fieldBytes: 32, bits: 256 }, // 1.2.840.10045.3.1.7
  { name: "P-384", nodeName: "secp384r1", params: Buffer.from("06052b81040022", "hex"), fieldBytes: 48, bits: 384 }, // 1.3.132.0.34
  { name: "P-521", nodeName: "secp521r1", params: Buffer.from("06052b81040023", "hex"), fieldBytes: 66, bits: 521 }, // 1.3.132.0.35
];

/** The curve CKA_EC_PARAMS names: CKR_CURVE_NOT_SUPPORTED for another OID, CKR_DOMAIN_PARAMS_INVALID for anything else. */
export function curveFromParams(params: Buffer): Curve {
  const found = CURVES.find((c) => c.params.equals(params));
  if (found !== undefined) return found;
  const oid = derContent(params, 0x06);
  if (oid !== undefined && oid.length > 0 && (oid[oid.length - 1]! & 0x80) === 0) {
    throw new CkrError(CKR_CURVE_NOT_SUPPORTED, "named curve not supported (P-256, P-384, P-521 are)");
  }
  throw new CkrError(P.CKR_DOMAIN_PARAMS_INVALID, "CKA_EC_PARAMS must be the DER OID of a named curve");
}

/** The curve of an EC KeyObject. */
export function curveOfKey(key: KeyObject): Curve {
  const name = key.asymmetricKeyDetails?.namedCurve;
  const found = CURVES.find((c) => c.nodeName === name);
  if (found === undefined) throw new CkrError(P.CKR_KEY_TYPE_INCONSISTENT, `curve ${String(name)} not supported`);
  return found;
}

/** The uncompressed point 04‖x‖y of an EC key. */
export function ecPoint(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  return Buffer.concat([Buffer.from([0x04]), unb64u(jwk.x), unb64u(jwk.y)]);
}

/**
 * An EC public key from a point: raw (04‖x‖y, or compressed 02/03‖x) or wrapped in a DER
 * OCTET STRING. Throws (a plain Error) for anything that is not a point on the curve.
 */
export function publicKeyFromPoint(curve: Curve, encoded: Buffer): KeyObject {
  const rawLengths = [1 + 2 * curve.fieldBytes, 1 + curve.fieldBytes];
  let point = encoded;
  if (!(rawLengths.includes(encoded.length) && [0x02, 0x03, 0x04].includes(encoded[0]!))) {
    const inner = derContent(encoded, 0x04);
    if (inner === undefined) throw new Error("not an EC point");
    point = inner;
  }
  // convertKey decodes with EC_POINT_oct2point, which refuses points not on the curve.
  const uncompressed = ECDH.convertKey(point, curve.nodeName, undefined, undefined, "uncompressed") as Buffer;
  if (uncompressed.length !== 1 + 2 * curve.fieldBytes) throw new Error("not an EC point");
  const half = 1 + curve.fieldBytes;
  return createPublicKey({
    key: { kty: "EC", crv: curve.name, x: b64u(uncompressed.subarray(1, half)), y: b64u(uncompressed.subarray(half)) },
    format: "jwk",
  });
}

export function spki(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/** RSA modulus length in bits. */
export function modulusBits(key: KeyObject): number {
  return key.asymmetricKeyDetails?.modulusLength ?? 0;
}

/**
 * The attributes a key's material determines, for generation and unwrapping (fixed attributes):
 * class, key type, and the public values — RSA: CKA_MODULUS, CKA_PUBLIC_EXPONENT (and
 * CKA_MODULUS_BITS on the public key); EC: CKA_EC_PARAMS (and CKA_EC_POINT on the public key) —
 * plus CKA_PUBLIC_KEY_INFO.
 */
export function keyAttributes(key: KeyObject, objectClass: number): Map<number, Buffer> {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const fixed = new Map<number, Buffer>([[P.CKA_CLASS, ulong(objectClass)]]);
  if (key.asymmetricKeyType === "rsa") {
    const jwk = publicKey.export({ format: "jwk" });
    fixed.set(P.CKA_KEY_TYPE, ulong(P.CKK_RSA));
    fixed.set(P.CKA_MODULUS, unb64u(jwk.n));
    fixed.set(P.CKA_PUBLIC_EXPONENT, unb64u(jwk.e));
    if (objectClass === P.CKO_PUBLIC_KEY) fixed.set(P.CKA_MODULUS_BITS, ulong(modulusBits(publicKey)));
  } else if (key.asymmetricKeyType === "ec") {
    const curve = curveOfKey(key);
    fixed.set(P.CKA_KEY_TYPE, ulong(P.CKK_EC));
    fixed.set(P.CKA_EC_PARAMS, Buffer.from(curve.params));
    if (objectClass === P.CKO_PUBLIC_KEY) fixed.set(P.CKA_EC_POINT, derOctetString(ecPoint(publicKey)));
  } else {
    throw new CkrError(P.CKR_KEY_TYPE_INCONSISTENT, `key type ${String(key.asymmetricKeyType)} not supported`);
  }
  fixed.set(CKA_PUBLIC_KEY_INFO, spki(publicKey));
  return fixed;
}

/** Checks a caller's template does not contradict the class and key type an operation fixes (CKR_TEMPLATE_INCONSISTENT). */
export function checkAgrees(template: Map<number, Buffer>, fixed: Map<number, Buffer>): void {
  for (const type of [P.CKA_CLASS, P.CKA_KEY_TYPE]) {
    const given = template.get(type);
    const own = fixed.get(type);
    if (given !== undefined && own !== undefined && !given.equals(own)) {
      throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "class or key type disagrees with the key");
    }
  }
}

type AsymmetricMaterial = Extract<ObjectMaterial, { kind: "private" | "public" }>;

/** Material of a private key (and its public half). */
export function privateMaterial(key: KeyObject): AsymmetricMaterial {
  return { kind: "private", key, publicKey: createPublicKey(key) };
}

// C_CreateObject

const RSA_PRIVATE_PARTS = [P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2, P.CKA_EXPONENT_1, P.CKA_EXPONENT_2, P.CKA_COEFFICIENT];

function wipe(attrs: Map<number, Buffer>, types: readonly number[]): void {
  for (const type of types) {
    attrs.get(type)?.fill(0);
    attrs.delete(type);
  }
}

function importRsaPublic(attrs: Map<number, Buffer>): KeyObject {
  const n = integerBytes(attrs.get(P.CKA_MODULUS)!);
  const e = integerBytes(attrs.get(P.CKA_PUBLIC_EXPONENT)!);
  const exponent = bytesToBigInt(e);
  if (exponent < 3n || exponent % 2n === 0n) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "public exponent must be odd and at least 3");
  const key = createPublicKey({ key: { kty: "RSA", n: b64u(n), e: b64u(e) }, format: "jwk" });
  attrs.set(P.CKA_MODULUS_BITS, ulong(modulusBits(key)));
  return key;
}

/**
 * An RSA private key from its attributes: CKA_MODULUS and CKA_PRIVATE_EXPONENT, with either the
 * primes or CKA_PUBLIC_EXPONENT (then n is factored). Given CRT values must agree with the
 * computed ones. SoftHSMv2 also takes a key of n and d alone; OpenSSL cannot use one, so that is
 * CKR_TEMPLATE_INCOMPLETE here.
 */
function importRsaPrivate(attrs: Map<number, Buffer>): KeyObject {
  const value = (type: number): bigint | undefined => {
    const bytes = attrs.get(type);
    return bytes === undefined || bytes.length === 0 ? undefined : bytesToBigInt(bytes);
  };
  const n = value(P.CKA_MODULUS)!;
  const d = value(P.CKA_PRIVATE_EXPONENT);
  if (d === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_PRIVATE_EXPONENT is required");
  let e = value(P.CKA_PUBLIC_EXPONENT);
  let p = value(P.CKA_PRIME_1);
  let q = value(P.CKA_PRIME_2);
  const inconsistent = (why: string): CkrError => new CkrError(P.CKR_TEMPLATE_INCONSISTENT, why);
  if (n < 3n || d < 1n || d >= n) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "modulus or private exponent out of range");
  if (p !== undefined && q !== undefined) {
    if (p * q !== n || p < 2n || q < 2n) throw inconsistent("CKA_PRIME_1 × CKA_PRIME_2 is not CKA_MODULUS");
    const lambda = carmichael(p, q);
    if (e === undefined) {
      if (gcd(d, lambda) !== 1n) throw inconsistent("private exponent not invertible");
      e = modInverse(d, lambda);
    } else if ((e * d) % lambda !== 1n) {
      throw inconsistent("public and private exponents are not a pair");
    }
  } else if (p === undefined && q === undefined) {
    if (e === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "an RSA private key needs CKA_PUBLIC_EXPONENT or both primes");
    const factors = rsaFactor(n, e, d);
    if (factors === undefined) throw inconsistent("the exponents are not a key pair for this modulus");
    ({ p, q } = factors);
  } else {
    throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "give both CKA_PRIME_1 and CKA_PRIME_2, or neither");
  }
  const crt = rsaCrt(d, p, q);
  for (const [type, computed] of [[P.CKA_EXPONENT_1, crt.dp], [P.CKA_EXPONENT_2, crt.dq], [P.CKA_COEFFICIENT, crt.qi]] as const) {
    const given = value(type);
    if (given !== undefined && given !== computed) throw inconsistent("CRT values disagree with the primes");
  }
  const jwk: JsonWebKey = { kty: "RSA" };
  for (const [field, v] of [["n", n], ["e", e], ["d", d], ["p", p], ["q", q], ["dp", crt.dp], ["dq", crt.dq], ["qi", crt.qi]] as const) {
    jwk[field] = b64u(bigIntToBytes(v));
  }
  const key = createPrivateKey({ key: jwk, format: "jwk" });
  if (!attrs.has(P.CKA_PUBLIC_EXPONENT)) attrs.set(P.CKA_PUBLIC_EXPONENT, bigIntToBytes(e));
  return key;
}

function importEcPrivate(attrs: Map<number, Buffer>): KeyObject {
  const curve = curveFromParams(attrs.get(P.CKA_EC_PARAMS)!);
  const value = attrs.get(P.CKA_VALUE);
  if (value === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required");
  const d = bytesToBigInt(value);
  if (d < 1n || d >= curveOrder(curve.nodeName)) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "EC private value out of range");
  const scalar = bigIntToBytes(d, curve.fieldBytes);
  try {
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(scalar);
    const point = ecdh.getPublicKey();
    const half = 1 + curve.fieldBytes;
    return createPrivateKey({
      key: { kty: "EC", crv: curve.name, d: b64u(scalar), x: b64u(point.subarray(1, half)), y: b64u(point.subarray(half)) },
      format: "jwk",
    });
  } finally {
    scalar.fill(0);
  }
}

/**
 * ModuleState.asymmetricImport: the material of a public or private key created with
 * C_CreateObject from `attrs` (already checked against the attribute table). Private values move
 * out of `attrs` into the KeyObject (and the caller's copies are wiped); attributes the key
 * determines (CKA_MODULUS_BITS, a missing CKA_PUBLIC_EXPONENT, the canonical CKA_EC_POINT,
 * CKA_PUBLIC_KEY_INFO) are filled in.
 */
export function importAsymmetricKey(attrs: Map<number, Buffer>): ObjectMaterial {
  const objectClass = readUlong(attrs.get(P.CKA_CLASS)!);
  const keyType = readUlong(attrs.get(P.CKA_KEY_TYPE)!);
  const isPrivate = objectClass === P.CKO_PRIVATE_KEY;
  let material: AsymmetricMaterial;
  try {
    if (keyType === P.CKK_RSA) {
      material = isPrivate ? privateMaterial(importRsaPrivate(attrs)) : { kind: "public", key: importRsaPublic(attrs) };
    } else if (keyType === P.CKK_EC) {
      if (isPrivate) {
        material = privateMaterial(importEcPrivate(attrs));
      } else {
        const curve = curveFromParams(attrs.get(P.CKA_EC_PARAMS)!);
        const key = publicKeyFromPoint(curve, attrs.get(P.CKA_EC_POINT)!);
        attrs.set(P.CKA_EC_POINT, derOctetString(ecPoint(key)));
        material = { kind: "public", key };
      }
    } else {
      throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "key type not supported for import");
    }
  } catch (error) {
    if (error instanceof CkrError) throw error;
    throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, error instanceof Error ? error.message : String(error));
  } finally {
    wipe(attrs, isPrivate ? (keyType === P.CKK_RSA ? RSA_PRIVATE_PARTS : [P.CKA_VALUE]) : []);
  }
  const info = spki(material.kind === "private" ? material.publicKey : material.key);
  const given = attrs.get(CKA_PUBLIC_KEY_INFO);
  if (given === undefined || given.length === 0) attrs.set(CKA_PUBLIC_KEY_INFO, info);
  else if (!given.equals(info)) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "CKA_PUBLIC_KEY_INFO disagrees with the key");
  return material;
}

// Private keys under a wrapping key (SoftHSMv2: PKCS#8 PrivateKeyInfo DER)

/** The PKCS#8 PrivateKeyInfo DER of a private key object; CKR_KEY_NOT_WRAPPABLE for anything else. The caller wipes it. */
export function privateKeyToPkcs8(object: P11Object): Buffer {
  if (object.material.kind !== "private") throw new CkrError(P.CKR_KEY_NOT_WRAPPABLE, "not a private key");
  return object.material.key.export({ type: "pkcs8", format: "der" });
}

/**
 * A private key from unwrapped PKCS#8 DER, for a caller's template that names CKO_PRIVATE_KEY and
 * CKK_RSA or CKK_EC. DER that does not parse, or holds another kind of key (or an unsupported
 * curve), is CKR_WRAPPED_KEY_INVALID.
 */
export function privateKeyFromPkcs8(der: Buffer, template: Map<number, Buffer>): NewKey {
  // Footnote 6: what the wrapped key determines may not be given.
  refuseGiven(template, [P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT, P.CKA_EC_PARAMS]);
  const keyType = readUlong(template.get(P.CKA_KEY_TYPE)!);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } catch {
    throw new CkrError(P.CKR_WRAPPED_KEY_INVALID, "not a PKCS#8 private key");
  }
  const expected = keyType === P.CKK_RSA ? "rsa" : keyType === P.CKK_EC ? "ec" : undefined;
  if (expected === undefined) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "private keys unwrap as CKK_RSA or CKK_EC");
  if (key.asymmetricKeyType !== expected) throw new CkrError(P.CKR_WRAPPED_KEY_INVALID, "wrapped key is not of the template's key type");
  let fixed: Map<number, Buffer>;
  try {
    fixed = keyAttributes(key, P.CKO_PRIVATE_KEY);
  } catch {
    throw new CkrError(P.CKR_WRAPPED_KEY_INVALID, "wrapped key's curve is not supported");
  }
  checkAgrees(template, fixed);
  return { fixed, material: privateMaterial(key) };
}

// Templates of key-pair generation

/** CKR_TEMPLATE_INCONSISTENT when the template names another class or key type. */
export function expectClassAndType(template: Map<number, Buffer>, objectClass: number, keyType: number): void {
  checkAgrees(template, new Map([[P.CKA_CLASS, ulong(objectClass)], [P.CKA_KEY_TYPE, ulong(keyType)]]));
}

/** CKR_ATTRIBUTE_READ_ONLY for attributes the key determines (footnote 4), as buildAttributes reports them. */
export function refuseGiven(template: Map<number, Buffer>, types: readonly number[]): void {
  for (const type of types) {
    if (template.has(type)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, `attribute 0x${type.toString(16)} may not be specified here`);
  }
}

// Hash-then-sign through node:crypto (OpenSSL), single- and multi-part.

export interface SignOptions {
  padding?: number;
  saltLength?: number;
  dsaEncoding?: "ieee-p1363";
}

/** C_Sign*: the input is hashed as it comes, then signed with `key`. */
export function hashedSign(hash: string, key: KeyObject, options: SignOptions, signatureLength: number): SignOperation {
  const signer = createSign(hash);
  return {
    update: (input) => void signer.update(input),
    final: () => signer.sign({ key, ...options }),
    length: () => signatureLength,
  };
}

/** C_Verify*: a signature of another length is CKR_SIGNATURE_LEN_RANGE, a wrong one false. */
export function hashedVerify(hash: string, key: KeyObject, options: SignOptions, signatureLength: number): VerifyOperation {
  const verifier = createVerify(hash);
  return {
    update: (input) => void verifier.update(input),
    final(signature) {
      if (signature.length !== signatureLength) throw new CkrError(P.CKR_SIGNATURE_LEN_RANGE, `signature must be ${signatureLength} bytes`);
      try {
        return verifier.verify({ key, ...options }, signature);
      } catch {
        return false;
      }
    },
  };
}

/** The KeyObject of a key object of this kind; CKR_KEY_TYPE_INCONSISTENT otherwise. */
export function keyObject(object: P11Object, kind: "private" | "public"): KeyObject {
  const material = object.material;
  if (kind === "private" && material.kind === "private") return material.key;
  if (kind === "public" && material.kind === "public") return material.key;
  throw new CkrError(P.CKR_KEY_TYPE_INCONSISTENT, `needs a ${kind} key`);
}
