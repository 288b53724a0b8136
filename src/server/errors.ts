/**
 * The server's one error map: whatever fails in a request becomes Huawei's error body
 * `{"error":{"error_code","error_msg"}}` with the code's status. KmsErrors keep their code; fastify's
 * own errors (bad JSON, body too large, schema validation) get the Huawei code for the field or
 * condition; anything else is KMS.0101, logged with its detail, never shown to the client.
 */
import type { FastifyError } from "fastify";
import { KMS_ERRORS, KmsError, type KmsErrorCode } from "../kms/errors.js";

/**
 * The code a schema violation of a body or query field gets (Huawei's per-field codes); others
 * KMS.0308. A field is here only when its code fits every way the schema can fail: gen-random's
 * random_data_length is not, since KMS.1802 says "a multiple of 8" and no schema failure is that
 * (the Kms gives a non-integer KMS.0308, as its range).
 */
export const FIELD_CODES: Readonly<Record<string, KmsErrorCode>> = {
  key_id: "KMS.0205",
  key_alias: "KMS.1101",
  key_description: "KMS.1103",
  sequence: "KMS.0206",
  pending_days: "KMS.1401",
  limit: "KMS.1601",
  marker: "KMS.1602",
  offset: "KMS.1602",
  key_state: "KMS.0308",
  plain_text: "KMS.2101",
  cipher_text: "KMS.2201",
  datakey_length: "KMS.1901",
  rotation_interval: "KMS.3001",
  encryption_context: "KMS.0208",
  grant_id: "KMS.2501",
  grantee_principal: "KMS.2402",
  action: "KMS.0404",
  tags: "KMS.0401",
  source_key_id: "KMS.0205",
  destination_key_id: "KMS.0205",
  source_encryption_context: "KMS.0208",
  destination_encryption_context: "KMS.0208",
  retiring_principal: "KMS.2402",
};

/**
 * The code a schema violation inside an object or array gets, by its path with array indices as
 * "*": the code the Kms gives the same value (kms/tags.ts), where the enclosing field's code would
 * misname the problem (KMS.0401 says the tag list is empty).
 */
export const NESTED_FIELD_CODES: Readonly<Record<string, KmsErrorCode>> = {
  "tag/key": "KMS.0406",
  "tag/value": "KMS.0405",
  "tags/*": "KMS.0406",
  "tags/*/key": "KMS.0406",
  "tags/*/value": "KMS.0405",
  // resource_instances/action's conditions: { key, values[] } in four lists.
  ...Object.fromEntries(["tags", "tags_any", "not_tags", "not_tags_any"].flatMap((list) => [
    [`${list}/*/key`, "KMS.0406"], [`${list}/*/values`, "KMS.0405"], [`${list}/*/values/*`, "KMS.0405"],
  ])) as Record<string, KmsErrorCode>,
  // ... and its matches, as the Kms reports them (tag-query.ts).
  "matches/*": "KMS.0415",
  "matches/*/key": "KMS.0403",
  "matches/*/value": "KMS.0402",
};

export interface ErrorBody {
  error: { error_code: string; error_msg: string };
  error_code: string;
  error_msg: string;
  request_id: string;
}

/**
 * Huawei KMS's error body, `{"error":{"error_code","error_msg"}}`, with the same code and message
 * repeated at the top level beside `request_id`, as Huawei's API gateway answers: the Node SDK core
 * (exception/ExceptionUtil.js) reads `error.code` or a top-level `error_code`, never
 * `error.error_code`, so without the copy its users would see no code at all.
 */
export function errorBody(code: KmsErrorCode, requestId: string): ErrorBody {
  const message = KMS_ERRORS[code].message;
  return { error: { error_code: code, error_msg: message }, error_code: code, error_msg: message, request_id: requestId };
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
}

/** The code of the field a validation issue is about: its nested path's, else its top-level field's. */
function fieldCode(issue: ValidationIssue): KmsErrorCode | undefined {
  const segments = issue.instancePath.split("/").filter(Boolean);
  const nested = segments.map((segment) => (/^\d+$/u.test(segment) ? "*" : segment)).join("/");
  // Own properties only: a field named like an Object.prototype member has no code of its own.
  if (Object.hasOwn(NESTED_FIELD_CODES, nested)) return NESTED_FIELD_CODES[nested];
  const field = segments[0];
  return field !== undefined && Object.hasOwn(FIELD_CODES, field) ? FIELD_CODES[field] : undefined;
}

/** The KmsError a failure is reported as. */
export function toKmsError(error: unknown): KmsError {
  if (error instanceof KmsError) return error;
  const e = error as FastifyError & { validation?: ValidationIssue[] };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    const issue = e.validation[0]!;
    if (issue.keyword === "required") return new KmsError("KMS.0204", `missing ${String(issue.params["missingProperty"])}`);
    if (issue.keyword === "additionalProperties") return new KmsError("KMS.0308", `unknown field ${String(issue.params["additionalProperty"])}`);
    return new KmsError(fieldCode(issue) ?? "KMS.0308", `${e.validationContext ?? "body"}${issue.instancePath} ${issue.keyword}`);
  }
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new KmsError("KMS.0203", "body too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new KmsError("KMS.0202", e.code);
    default:
      break;
  }
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return new KmsError(e.statusCode === 404 ? "APIGW.0101" : e.statusCode === 405 ? "KMS.0215" : "KMS.0214", `${e.code ?? "client error"}: ${e.message}`);
  }
  return new KmsError("KMS.0101", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
}
