/**
 * The conditions of list-keys-by-tags (Huawei's ListKmsByTags, POST …/kms/resource_instances/action):
 * checking a request's and deciding whether a key meets them. Huawei's tag-filter convention (TMS):
 * within one condition, the values are alternatives and an empty list means any value; `tags`
 * needs every condition, `tags_any` one of them, `not_tags` excludes a key meeting every one,
 * `not_tags_any` a key meeting any; `matches` on resource_name (the alias) is a substring match.
 * At most 10 conditions per list (KMS.0409) and 10 values per condition (KMS.0413), each tag key
 * and value with the rules of a tag (tags.ts). The codes are Huawei's (OTC api-ref
 * appendix/error_code.rst): KMS.0413 "Too many tag values", and for `matches` KMS.0403 "Invalid
 * match key", KMS.0402 "Invalid match value", KMS.0415 "Invalid matches" (the list itself).
 */
import type { ListKeysByTagsRequest, TagCondition } from "./api.js";
import { KmsError } from "./errors.js";
import { checkTagKey, checkTagValue } from "./tags.js";

const MAX_CONDITIONS = 10;
const MAX_VALUES = 10;
const MAX_MATCH_CHARACTERS = 255;

/** A request's conditions, checked: each list as its tag key → accepted values (empty: any). */
export interface TagQuery {
  all: ReadonlyMap<string, ReadonlySet<string>> | null;
  any: ReadonlyMap<string, ReadonlySet<string>> | null;
  notAll: ReadonlyMap<string, ReadonlySet<string>> | null;
  notAny: ReadonlyMap<string, ReadonlySet<string>> | null;
  nameContains: string | null;
}

function conditions(list: unknown, field: string): Map<string, Set<string>> | null {
  if (list === undefined || list === null) return null;
  if (!Array.isArray(list)) throw new KmsError("KMS.0308", `${field} must be a list`);
  if (list.length > MAX_CONDITIONS) throw new KmsError("KMS.0409", `${field}: at most ${MAX_CONDITIONS} tags`);
  const result = new Map<string, Set<string>>();
  for (const item of list as Array<Partial<TagCondition> | null>) {
    if (typeof item !== "object" || item === null) throw new KmsError("KMS.0308", `${field} holds something that is not a tag`);
    const key = checkTagKey(item.key);
    if (result.has(key)) throw new KmsError("KMS.0308", `${field}: tag key ${key} given twice`);
    // TMS: an empty list means any value, but the list itself may not be left out.
    const values = item.values;
    if (values === undefined || values === null) throw new KmsError("KMS.0204", `${field}: tag ${key} has no values list`);
    if (!Array.isArray(values)) throw new KmsError("KMS.0405", `${field}: values must be a list`);
    if (values.length > MAX_VALUES) throw new KmsError("KMS.0413", `${field}: at most ${MAX_VALUES} values per tag`);
    result.set(key, new Set(values.map((value) => checkTagValue(value))));
  }
  return result;
}

function nameContains(matches: unknown): string | null {
  if (matches === undefined || matches === null) return null;
  if (!Array.isArray(matches)) throw new KmsError("KMS.0415", "matches must be a list");
  let value: string | null = null;
  for (const match of matches as Array<{ key?: unknown; value?: unknown } | null>) {
    if (typeof match !== "object" || match === null) throw new KmsError("KMS.0415", "matches holds something that is not a {key, value}");
    if (match.key !== "resource_name") throw new KmsError("KMS.0403", "matches: the only key is resource_name");
    if (value !== null) throw new KmsError("KMS.0415", "matches: resource_name given twice");
    if (typeof match.value !== "string" || match.value.length === 0 || [...match.value].length > MAX_MATCH_CHARACTERS) {
      throw new KmsError("KMS.0402", `matches: resource_name is 1-${MAX_MATCH_CHARACTERS} characters`);
    }
    value = match.value;
  }
  return value;
}

/** The request's conditions, checked (KMS.0406/0405/0410/0411 tag rules, KMS.0409/0413 too many, KMS.0402/0403/0415 matches, KMS.0308 shape). */
export function tagQuery(request: ListKeysByTagsRequest): TagQuery {
  return {
    all: conditions(request.tags, "tags"),
    any: conditions(request.tagsAny, "tags_any"),
    notAll: conditions(request.notTags, "not_tags"),
    notAny: conditions(request.notTagsAny, "not_tags_any"),
    nameContains: nameContains(request.matches),
  };
}

function meets(tags: ReadonlyMap<string, string>, key: string, values: ReadonlySet<string>): boolean {
  const value = tags.get(key);
  return value !== undefined && (values.size === 0 || values.has(value));
}

const every = (tags: ReadonlyMap<string, string>, list: ReadonlyMap<string, ReadonlySet<string>>): boolean =>
  [...list].every(([key, values]) => meets(tags, key, values));
const some = (tags: ReadonlyMap<string, string>, list: ReadonlyMap<string, ReadonlySet<string>>): boolean =>
  [...list].some(([key, values]) => meets(tags, key, values));

/** Whether a key with this alias and these tags (tag key → value) meets every condition given. */
export function matchesTagQuery(query: TagQuery, alias: string, tags: ReadonlyMap<string, string>): boolean {
  if (query.all !== null && !every(tags, query.all)) return false;
  if (query.any !== null && query.any.size > 0 && !some(tags, query.any)) return false;
  if (query.notAll !== null && query.notAll.size > 0 && every(tags, query.notAll)) return false;
  if (query.notAny !== null && some(tags, query.notAny)) return false;
  return query.nameContains === null || alias.includes(query.nameContains);
}
