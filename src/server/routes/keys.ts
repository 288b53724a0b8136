/**
 * Key lifecycle routes (Huawei KMS v1.0): create, describe, list, enable, disable, schedule and
 * cancel deletion, alias and description, quotas and instances. Field names and encodings as the
 * Huawei SDK's models (huaweicloudsdkkms/v2/model): numbers, states and dates as JSON strings.
 */
import type { KeyDetails } from "../../kms/details.js";
import type * as Api from "../../kms/api.js";
import type { UserQuotas } from "../../kms/quotas.js";
import { dateString, integerString, object, PAGE_LIMIT, SEQUENCE, string, WELL_FORMED, type JsonSchema, type KmsRoute } from "../route.js";

const TAG = "Keys";

export const KEY_ID = string({ min: 1, max: 255, description: "Key id (UUID) or alias" });
export const KEY_ALIAS = string({ min: 1, max: 255, description: "^[a-zA-Z0-9:/_-]{1,255}$, unique in the project" });
const KEY_DESCRIPTION = string({ max: 255, pattern: WELL_FORMED, description: "0-255 characters" });

/** Huawei's key_details / key_info of describe-key and list-keys. */
export const KEY_DETAILS_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    key_id: { type: "string" },
    domain_id: { type: "string" },
    key_alias: { type: "string" },
    realm: { type: "string" },
    key_spec: { type: "string" },
    key_usage: { type: "string" },
    key_description: { type: "string" },
    creation_date: { type: "string", description: "ms since the epoch" },
    scheduled_deletion_date: { type: "string", description: "ms since the epoch; empty unless pending deletion" },
    key_state: { type: "string", description: "1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import" },
    default_key_flag: { type: "string", description: "1: a default key (<service>/default)" },
    key_type: { type: "string", description: "1: default key, 2: custom key" },
    expiration_time: { type: "string" },
    origin: { type: "string" },
    key_rotation_enabled: { type: "string" },
    sys_enterprise_project_id: { type: "string" },
    keystore_id: { type: "string" },
  },
};

export function keyDetailsBody(d: KeyDetails): Record<string, string> {
  return {
    key_id: d.keyId,
    domain_id: d.domainId,
    key_alias: d.keyAlias,
    realm: d.realm,
    key_spec: d.keySpec,
    key_usage: d.keyUsage,
    key_description: d.keyDescription,
    creation_date: dateString(d.creationDate),
    scheduled_deletion_date: dateString(d.scheduledDeletionDate),
    key_state: String(d.keyState),
    default_key_flag: d.defaultKeyFlag ? "1" : "0",
    key_type: d.defaultKeyFlag ? "1" : "2",
    expiration_time: dateString(d.expirationTime),
    origin: d.origin,
    key_rotation_enabled: String(d.keyRotationEnabled),
    sys_enterprise_project_id: d.sysEnterpriseProjectId,
    keystore_id: d.keystoreId,
  };
}

/** Requests that name one key: {key_id, sequence}. */
export const KEY_REQUEST = object({ key_id: KEY_ID, sequence: SEQUENCE }, ["key_id"]);

export function keyRequest(body: Record<string, unknown>): Api.KeyRequest {
  return { keyId: body["key_id"] as string };
}

const KEY_STATE_INFO = object({ key_info: object({ key_id: string(), key_state: string() }) });

function keyStateInfo(result: unknown): unknown {
  const r = result as Api.KeyStateResult;
  return { key_info: { key_id: r.keyId, key_state: String(r.keyState) } };
}

const str = (body: Record<string, unknown>, name: string): string | undefined => body[name] as string | undefined;

export const KEY_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/create-key", operationId: "CreateKey", tag: TAG, call: "createKey", status: 200,
    summary: "Create a customer master key (AES_256, ENCRYPT_DECRYPT, generated in the HSM)",
    body: object({
      key_alias: KEY_ALIAS,
      key_spec: string({ enum: ["AES_256"] }),
      key_usage: string({ enum: ["ENCRYPT_DECRYPT"] }),
      key_description: KEY_DESCRIPTION,
      origin: string({ enum: ["kms"] }),
      enterprise_project_id: string({ max: 36 }),
      keystore_id: string({ max: 64 }),
      sequence: SEQUENCE,
    }, ["key_alias"]),
    // key_info is the SDK's KeKInfo (ke_k_info.py): region_id is the region describe-key calls realm.
    response: object({ key_info: object({ key_id: string(), domain_id: string(), region_id: string() }) }),
    toRequest: ({ body }) => ({
      keyAlias: body["key_alias"] as string, keyDescription: str(body, "key_description"), keySpec: str(body, "key_spec"),
      keyUsage: str(body, "key_usage"), origin: str(body, "origin"),
    } satisfies Api.CreateKeyRequest),
    toResponse: (result) => {
      const d = result as KeyDetails;
      return { key_info: { key_id: d.keyId, domain_id: d.domainId, region_id: d.realm } };
    },
  },
  {
    method: "POST", path: "/describe-key", operationId: "ListKeyDetail", tag: TAG, call: "describeKey",
    summary: "Describe a key",
    body: KEY_REQUEST,
    response: object({ key_info: KEY_DETAILS_SCHEMA }),
    toRequest: ({ body }) => keyRequest(body),
    toResponse: (r) => ({ key_info: keyDetailsBody(r as KeyDetails) }),
  },
  {
    method: "POST", path: "/list-keys", operationId: "ListKeys", tag: TAG, call: "listKeys",
    summary: "List the project's keys, a page at a time (marker/limit), optionally by state",
    body: object({
      limit: { ...PAGE_LIMIT, description: "1-2000 (default 2000, as Huawei's ListKeys; \"\" for the default)" },
      marker: string({ max: 32 }),
      key_state: integerString("1-5"),
      key_spec: string({ max: 32 }),
      enterprise_project_id: string({ max: 36 }),
      sequence: SEQUENCE,
    }),
    response: object({
      keys: { type: "array", items: { type: "string" } },
      key_details: { type: "array", items: KEY_DETAILS_SCHEMA },
      next_marker: string(),
      truncated: string(),
      total: { type: "integer" },
    }),
    toRequest: ({ body }) => ({
      limit: body["limit"] as Api.IntegerField | undefined, marker: str(body, "marker"), keyState: body["key_state"] as Api.IntegerField | undefined,
      keySpec: str(body, "key_spec"),
    } satisfies Api.ListKeysRequest),
    toResponse: (result) => {
      const r = result as Api.ListKeysResult;
      return { keys: r.keys, key_details: r.keyDetails.map(keyDetailsBody), next_marker: r.nextMarker ?? "", truncated: String(r.truncated), total: r.total };
    },
  },
  {
    method: "POST", path: "/enable-key", operationId: "EnableKey", tag: TAG, call: "enableKey",
    summary: "Enable a disabled key", body: KEY_REQUEST, response: KEY_STATE_INFO,
    toRequest: ({ body }) => keyRequest(body), toResponse: keyStateInfo,
  },
  {
    method: "POST", path: "/disable-key", operationId: "DisableKey", tag: TAG, call: "disableKey",
    summary: "Disable an enabled key (not a default key)", body: KEY_REQUEST, response: KEY_STATE_INFO,
    toRequest: ({ body }) => keyRequest(body), toResponse: keyStateInfo,
  },
  {
    method: "POST", path: "/schedule-key-deletion", operationId: "CreateKeyDeletion", tag: TAG, call: "scheduleKeyDeletion",
    summary: "Schedule a key's deletion 7-1096 days ahead (not a default key)",
    body: object({ key_id: KEY_ID, pending_days: integerString("7-1096"), sequence: SEQUENCE }, ["key_id", "pending_days"]),
    response: object({ key_id: string(), key_state: string(), scheduled_deletion_date: string() }),
    toRequest: ({ body }) => ({ keyId: body["key_id"] as string, pendingDays: body["pending_days"] as Api.IntegerField } satisfies Api.ScheduleKeyDeletionRequest),
    toResponse: (result) => {
      const r = result as Api.ScheduleKeyDeletionResult;
      return { key_id: r.keyId, key_state: String(r.keyState), scheduled_deletion_date: dateString(r.scheduledDeletionDate) };
    },
  },
  {
    method: "POST", path: "/cancel-key-deletion", operationId: "CancelKeyDeletion", tag: TAG, call: "cancelKeyDeletion",
    summary: "Cancel a scheduled deletion (the key returns to Disabled)", body: KEY_REQUEST,
    response: object({ key_id: string(), key_state: string() }),
    toRequest: ({ body }) => keyRequest(body),
    toResponse: (result) => ({ key_id: (result as Api.KeyStateResult).keyId, key_state: String((result as Api.KeyStateResult).keyState) }),
  },
  {
    method: "POST", path: "/update-key-alias", operationId: "UpdateKeyAlias", tag: TAG, call: "updateKeyAlias",
    summary: "Change a key's alias (not a default key; not to <service>/default)",
    body: object({ key_id: KEY_ID, key_alias: KEY_ALIAS, sequence: SEQUENCE }, ["key_id", "key_alias"]),
    response: object({ key_info: object({ key_id: string(), key_alias: string() }) }),
    toRequest: ({ body }) => ({ keyId: body["key_id"] as string, keyAlias: body["key_alias"] as string } satisfies Api.UpdateKeyAliasRequest),
    toResponse: (result) => {
      const r = result as { keyId: string; keyAlias: string };
      return { key_info: { key_id: r.keyId, key_alias: r.keyAlias } };
    },
  },
  {
    method: "POST", path: "/update-key-description", operationId: "UpdateKeyDescription", tag: TAG, call: "updateKeyDescription",
    summary: "Change a key's description",
    body: object({ key_id: KEY_ID, key_description: KEY_DESCRIPTION, sequence: SEQUENCE }, ["key_id", "key_description"]),
    response: object({ key_info: object({ key_id: string(), key_description: string() }) }),
    toRequest: ({ body }) => ({ keyId: body["key_id"] as string, keyDescription: body["key_description"] as string } satisfies Api.UpdateKeyDescriptionRequest),
    toResponse: (result) => {
      const r = result as { keyId: string; keyDescription: string };
      return { key_info: { key_id: r.keyId, key_description: r.keyDescription } };
    },
  },
  {
    method: "GET", path: "/user-quotas", operationId: "ShowUserQuotas", tag: TAG, call: "getUserQuotas",
    summary: "The project's quotas (custom keys, grants per key, tags per key) and their use",
    response: object({
      quotas: object({
        resources: { type: "array", items: object({ type: string(), used: { type: "integer" }, quota: { type: "integer" } }) },
      }),
    }),
    toRequest: () => ({}),
    toResponse: (result) => {
      const r = result as UserQuotas;
      return { quotas: { resources: r.quotas.resources.map((q) => ({ type: q.type, used: q.used, quota: q.quota })) } };
    },
  },
  {
    method: "GET", path: "/user-instances", operationId: "ShowUserInstances", tag: TAG, call: "getUserInstances",
    summary: "The number of custom keys in the project",
    response: object({ instance_num: { type: "integer" } }),
    toRequest: () => ({}),
    toResponse: (result) => ({ instance_num: (result as { instanceNum: number }).instanceNum }),
  },
];
