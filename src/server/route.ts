/**
 * How a Huawei KMS route is declared: its path under `/v1.0/{project_id}/kms`, the Kms method it
 * reaches, JSON schemas for its body (or query) and its response, and the two mappings between
 * Huawei's wire fields (snake_case, numbers as strings, base64/hex) and the Kms's typed requests and
 * results (kms/api.ts). registerKmsRoutes() turns each into a fastify route with authentication,
 * the schemas and the error map; routes/*.ts hold the declarations, one file per API group.
 *
 * The response schema is an allowlist: fastify serializes responses with it, so a field it does
 * not declare (key material in a result object, say) can never reach a client.
 */
import type { FastifySchema } from "fastify";
import { KmsError, type KmsErrorCode } from "../kms/errors.js";
import type { ServiceMethod } from "../service/service.js";

/** A JSON schema (the subset fastify/ajv and fast-json-stringify take). */
export type JsonSchema = Record<string, unknown>;

export interface RouteInput {
  body: Record<string, unknown>;
  params: Record<string, string>;
  query: Record<string, string>;
}

export interface KmsRoute {
  method: "GET" | "POST" | "DELETE";
  /** Under /v1.0/:project_id/kms, e.g. "/create-key" or "/:key_id/tags". */
  path: string;
  /** Huawei's operation name (OpenAPI operationId), e.g. "CreateKey". */
  operationId: string;
  summary: string;
  /** API group (OpenAPI tag). */
  tag: string;
  /** The service (Kms) method it calls. */
  call: ServiceMethod;
  body?: JsonSchema;
  querystring?: JsonSchema;
  params?: JsonSchema;
  /** The success body's schema. */
  response: JsonSchema;
  /** Success status (default 200; 204 sends no body: toResponse returns undefined). */
  status?: number;
  /**
   * The success body's media type when it is not JSON (e.g. application/x-ndjson). toResponse then
   * returns the body as a string, sent as it is: `response` documents it but cannot filter it, so
   * such a route must build its text from an explicit list of fields.
   */
  contentType?: string;
  /** Huawei request → Kms request (decoding base64/hex; throws KmsError on bad encodings). */
  toRequest(input: RouteInput): unknown;
  /** Kms result → Huawei response body; `input` is the request as toRequest saw it (for an encoding the request chose). */
  toResponse(result: unknown, input: RouteInput): unknown;
}

/** The error body every failure has: {"error":{"error_code","error_msg"}}. */
export const ERROR_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { error_code: { type: "string" }, error_msg: { type: "string" } },
      required: ["error_code", "error_msg"],
    },
    error_code: { type: "string", description: "The same code, as Huawei's API gateway and the Node SDK read it" },
    error_msg: { type: "string" },
    request_id: { type: "string" },
  },
  required: ["error"],
};

/**
 * A closed object schema: exactly these properties, `required` of them mandatory. With none
 * required there is no `required` at all: OpenAPI 3.0's schema keyword (JSON Schema Wright draft 00)
 * must list at least one name, and validators of /openapi.json refuse an empty list.
 */
export function object(properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema {
  return required.length === 0 ? { type: "object", properties, additionalProperties: false } : { type: "object", properties, required, additionalProperties: false };
}

/** A string, optionally bounded and patterned. */
export function string(options: { min?: number; max?: number; pattern?: string; enum?: string[]; description?: string } = {}): JsonSchema {
  const s: JsonSchema = { type: "string" };
  if (options.min !== undefined) s["minLength"] = options.min;
  if (options.max !== undefined) s["maxLength"] = options.max;
  if (options.pattern !== undefined) s["pattern"] = options.pattern;
  if (options.enum !== undefined) s["enum"] = options.enum;
  if (options.description !== undefined) s["description"] = options.description;
  return s;
}

/** An integer as Huawei sends it: a JSON string of digits (a JSON number is accepted too). */
export function integerString(description?: string): JsonSchema {
  return { anyOf: [{ type: "string", pattern: "^[0-9]{1,10}$" }, { type: "integer", minimum: 0, maximum: 4294967295 }], ...(description ? { description } : {}) };
}

/**
 * A paged list's `limit`: as integerString, or "" for the default (the Kms's pageOf reads it so):
 * Huawei's own example request for list-retirable-grants is {"limit": "", "marker": ""}.
 */
export const PAGE_LIMIT: JsonSchema = {
  anyOf: [...(integerString().anyOf as JsonSchema[]), { type: "string", maxLength: 0 }],
  description: "1-1000 (default 1000; \"\" for the default)",
};

/**
 * The pattern of a string field that is stored or audited: no lone UTF-16 surrogate. JSON's \u
 * escapes can carry one but UTF-8 cannot: the store would keep U+FFFD in its place (and answer
 * with another string than the one accepted), the audit chain refuses the record (a 500). A
 * surrogate pair passes: ajv compiles patterns with the u flag, where a pair is one character.
 */
export const WELL_FORMED = "^[^\\uD800-\\uDFFF]*$";

/** Huawei's optional `sequence` (36 characters) that most bodies accept. */
export const SEQUENCE = string({ min: 1, max: 36, description: "Request sequence number (ignored)" });

export function schemaOf(route: KmsRoute): FastifySchema {
  const schema: FastifySchema & Record<string, unknown> = {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    response: {
      [route.status ?? 200]: route.contentType === undefined ? route.response : { content: { [route.contentType]: { schema: route.response } } },
      "4xx": ERROR_SCHEMA,
      "5xx": ERROR_SCHEMA,
    },
  };
  if (route.body) schema.body = route.body;
  if (route.querystring) schema.querystring = route.querystring;
  schema.params = {
    type: "object",
    properties: { project_id: { type: "string" }, ...((route.params?.["properties"] as Record<string, unknown>) ?? {}) },
  };
  return schema;
}

// Encodings ----------------------------------------------------------------------------------

/** Bytes from Uint8Array-like values a worker thread may hand back (structured clone drops Buffer). */
export function bytes(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError("expected bytes");
}

/** A date (ms) as Huawei sends it: a string of ms since the epoch, "" when there is none. */
export function dateString(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "" : String(ms);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/u;
const HEX = /^(?:[0-9a-fA-F]{2})*$/u;

/** Strict base64 (padded, no whitespace): Buffer.from() alone would skip bad characters silently. */
export function fromBase64(value: string, code: KmsErrorCode, field: string): Buffer {
  if (!BASE64.test(value)) throw new KmsError(code, `${field} is not base64`);
  const bytes = Buffer.from(value, "base64");
  // The last character before the padding carries bits no byte uses; only the encoding with them
  // zero is accepted (RFC 4648 §3.5), so one blob has one text and a client cannot vary it.
  if (value.endsWith("=") && bytes.toString("base64") !== value) throw new KmsError(code, `${field} is not canonical base64 (non-zero padding bits)`);
  return bytes;
}

/** Strict hex (even length, 0-9a-f either case). */
export function fromHex(value: string, code: KmsErrorCode, field: string): Buffer {
  if (!HEX.test(value)) throw new KmsError(code, `${field} is not hex`);
  return Buffer.from(value, "hex");
}
