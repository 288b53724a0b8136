/**
 * Tag routes (Huawei KMS v1.0): add one tag, delete one, add or delete a batch, a key's tags, the
 * project's tags. As Huawei has it (OTC api-ref "Adding a CMK Tag", "Deleting a CMK Tag", "Adding
 * or Deleting CMK Tags in Batches"), the three writes answer 204 No Content; a key's tags come with
 * `existTagsNum` (the JSON name show_kms_tags_response.py maps exist_tags_num to).
 *
 * The schemas check types, and that a batch's tag keys are well formed (TAG_ITEM): the tag key
 * (1-36 characters) and value (0-43) limits are the Kms's (kms/tags.ts), which reports them with
 * their own codes (KMS.0411, KMS.0410, KMS.0406, KMS.0405).
 * A tag key or value of the wrong type gets the Kms's code too (errors.ts NESTED_FIELD_CODES).
 */
import type * as Api from "../../kms/api.js";
import { integerString, object, PAGE_LIMIT, SEQUENCE, string, WELL_FORMED, type JsonSchema, type KmsRoute } from "../route.js";
import { KEY_DETAILS_SCHEMA, KEY_ID, keyDetailsBody } from "./keys.js";

const TAG = "Tags";

const KEY_PARAMS = object({ key_id: KEY_ID }, ["key_id"]);
/**
 * A batch's tag: its key must be well formed even to delete (the Kms, lax there so that old tags stay
 * deletable, puts the keys in the audit record, which refuses a lone surrogate).
 */
const TAG_ITEM = object({ key: string({ pattern: WELL_FORMED, description: "1-36 characters" }), value: string({ description: "0-43 characters" }) }, ["key"]);
/** A tag condition of resource_instances/action: the values may be empty (any value), the list may not be absent. */
const CONDITIONS: JsonSchema = {
  type: "array",
  items: object({ key: string({ description: "1-36 characters" }), values: { type: "array", items: { type: "string" }, description: "0-10 values, any one of which (none: any value)" } }, ["key", "values"]),
  description: "At most 10",
};
const TAG_LIST: JsonSchema = { type: "array", items: object({ key: string(), value: string() }) };
/** A 204's body: none. */
const NO_CONTENT: JsonSchema = { type: "null", description: "No Content" };

export const TAG_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/:key_id/tags", operationId: "CreateKmsTag", tag: TAG, call: "createKeyTag", status: 204,
    summary: "Set one tag on a key (a key that exists gets the new value); at most 10 tags per key",
    params: KEY_PARAMS,
    body: object({ tag: object({ key: string(), value: string() }, ["key", "value"]), sequence: SEQUENCE }, ["tag"]),
    response: NO_CONTENT,
    toRequest: ({ body, params }) => {
      const tag = body["tag"] as { key: string; value: string };
      return { keyId: params["key_id"]!, tag: { key: tag.key, value: tag.value } } satisfies Api.CreateKeyTagRequest;
    },
    toResponse: () => undefined,
  },
  {
    method: "DELETE", path: "/:key_id/tags/:key", operationId: "DeleteTag", tag: TAG, call: "deleteKeyTag", status: 204,
    summary: "Delete one tag of a key by its key (a tag that is not there: nothing happens)",
    params: object({ key_id: KEY_ID, key: string({ description: "The tag's key (URL-encoded)" }) }, ["key_id", "key"]),
    response: NO_CONTENT,
    toRequest: ({ params }) => ({ keyId: params["key_id"]!, key: params["key"]! } satisfies Api.DeleteKeyTagRequest),
    toResponse: () => undefined,
  },
  {
    method: "POST", path: "/:key_id/tags/action", operationId: "BatchCreateKmsTags", tag: TAG, call: "batchKeyTags", status: 204,
    summary: "Create or delete a key's tags in one batch (action create|delete; for delete, values are ignored)",
    params: KEY_PARAMS,
    body: object({
      action: string({ enum: ["create", "delete"] }),
      tags: { type: "array", minItems: 1, items: TAG_ITEM },
      sequence: SEQUENCE,
    }, ["action", "tags"]),
    response: NO_CONTENT,
    toRequest: ({ body, params }) => ({
      keyId: params["key_id"]!,
      action: body["action"] as Api.BatchKeyTagsRequest["action"],
      tags: (body["tags"] as Array<{ key: string; value?: string }>).map((t) => ({ key: t.key, value: t.value })),
    } satisfies Api.BatchKeyTagsRequest),
    toResponse: () => undefined,
  },
  {
    method: "GET", path: "/:key_id/tags", operationId: "ShowKmsTags", tag: TAG, call: "listKeyTags",
    summary: "A key's tags and their number",
    params: KEY_PARAMS,
    response: object({ tags: { type: "array", items: object({ key: string(), value: string() }) }, existTagsNum: { type: "integer" } }),
    toRequest: ({ params }) => ({ keyId: params["key_id"]! } satisfies Api.KeyRequest),
    toResponse: (result) => {
      const tags = (result as Api.KeyTagsResult).tags.map(({ key, value }) => ({ key, value }));
      return { tags, existTagsNum: tags.length };
    },
  },
  {
    method: "POST", path: "/resource_instances/action", operationId: "ListKmsByTags", tag: TAG, call: "listKeysByTags",
    summary: "Keys by tags and alias: filter (a page of them, with details and tags) or count. tags: every condition; tags_any: one; " +
      "not_tags: not every one; not_tags_any: none; matches resource_name: the alias contains the value",
    body: object({
      action: string({ description: "filter or count" }),
      limit: { ...PAGE_LIMIT, description: "1-1000 (default 10; \"\" for the default)" },
      offset: { anyOf: [...(integerString().anyOf as JsonSchema[]), { type: "string", maxLength: 0 }], description: "0 or more (default 0; \"\" for the default): keys skipped before the page" },
      tags: CONDITIONS,
      tags_any: CONDITIONS,
      not_tags: CONDITIONS,
      not_tags_any: CONDITIONS,
      matches: { type: "array", items: object({ key: string({ description: "resource_name" }), value: string({ description: "1-255 characters" }) }, ["key", "value"]) },
      sequence: SEQUENCE,
    }, ["action"]),
    response: object({
      resources: { type: "array", items: object({ resource_id: string(), resource_detail: KEY_DETAILS_SCHEMA, resource_name: string(), tags: TAG_LIST }) },
      total_count: { type: "integer" },
    }),
    toRequest: ({ body }) => ({
      action: body["action"] as Api.ListKeysByTagsRequest["action"],
      limit: body["limit"] as Api.IntegerField | undefined,
      offset: body["offset"] as Api.IntegerField | undefined,
      tags: body["tags"] as Api.TagCondition[] | undefined,
      tagsAny: body["tags_any"] as Api.TagCondition[] | undefined,
      notTags: body["not_tags"] as Api.TagCondition[] | undefined,
      notTagsAny: body["not_tags_any"] as Api.TagCondition[] | undefined,
      matches: body["matches"] as Array<{ key: string; value: string }> | undefined,
    } satisfies Api.ListKeysByTagsRequest),
    toResponse: (result) => {
      const r = result as Api.ListKeysByTagsResult;
      if (r.keys === undefined) return { total_count: r.totalCount };
      return {
        resources: r.keys.map((k) => ({ resource_id: k.keyId, resource_detail: keyDetailsBody(k.details), resource_name: k.details.keyAlias, tags: k.tags.map(({ key, value }) => ({ key, value })) })),
        total_count: r.totalCount,
      };
    },
  },
  {
    method: "GET", path: "/tags", operationId: "ListKmsTags", tag: TAG, call: "listProjectTags",
    summary: "Every tag key used in the project, with its values",
    response: object({ tags: { type: "array", items: object({ key: string(), values: { type: "array", items: { type: "string" } } }) } }),
    toRequest: () => ({}),
    toResponse: (result) => ({ tags: (result as Api.ProjectTagsResult).tags.map(({ key, values }) => ({ key, values })) }),
  },
];
