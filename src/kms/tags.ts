/**
 * Tags on keys: `{key, value}` pairs, at most `tagsPerKey` per key (config.ts; Huawei 10). Field
 * limits from Huawei (shared/reference/kms-apis.md §1.2; OTC api-ref "Adding a CMK tag"): a tag
 * key of 1–36 characters, a value of 0–43. Setting a key that exists replaces its value (no new
 * tag). Errors: KMS.0411 / KMS.0410 for lengths, KMS.0406 / KMS.0405 for what is not a string or
 * holds control characters, KMS.0401 for an empty batch, KMS.0409 when a key would have too many.
 */
import { KmsError } from "./errors.js";

export const MAX_TAG_KEY_CHARS = 36;
export const MAX_TAG_VALUE_CHARS = 43;

const CONTROL = /[\u0000-\u001f\u007f]/u;

/** A tag key: 1..36 characters without control characters. */
export function checkTagKey(key: unknown): string {
  if (typeof key !== "string" || CONTROL.test(key)) throw new KmsError("KMS.0406", "a tag key is a string without control characters");
  if (key.length < 1 || key.length > MAX_TAG_KEY_CHARS) throw new KmsError("KMS.0411", `a tag key is 1..${MAX_TAG_KEY_CHARS} characters`);
  return key;
}

/** A tag value: 0..43 characters without control characters. */
export function checkTagValue(value: unknown): string {
  if (typeof value !== "string" || CONTROL.test(value)) throw new KmsError("KMS.0405", "a tag value is a string without control characters");
  if (value.length > MAX_TAG_VALUE_CHARS) throw new KmsError("KMS.0410", `a tag value is 0..${MAX_TAG_VALUE_CHARS} characters`);
  return value;
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
  return [...new Set((tags as unknown[]).map((tag) => checkTagKey(typeof tag === "object" && tag !== null ? (tag as { key?: unknown }).key : tag)))];
}
