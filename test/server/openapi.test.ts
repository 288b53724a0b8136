// /openapi.json describes every KMS route with its operation id and schemas, and /docs serves the
// browsable API documentation from it.
import test from "ava";
import { KMS_ROUTES } from "../../src/server/routes/index.js";
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
