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
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
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
 * What one pass over a string's UTF-16 units finds, as bit flags. The strings here are short and
 * pass through on every request, so one loop replaces three regular expressions and the native
 * UTF-8 length and write calls (which the ASCII case, by far the common one, does not need).
 */
const LONE_SURROGATE = 1;
const NON_ASCII = 2;
const JSON_ESCAPE = 4;

/**
 * LONE_SURROGATE: a surrogate unit that is not half of a pair, which UTF-8 cannot encode (Buffer
 * would silently replace it with U+FFFD). NON_ASCII: some unit is 0x80 or above. JSON_ESCAPE: some
 * unit that JSON.stringify escapes in a well-formed string (", \ and the controls below U+0020).
 */
function scan(text: string): number {
  let found = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) {
      if (unit < 0x20 || unit === 0x22 || unit === 0x5c) found |= JSON_ESCAPE;
      continue;
    }
    found |= NON_ASCII;
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else if (unit >= 0xd800 && unit <= 0xdfff) found |= LONE_SURROGATE;
  }
  return found;
}

/** UTF-8 bytes of a well-formed string, given its scan. */
function utf8Length(text: string, found: number): number {
  return (found & NON_ASCII) === 0 ? text.length : Buffer.byteLength(text, "utf8");
}

/** Writes a well-formed string as UTF-8 at out[at..]; returns the bytes written (room is the caller's to ensure). */
function writeUtf8(out: Buffer, text: string, at: number): number {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return out.write(text, at, "utf8");
    out[at + i] = unit;
  }
  return length;
}

/** A u32, big-endian, at out[at..at+4) (lengths computed here, so Buffer's argument checks are not needed); returns at + 4. */
function writeU32(out: Buffer, at: number, value: number): number {
  out[at] = value >>> 24;
  out[at + 1] = value >>> 16;
  out[at + 2] = value >>> 8;
  out[at + 3] = value;
  return at + 4;
}

/**
 * The AAD string's UTF-8 length, after validation. Errors: KMS.0308 (not a string, lone
 * surrogate, over MAX_AAD_BYTES).
 */
function aadLength(aad: unknown): number {
  if (aad === undefined) return 0;
  const found = typeof aad === "string" ? scan(aad) : undefined;
  if (found === undefined || (found & LONE_SURROGATE) !== 0) throw new KmsError("KMS.0308", "additional_authenticated_data must be a well-formed string");
  const length = utf8Length(aad as string, found);
  if (length > MAX_AAD_BYTES) throw new KmsError("KMS.0308", `additional_authenticated_data is ${length} bytes, more than ${MAX_AAD_BYTES}`);
  return length;
}

/** A UTF-16 surrogate unit, paired or not (the only units whose order differs from UTF-8's). */
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Orders keys as their UTF-8 bytes order. Without surrogates, UTF-16 code-unit order is code-point
 * order, which is UTF-8 byte order; with them (characters beyond U+FFFF), the bytes are compared.
 */
function byUtf8(a: ContextPair, b: ContextPair): number {
  if (hasSurrogate(a) || hasSurrogate(b)) return Buffer.compare(Buffer.from(a.key, "utf8"), Buffer.from(b.key, "utf8"));
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function hasSurrogate(pair: ContextPair): boolean {
  return pair.keyBytes !== pair.key.length && ANY_SURROGATE.test(pair.key);
}

/** JSON text length of one string, without building it when no character needs escaping. */
function jsonLength(text: string, found: number): number {
  return (found & JSON_ESCAPE) !== 0 ? JSON.stringify(text).length : text.length + 2;
}

/** A context pair with the UTF-8 lengths its encoding needs. */
interface ContextPair {
  key: string;
  value: string;
  keyBytes: number;
  valueBytes: number;
}

const NO_PAIRS: readonly ContextPair[] = [];

/**
 * The context's pairs, validated and sorted by key bytes. Errors: KMS.0208 (not a plain object, a
 * value that is not a string, an empty key, a lone surrogate, JSON text over MAX_CONTEXT_CHARS).
 */
function contextPairs(context: unknown): readonly ContextPair[] {
  if (context === undefined) return NO_PAIRS;
  if (typeof context !== "object" || context === null || Array.isArray(context)) {
    throw new KmsError("KMS.0208", "encryption_context must be an object");
  }
  const prototype = Object.getPrototypeOf(context) as unknown;
  if (prototype !== Object.prototype && prototype !== null) throw new KmsError("KMS.0208", "encryption_context must be a plain object");
  const keys = Object.keys(context);
  const pairs: ContextPair[] = new Array<ContextPair>(keys.length);
  // The object's JSON text: braces, a colon per pair, commas between pairs, the strings.
  let chars = 2 + Math.max(0, keys.length - 1);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = (context as Record<string, unknown>)[key];
    if (key.length === 0) throw new KmsError("KMS.0208", "encryption_context keys must not be empty");
    if (typeof value !== "string") throw new KmsError("KMS.0208", "encryption_context values must be strings");
    const keyFound = scan(key);
    const valueFound = scan(value);
    if (((keyFound | valueFound) & LONE_SURROGATE) !== 0) throw new KmsError("KMS.0208", "encryption_context must be well-formed Unicode");
    chars += jsonLength(key, keyFound) + 1 + jsonLength(value, valueFound);
    pairs[i] = { key, value, keyBytes: utf8Length(key, keyFound), valueBytes: utf8Length(value, valueFound) };
  }
  if (chars > MAX_CONTEXT_CHARS) throw new KmsError("KMS.0208", `encryption_context is ${chars} characters, more than ${MAX_CONTEXT_CHARS}`);
  return sortPairs(pairs);
}

/**
 * Sorts in place by byUtf8. A context has a handful of pairs, for which an insertion sort costs a
 * fraction of Array.prototype.sort's setup; larger ones (the JSON limit allows about a thousand)
 * go to the built-in sort.
 */
function sortPairs(pairs: ContextPair[]): ContextPair[] {
  if (pairs.length > 16) return pairs.sort(byUtf8);
  for (let i = 1; i < pairs.length; i++) {
    const pair = pairs[i]!;
    let j = i - 1;
    for (; j >= 0 && byUtf8(pairs[j]!, pair) > 0; j--) pairs[j + 1] = pairs[j]!;
    pairs[j + 1] = pair;
  }
  return pairs;
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
  for (const pair of pairs) length += 8 + pair.keyBytes + pair.valueBytes;
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < prefix; i++) out[i] = 0;
  out[prefix] = purposeByte;
  let at = writeU32(out, prefix + 1, aadBytes);
  if (aad !== undefined) at += writeUtf8(out, aad, at);
  at = writeU32(out, at, pairs.length);
  for (const pair of pairs) {
    at = writeU32(out, at, pair.keyBytes);
    at += writeUtf8(out, pair.key, at);
    at = writeU32(out, at, pair.valueBytes);
    at += writeUtf8(out, pair.value, at);
  }
  if (at !== length) throw new Error(`bound context encoding wrote ${at} of ${length} bytes`);
  return out;
}
