/**
 * Tags on keys: `{key, value}` pairs, at most `tagsPerKey` per key (config.ts; Huawei 10). Field
 * rules from Huawei (OTC api-ref adding_a_cmk_tag.rst, "Adding a CMK Tag"; shared/reference/
 * kms-apis.md §1.2): a tag key of 1–36 Unicode characters, a value of 0–43, neither holding ASCII
 * 0–31 nor any of `* < > \ =`. Lengths count characters (code points), not UTF-16 units, so a
 * character outside the BMP counts once. Setting a key that exists replaces its value (no new
 * tag). Errors: KMS.0411 / KMS.0410 for lengths, KMS.0406 / KMS.0405 for what is not a string of
 * allowed characters, KMS.0401 for an empty batch, KMS.0409 when a key would have too many.
 */
import { KmsError } from "./errors.js";

export const MAX_TAG_KEY_CHARS = 36;
export const MAX_TAG_VALUE_CHARS = 43;

/**
 * Huawei's forbidden characters, plus DEL and lone surrogates: a lone surrogate is no Unicode
 * character, and UTF-8 (the store's encoding) would keep it only as U+FFFD, another tag.
 */
const FORBIDDEN = /[\u0000-\u001f\u007f*<>\\=]|\p{Surrogate}/u;
/** What hsmkit refused before Huawei's character rule was applied: a tag to delete may hold the rest. */
const CONTROL = /[\u0000-\u001f\u007f]/u;

/** Unicode characters in a well-formed string. */
function characters(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A tag key to set: 1..36 characters, none forbidden. */
export function checkTagKey(key: unknown): string {
  if (typeof key !== "string" || FORBIDDEN.test(key)) throw new KmsError("KMS.0406", "a tag key is a string without ASCII 0-31 and * < > \\ =");
  return checkTagKeyLength(key);
}

/** KMS.0411 unless a tag key is 1..36 characters. */
function checkTagKeyLength(key: string): string {
  const length = characters(key);
  if (length < 1 || length > MAX_TAG_KEY_CHARS) throw new KmsError("KMS.0411", `a tag key is 1..${MAX_TAG_KEY_CHARS} characters`);
  return key;
}

/** A tag value: 0..43 characters, none forbidden. */
export function checkTagValue(value: unknown): string {
  if (typeof value !== "string" || FORBIDDEN.test(value)) throw new KmsError("KMS.0405", "a tag value is a string without ASCII 0-31 and * < > \\ =");
  if (characters(value) > MAX_TAG_VALUE_CHARS) throw new KmsError("KMS.0410", `a tag value is 0..${MAX_TAG_VALUE_CHARS} characters`);
  return value;
}

/**
 * The key of a tag to delete: a string of 1..36 characters without control characters. Laxer than
 * checkTagKey on purpose, so that a tag set before the character rule can still be removed.
 */
export function checkTagKeyToDelete(key: unknown): string {
  if (typeof key !== "string" || CONTROL.test(key)) throw new KmsError("KMS.0406", "a tag key is a string without control characters");
  return checkTagKeyLength(key);
}

/** A non-empty list of tags to set (keys unique; a repeated key keeps its last value). */
export function checkTags(tags: unknown): Array<{ key: string; value: string }> {
  if (!Array.isArray(tags) || tags.length === 0) throw new KmsError("KMS.0401", "the tag list must not be empty");
  const byKey = new Map<string, string>();
  for (const tag of tags as unknown[]) {
    if (typeof tag !== "object" || tag === null) throw new KmsError("KMS.0406", "a tag is an object {key, value}");
    const { key, value } = tag as { key?: unknown; value?: unknown };
    byKey.set(checkTagKey(key), checkTagValue(value));
  }
  return [...byKey].map(([key, value]) => ({ key, value }));
}

/** A non-empty list of tag keys to delete. */
export function checkTagKeys(tags: unknown): string[] {
  if (!Array.isArray(tags) || tags.length === 0) throw new KmsError("KMS.0401", "the tag list must not be empty");
  return [...new Set((tags as unknown[]).map((tag) => checkTagKeyToDelete(typeof tag === "object" && tag !== null ? (tag as { key?: unknown }).key : tag)))];
}
