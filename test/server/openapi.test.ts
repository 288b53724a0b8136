// /openapi.json describes every KMS route with its operation id and schemas, and /docs serves the
// browsable API documentation from it.
import test from "ava";
import { Ajv } from "ajv";
import { KMS_ROUTES } from "../../src/server/routes/index.js";
import { kmsPath, signedRequest } from "./helpers/client.js";
import { startTestServer } from "./helpers/server.js";

test("/openapi.json lists every KMS route with its operationId, body and response schemas; /docs serves the browsable docs", async (t) => {
  const server = await startTestServer(t, { overrides: { server: { docs: true } } });
  const response = await fetch(`${server.url}/openapi.json`);
  t.is(response.status, 200);
  const spec = (await response.json()) as {
    openapi: string;
    paths: Record<string, Record<string, { operationId?: string; requestBody?: unknown; responses?: Record<string, unknown> }>>;
    components: { securitySchemes: Record<string, unknown> };
  };
  t.regex(spec.openapi, /^3\./u);
  t.deepEqual(Object.keys(spec.components.securitySchemes).sort(), ["aksk", "token"]);
  for (const route of KMS_ROUTES) {
    const path = `/v1.0/{project_id}/kms${route.path.replace(/:([a-z_]+)/gu, "{$1}")}`;
    const operation = spec.paths[path]?.[route.method.toLowerCase()];
    t.truthy(operation, `${route.method} ${path} is documented`);
    if (operation === undefined) continue;
    t.is(operation.operationId, route.operationId, path);
    t.truthy(operation.responses?.[String(route.status ?? 200)], `${path} documents its ${route.status ?? 200} response`);
    t.truthy(operation.responses?.["4XX"] ?? operation.responses?.["4xx"], `${path} documents its error body`);
    if (route.body !== undefined) t.truthy(operation.requestBody, `${path} documents its body`);
  }
  t.truthy(spec.paths["/v3/auth/tokens"]?.["post"], "the token route is documented");
  const docs = await fetch(`${server.url}/docs`, { redirect: "follow" });
  t.is(docs.status, 200);
  t.regex(await docs.text(), /swagger/iu);
});

type SchemaNode = Record<string, unknown>;

/** Where a schema breaks OpenAPI 3.0's Schema Object (JSON Schema Wright draft 00, restricted). */
function schemaProblems(schema: unknown, where: string): string[] {
  if (typeof schema !== "object" || schema === null) return [`${where}: not a schema object`];
  const s = schema as SchemaNode;
  const problems: string[] = [];
  // 3.0 has none of these: `const`, type lists and type "null" are 3.1 (nullable says null in 3.0).
  for (const keyword of ["const", "$schema", "$id", "examples", "if", "then", "else", "prefixItems", "contains", "propertyNames", "dependentRequired"]) {
    if (keyword in s) problems.push(`${where}: ${keyword}`);
  }
  if (Array.isArray(s["type"]) || s["type"] === "null") problems.push(`${where}: type ${JSON.stringify(s["type"])}`);
  if (typeof s["exclusiveMinimum"] === "number" || typeof s["exclusiveMaximum"] === "number") problems.push(`${where}: numeric exclusive bound`);
  // The Schema Object's `required` must list at least one name (OAS 3.0 schema: minItems 1).
  if ("required" in s && (!Array.isArray(s["required"]) || s["required"].length === 0)) problems.push(`${where}: required ${JSON.stringify(s["required"])}`);
  if (s["type"] === "array" && s["items"] === undefined) problems.push(`${where}: array without items`);
  for (const keyword of ["allOf", "anyOf", "oneOf"]) {
    ((s[keyword] as unknown[] | undefined) ?? []).forEach((sub, i) => problems.push(...schemaProblems(sub, `${where}.${keyword}[${i}]`)));
  }
  for (const [name, sub] of Object.entries((s["properties"] as Record<string, unknown> | undefined) ?? {})) problems.push(...schemaProblems(sub, `${where}.${name}`));
  if (s["items"] !== undefined) problems.push(...schemaProblems(s["items"], `${where}[]`));
  if (typeof s["additionalProperties"] === "object") problems.push(...schemaProblems(s["additionalProperties"], `${where}.*`));
  return problems;
}

interface Operation {
  operationId?: string;
  parameters?: Array<{ in: string; name: string; required?: boolean; schema?: unknown }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { description?: unknown; headers?: Record<string, unknown>; content?: Record<string, { schema: unknown }> }>;
}

test("/openapi.json is OpenAPI 3.0.3: path parameters declared, operation ids unique, 3.0 schemas only, X-Request-Id on every response", async (t) => {
  const server = await startTestServer(t);
  const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    components: { headers?: Record<string, { schema?: unknown }> };
  };
  t.is(spec.openapi, "3.0.3");
  t.deepEqual(spec.components.headers?.["X-Request-Id"]?.schema, { type: "string" });
  const problems: string[] = [];
  const operationIds = new Set<string>();
  for (const [path, item] of Object.entries(spec.paths)) {
    const templated = [...path.matchAll(/\{([^}]+)\}/gu)].map((m) => m[1]!);
    for (const [method, operation] of Object.entries(item)) {
      const where = `${method.toUpperCase()} ${path}`;
      if (operation.operationId !== undefined) {
        if (operationIds.has(operation.operationId)) problems.push(`${where}: operationId ${operation.operationId} repeated`);
        operationIds.add(operation.operationId);
      }
      const declared = (operation.parameters ?? []).filter((p) => p.in === "path");
      for (const name of templated) if (!declared.some((p) => p.name === name && p.required === true)) problems.push(`${where}: path parameter ${name} not declared required`);
      for (const p of declared) if (!templated.includes(p.name)) problems.push(`${where}: path parameter ${p.name} not in the path`);
      for (const p of operation.parameters ?? []) problems.push(...schemaProblems(p.schema, `${where} ${p.in} ${p.name}`));
      for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) problems.push(...schemaProblems(media.schema, `${where} body ${type}`));
      t.true(Object.keys(operation.responses).length > 0, `${where} has responses`);
      for (const [status, response] of Object.entries(operation.responses)) {
        if (typeof response.description !== "string") problems.push(`${where} ${status}: no description`);
        if (response.headers?.["X-Request-Id"] === undefined) problems.push(`${where} ${status}: no X-Request-Id header`);
        for (const [type, media] of Object.entries(response.content ?? {})) problems.push(...schemaProblems(media.schema, `${where} ${status} ${type}`));
      }
    }
  }
  t.deepEqual(problems, []);
});

test("real responses, successes and errors, match the schemas /openapi.json documents for them", async (t) => {
  const server = await startTestServer(t);
  const spec = (await (await fetch(`${server.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, Operation>> };
  // The document's schemas are JSON Schema as OpenAPI 3.0 restricts it; ajv reads them with `nullable`.
  const ajv = new Ajv({ strict: false, allErrors: true });
  const identity = { ak: server.credentials.ak, sk: server.credentials.sk };
  const check = async (method: string, operation: string, documented: string, body?: unknown): Promise<any> => {
    const response = await signedRequest(server.url, { method, path: kmsPath(server.credentials.project_id, operation), body: body === undefined ? undefined : JSON.stringify(body), identity });
    const responses = spec.paths[`/v1.0/{project_id}/kms${documented}`]?.[method.toLowerCase()]?.responses ?? {};
    const schema = (responses[String(response.status)] ?? responses[`${String(response.status)[0]}XX`])?.content?.["application/json"]?.schema;
    t.truthy(schema, `${method} ${documented} ${response.status} is documented`);
    t.true(ajv.validate(schema as object, response.json), `${method} ${documented} ${response.status}: ${ajv.errorsText()}`);
    t.truthy(response.headers.get("x-request-id"));
    return response.json;
  };
  const created = await check("POST", "create-key", "/create-key", { key_alias: "documented", key_description: "as documented" });
  const keyId = created.key_info.key_id as string;
  await check("POST", "describe-key", "/describe-key", { key_id: keyId });
  await check("POST", "list-keys", "/list-keys", { limit: "10", key_state: "2" });
  const sealed = await check("POST", "encrypt-data", "/encrypt-data", { key_id: keyId, plain_text: "documented" });
  await check("POST", "decrypt-data", "/decrypt-data", { cipher_text: sealed.cipher_text });
  await check("POST", "create-datakey", "/create-datakey", { key_id: keyId, datakey_length: "256" });
  await check("GET", `${keyId}/tags`, "/{key_id}/tags");
  await check("GET", "user-quotas", "/user-quotas");
  await check("POST", "describe-key", "/describe-key", { key_id: "no-such-alias" });
  await check("POST", "describe-key", "/describe-key", { unknown_field: 1 });
});
