/**
 * Attribute values: what type each CKA_ holds, how a pkcs11js caller's value (number, boolean,
 * string, Buffer, Date) is checked and stored, and how it is returned (always a Buffer, as
 * pkcs11js returns them: CK_ULONG as 8 bytes little-endian, CK_BBOOL as one byte, dates as
 * ASCII YYYYMMDD).
 */
import { CkrError } from "../errors.js";
import { CKA_PUBLIC_KEY_INFO } from "../extra-constants.js";
import { pkcs11, type Attribute, type Template } from "../pkcs11.js";

export type AttributeKind = "bool" | "ulong" | "bytes" | "string" | "date" | "template" | "mechanisms";

const P = pkcs11;

const KINDS: ReadonlyArray<[AttributeKind, number[]]> = [
  ["bool", [
    P.CKA_TOKEN, P.CKA_PRIVATE, P.CKA_MODIFIABLE, P.CKA_COPYABLE, P.CKA_DESTROYABLE, P.CKA_TRUSTED,
    P.CKA_SENSITIVE, P.CKA_ENCRYPT, P.CKA_DECRYPT, P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_SIGN, P.CKA_SIGN_RECOVER,
    P.CKA_VERIFY, P.CKA_VERIFY_RECOVER, P.CKA_DERIVE, P.CKA_EXTRACTABLE, P.CKA_LOCAL, P.CKA_NEVER_EXTRACTABLE,
    P.CKA_ALWAYS_SENSITIVE, P.CKA_WRAP_WITH_TRUSTED, P.CKA_ALWAYS_AUTHENTICATE,
  ]],
  ["ulong", [
    P.CKA_CLASS, P.CKA_KEY_TYPE, P.CKA_VALUE_LEN, P.CKA_MODULUS_BITS, P.CKA_KEY_GEN_MECHANISM,
    P.CKA_CERTIFICATE_TYPE, P.CKA_CERTIFICATE_CATEGORY,
  ]],
  ["string", [P.CKA_LABEL, P.CKA_APPLICATION]],
  ["date", [P.CKA_START_DATE, P.CKA_END_DATE]],
  ["template", [P.CKA_WRAP_TEMPLATE, P.CKA_UNWRAP_TEMPLATE]],
  ["mechanisms", [P.CKA_ALLOWED_MECHANISMS]],
  ["bytes", [
    P.CKA_VALUE, P.CKA_OBJECT_ID, P.CKA_ID, P.CKA_SUBJECT, P.CKA_ISSUER, P.CKA_SERIAL_NUMBER, P.CKA_CHECK_VALUE,
    P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT, P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2, P.CKA_EXPONENT_1,
    P.CKA_EXPONENT_2, P.CKA_COEFFICIENT, P.CKA_EC_PARAMS, P.CKA_EC_POINT, CKA_PUBLIC_KEY_INFO,
  ]],
];

const kindOf = new Map<number, AttributeKind>();
for (const [kind, types] of KINDS) for (const type of types) if (type !== undefined) kindOf.set(type, kind);

/** The kind of a known attribute type, or undefined for one this token does not know. */
export function attributeKind(type: number): AttributeKind | undefined {
  return kindOf.get(type);
}

export const TRUE = Buffer.from([1]);
export const FALSE = Buffer.from([0]);

// CK_ULONG values as two 32-bit halves: BigInt conversions cost more than the rest of a lookup
// on the hot path (handles and CKA_CLASS / CKA_KEY_TYPE are read on every call).
/**
 * `bytes` in memory of its own. Attribute values and handles live as long as their object — a
 * cached key, a token object — and a small Buffer cut from Node's shared 8 KiB pool keeps the
 * whole pool alive with it: a thousand cached keys held megabytes of pools that way.
 */
export function retained(bytes: Buffer): Buffer {
  if (bytes === TRUE || bytes === FALSE || (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length)) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

/**
 * Stored attribute values are never written in place (C_GetAttributeValue hands out copies), so
 * one Buffer serves every object with the same small CK_ULONG: class, key type, length and
 * mechanism of every key made. Each own Buffer costs ~200 bytes of heap and native memory for its
 * 8 bytes, and an unwrapped key holds several for as long as the KMS caches it (measured: 4 % of
 * what a cold-cache decrypt leaves for the major collector). Below 8192, which covers the
 * standard constants and key lengths, the table stays small whatever callers send.
 */
const INTERNED_BELOW = 0x2000;
const internedUlongs: Array<Buffer | undefined> = [];

export function ulong(value: number): Buffer {
  if (value < INTERNED_BELOW && Number.isInteger(value) && value >= 0) return (internedUlongs[value] ??= ownUlong(value));
  return ownUlong(value);
}

function ownUlong(value: number): Buffer {
  const out = Buffer.allocUnsafeSlow(8);
  out.writeUInt32LE(value % 0x100000000, 0);
  out.writeUInt32LE(Math.floor(value / 0x100000000), 4);
  return out;
}

/** A CK_ULONG as a number; values above 2^53 (never valid here) come back inexact but huge. */
export function readUlong(value: Buffer): number {
  return value.readUInt32LE(4) * 0x100000000 + value.readUInt32LE(0);
}

export function readBool(value: Buffer | undefined): boolean {
  return value !== undefined && value.length === 1 && value[0] !== 0;
}

const invalid = (type: number, why: string): CkrError =>
  new CkrError(pkcs11.CKR_ATTRIBUTE_VALUE_INVALID, `attribute 0x${type.toString(16)}: ${why}`);

/**
 * Checks a caller's value for attribute `type` and returns its stored form. Throws
 * CKR_ATTRIBUTE_TYPE_INVALID for unknown types, CKR_ATTRIBUTE_VALUE_INVALID for values of the
 * wrong shape (as a real token does when pkcs11js passes, say, a CK_ULONG for a CK_BBOOL).
 */
export function encodeValue(type: number, value: Attribute["value"] | unknown): Buffer {
  return retained(encodeValueBytes(type, value));
}

function encodeValueBytes(type: number, value: Attribute["value"] | unknown): Buffer {
  const kind = attributeKind(type);
  if (kind === undefined) throw new CkrError(pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)}`);
  if (value === undefined || value === null) throw invalid(type, "no value");
  switch (kind) {
    case "bool":
      if (typeof value === "boolean") return value ? TRUE : FALSE;
      if (Buffer.isBuffer(value) && value.length === 1) return value[0] === 0 ? FALSE : value[0] === 1 ? TRUE : Buffer.from(value);
      throw invalid(type, "expects a CK_BBOOL");
    case "ulong":
      if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return ulong(value);
      if (Buffer.isBuffer(value) && value.length === 8) return value.readUInt32LE(4) === 0 ? ulong(value.readUInt32LE(0)) : Buffer.from(value);
      throw invalid(type, "expects a CK_ULONG");
    case "string":
      if (typeof value === "string") return Buffer.from(value, "utf8");
      if (Buffer.isBuffer(value)) return Buffer.from(value);
      throw invalid(type, "expects a UTF-8 string");
    case "date": {
      if (value instanceof Date) return Buffer.from(value.toISOString().slice(0, 10).replace(/-/g, ""), "ascii");
      const bytes = typeof value === "string" ? Buffer.from(value, "ascii") : Buffer.isBuffer(value) ? value : undefined;
      if (bytes !== undefined && (bytes.length === 0 || (bytes.length === 8 && /^\d{8}$/.test(bytes.toString("latin1"))))) {
        return Buffer.from(bytes);
      }
      throw invalid(type, "expects a CK_DATE (YYYYMMDD) or nothing");
    }
    case "template":
      if (Array.isArray(value)) return encodeTemplate(value as Template);
      if (Buffer.isBuffer(value)) {
        decodeTemplate(value, type); // validates
        return Buffer.from(value);
      }
      throw invalid(type, "expects a template (array of attributes)");
    case "mechanisms": {
      if (Array.isArray(value) && value.every((m) => typeof m === "number" && Number.isInteger(m) && m >= 0)) {
        return Buffer.concat((value as number[]).map(ulong));
      }
      if (Buffer.isBuffer(value) && value.length % 8 === 0) return Buffer.from(value);
      throw invalid(type, "expects a list of CK_MECHANISM_TYPE");
    }
    case "bytes":
      if (Buffer.isBuffer(value)) return Buffer.from(value);
      if (value instanceof Uint8Array) return Buffer.from(value);
      if (typeof value === "string") return Buffer.from(value, "utf8");
      throw invalid(type, "expects a byte string");
  }
}

/**
 * Nested templates (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE) are stored in a canonical form:
 * for each attribute, sorted by type, [type u64 LE][length u64 LE][value]. pkcs11js cannot pass
 * nested templates to a real module, so this form is ours; it lets templates be compared
 * byte-for-byte as SoftHSMv2 does.
 */
export function encodeTemplate(template: Template): Buffer {
  const entries = template.map((a) => {
    if (typeof a !== "object" || a === null || typeof a.type !== "number") {
      throw new CkrError(pkcs11.CKR_TEMPLATE_INCONSISTENT, "nested template entry is not an attribute");
    }
    return { type: a.type, value: encodeValue(a.type, a.value) };
  });
  entries.sort((x, y) => x.type - y.type);
  return Buffer.concat(entries.flatMap((e) => [ulong(e.type), ulong(e.value.length), e.value]));
}

export function decodeTemplate(encoded: Buffer, owner = 0): Map<number, Buffer> {
  const result = new Map<number, Buffer>();
  let offset = 0;
  while (offset < encoded.length) {
    if (offset + 16 > encoded.length) throw invalid(owner, "truncated nested template");
    const type = Number(encoded.readBigUInt64LE(offset));
    const length = Number(encoded.readBigUInt64LE(offset + 8));
    offset += 16;
    if (offset + length > encoded.length) throw invalid(owner, "truncated nested template");
    result.set(type, encoded.subarray(offset, offset + length));
    offset += length;
  }
  return result;
}

/** Decodes a caller's template into stored forms, refusing duplicates (CKR_TEMPLATE_INCONSISTENT). */
export function decodeCallerTemplate(template: unknown): Map<number, Buffer> {
  if (!Array.isArray(template)) throw new CkrError(pkcs11.CKR_ARGUMENTS_BAD, "template must be an array");
  const result = new Map<number, Buffer>();
  for (const attribute of template as unknown[]) {
    if (typeof attribute !== "object" || attribute === null || typeof (attribute as Attribute).type !== "number") {
      throw new CkrError(pkcs11.CKR_ARGUMENTS_BAD, "template entries must be { type, value }");
    }
    const { type, value } = attribute as Attribute;
    if (result.has(type)) throw new CkrError(pkcs11.CKR_TEMPLATE_INCONSISTENT, `attribute 0x${type.toString(16)} given twice`);
    result.set(type, encodeValue(type, value));
  }
  return result;
}
