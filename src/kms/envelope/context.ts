/**
 * The canonical encoding of what a caller binds into a ciphertext besides the key: Huawei's
 * `additional_authenticated_data` string (KMS v1.0, ≤ 128 bytes) and the OTC/AWS-style
 * `encryption_context` object (string keys to string values, ≤ 8192 characters). Together with the
 * blob header it is the AES-GCM additional data (docs/ciphertext-format.md §3), so decrypting needs
 * exactly the same AAD string and the same context — the order of the context's pairs aside.
 *
 * Layout (every length is a u32, big-endian; strings are UTF-8):
 *
 *     purpose (1 byte)
 *     aad length | aad bytes
 *     pair count | for each pair, by key in ascending byte order:
 *                  key length | key bytes | value length | value bytes
 *
 * Length prefixes make the encoding injective: no two different inputs give the same bytes, so no
 * context can be made to collide with another by moving separators. Keys are sorted by their UTF-8
 * bytes (not JavaScript's UTF-16 order), which any implementation can reproduce. Strings are taken
 * exactly as given — no Unicode normalization, case-sensitive — as AWS KMS treats its encryption
 * context. An absent AAD is the empty string and an absent context the empty object: a ciphertext
 * made without either opens without either, or with "" / {}.
 *
 * The purpose byte keeps the KMS's two kinds of ciphertext apart (see CiphertextPurpose).
 */
import { KmsError } from "../errors.js";

/** Bytes of Huawei's `additional_authenticated_data`, at most (Huawei KMS v1.0 encrypt-data / create-datakey). */
export const MAX_AAD_BYTES = 128;
/** Characters of the `encryption_context` object's JSON text, at most (OTC KMS API: "maximum length of 8192 characters"). */
export const MAX_CONTEXT_CHARS = 8192;

/**
 * What a ciphertext protects, bound into its AAD so that one kind cannot be presented as the other:
 * "data" for encrypt-data (opened only by decrypt-data), "datakey" for create-datakey and
 * encrypt-datakey (opened only by decrypt-datakey). A principal granted decrypt-data alone can
 * therefore never turn a data key's ciphertext into the data key.
 */
export type CiphertextPurpose = "data" | "datakey";

const PURPOSE_BYTE: Readonly<Record<CiphertextPurpose, number>> = { data: 0x01, datakey: 0x02 };

/** What the caller binds into a ciphertext, as the API received it. */
export interface BoundContext {
  /** Huawei v1.0 `additional_authenticated_data`: at most MAX_AAD_BYTES bytes of UTF-8. */
  additionalAuthenticatedData?: string | undefined;
  /** OTC/AWS `encryption_context`: string → string; its JSON text at most MAX_CONTEXT_CHARS characters. */
  encryptionContext?: Readonly<Record<string, string>> | undefined;
}

/**
 * A lone surrogate cannot be encoded as UTF-8 (Buffer.from would silently replace it with U+FFFD).
 * In a `u` regular expression a surrogate pair is one code point outside this range, so the class
 * matches lone surrogates only.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function wellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/**
 * The AAD string's UTF-8 length, after validation. Errors: KMS.0308 (not a string, lone
 * surrogate, over MAX_AAD_BYTES).
 */
function aadLength(aad: unknown): number {
  if (aad === undefined) return 0;
  if (typeof aad !== "string" || !wellFormed(aad)) throw new KmsError("KMS.0308", "additional_authenticated_data must be a well-formed string");
  const length = Buffer.byteLength(aad, "utf8");
  if (length > MAX_AAD_BYTES) throw new KmsError("KMS.0308", `additional_authenticated_data is ${length} bytes, more than ${MAX_AAD_BYTES}`);
  return length;
}

/** A UTF-16 surrogate unit, paired or not (the only units whose order differs from UTF-8's). */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Orders keys as their UTF-8 bytes order. Without surrogates, UTF-16 code-unit order is code-point
 * order, which is UTF-8 byte order; with them (characters beyond U+FFFF), the bytes are compared.
 */
function byUtf8(a: [string, string], b: [string, string]): number {
  if (ANY_SURROGATE.test(a[0]) || ANY_SURROGATE.test(b[0])) return Buffer.compare(Buffer.from(a[0], "utf8"), Buffer.from(b[0], "utf8"));
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** JSON text length of one string, without building it when no character needs escaping. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029]/u;
function jsonLength(text: string): number {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text).length : text.length + 2;
}

/**
 * The context's pairs, validated and sorted by key bytes. Errors: KMS.0208 (not a plain object, a
 * value that is not a string, an empty key, a lone surrogate, JSON text over MAX_CONTEXT_CHARS).
 */
function contextPairs(context: unknown): Array<[string, string]> {
  if (context === undefined) return [];
  if (typeof context !== "object" || context === null || Array.isArray(context)) {
    throw new KmsError("KMS.0208", "encryption_context must be an object");
  }
  const prototype = Object.getPrototypeOf(context) as unknown;
  if (prototype !== Object.prototype && prototype !== null) throw new KmsError("KMS.0208", "encryption_context must be a plain object");
  const pairs = Object.entries(context as Record<string, unknown>) as Array<[string, string]>;
  // The object's JSON text: braces, a colon per pair, commas between pairs, the strings.
  let chars = 2 + Math.max(0, pairs.length - 1);
  for (const [key, value] of pairs) {
    if (key.length === 0) throw new KmsError("KMS.0208", "encryption_context keys must not be empty");
    if (typeof value !== "string") throw new KmsError("KMS.0208", "encryption_context values must be strings");
    if (!wellFormed(key) || !wellFormed(value)) throw new KmsError("KMS.0208", "encryption_context must be well-formed Unicode");
    chars += jsonLength(key) + 1 + jsonLength(value);
  }
  if (chars > MAX_CONTEXT_CHARS) throw new KmsError("KMS.0208", `encryption_context is ${chars} characters, more than ${MAX_CONTEXT_CHARS}`);
  return pairs.sort(byUtf8);
}

/**
 * The canonical encoding of a purpose, an AAD string and an encryption context (layout above).
 * Validates both inputs first; errors are KmsErrors with KMS.0308 (AAD) or KMS.0208 (context).
 */
export function encodeBoundContext(purpose: CiphertextPurpose, bound: BoundContext = {}): Buffer {
  return encodeBoundContextAfter(0, purpose, bound);
}

/**
 * encodeBoundContext, written after `prefix` bytes that are left for the caller to fill (the blob
 * header), so that the GCM additional data is built in one buffer.
 */
export function encodeBoundContextAfter(prefix: number, purpose: CiphertextPurpose, bound: BoundContext = {}): Buffer {
  const purposeByte = PURPOSE_BYTE[purpose];
  if (purposeByte === undefined) throw new KmsError("KMS.0308", `unknown ciphertext purpose ${String(purpose)}`);
  const aad = bound.additionalAuthenticatedData;
  const aadBytes = aadLength(aad);
  const pairs = contextPairs(bound.encryptionContext);
  let length = prefix + 1 + 4 + aadBytes + 4;
  for (const [key, value] of pairs) length += 8 + Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  const out = Buffer.allocUnsafe(length);
  out.fill(0, 0, prefix);
  let at = out.writeUInt8(purposeByte, prefix);
  at = out.writeUInt32BE(aadBytes, at);
  if (aad !== undefined) at += out.write(aad, at, "utf8");
  at = out.writeUInt32BE(pairs.length, at);
  for (const [key, value] of pairs) {
    const keyAt = at;
    at += 4;
    at += out.write(key, at, "utf8");
    out.writeUInt32BE(at - keyAt - 4, keyAt);
    const valueAt = at;
    at += 4;
    at += out.write(value, at, "utf8");
    out.writeUInt32BE(at - valueAt - 4, valueAt);
  }
  if (at !== length) throw new Error(`bound context encoding wrote ${at} of ${length} bytes`);
  return out;
}
