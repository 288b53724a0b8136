// Property: whatever arrives, the server answers 2xx with a well-formed body or 4xx with Huawei's
// error body of a registered code (its own status) and an X-Request-Id — never 5xx — and keeps its
// audit log intact. Requests start from a valid body for a real route and are mutated (random JSON
// values, deleted fields, swapped types, long strings, random bytes, header changes, other paths,
// methods and projects), then signed after the mutation (so they reach validation and the Kms),
// signed before it (so the signature must catch it), sent with a token, or unsigned. Most go through
// app.inject (the whole fastify pipeline without sockets); a subset over real HTTP.
import test from "ava";
import fc from "fast-check";
import { createHash, randomBytes } from "node:crypto";
import { KMS_ROUTES } from "../../src/server/routes/index.js";
import type { KmsRoute } from "../../src/server/route.js";
import { signRequest } from "../../src/service/auth/sdk-hmac-sha256.js";
import { isWellFormedError, kmsPath, SdkClient } from "./helpers/client.js";
import { createOtherProject, sharedScope, startTestServer, type TestServer } from "./helpers/server.js";

const scope = sharedScope();
test.after.always(() => scope.close());

const INJECT_RUNS = 4000;
const HTTP_RUNS = 400;
const HOST = "hsmkit.fuzz";

interface Fixture {
  server: TestServer;
  identity: { ak: string; sk: string; projectId: string };
  token: string;
  otherProject: string;
  keys: string[];
  dataBlob: string;
  dataKeyBlob: string;
  dataKey: string;
}

let fx: Fixture;
/** 2xx answers of the fuzz runs: each is a Kms call, hence an audit record. */
let successes = 0;

test.before(async () => {
  const server = await startTestServer(scope);
  const identity = { ak: server.credentials.ak, sk: server.credentials.sk, projectId: server.credentials.project_id };
  const sdk = new SdkClient(server.url, identity);
  const keys: string[] = [];
  for (const alias of ["fuzz-a", "fuzz-b", "fuzz-c"]) keys.push((await sdk.post("create-key", { key_alias: alias })).key_info.key_id);
  const dataBlob = (await sdk.post("encrypt-data", { key_id: keys[0], plain_text: "fuzz" })).cipher_text;
  const dk = await sdk.post("create-datakey", { key_id: keys[0], datakey_length: "256" });
  const issued = await fetch(server.url + "/v3/auth/tokens", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["password"], password: { user: { name: identity.ak, password: identity.sk } } }, scope: { project: { id: identity.projectId } } } }),
  });
  const other = await createOtherProject(server);
  fx = {
    server, identity, token: issued.headers.get("x-subject-token")!, otherProject: other.projectId, keys, dataBlob,
    dataKeyBlob: dk.cipher_text, dataKey: dk.plain_text,
  };
});

/** A valid body for each route (by path), from which mutations start. */
function baseBody(route: KmsRoute, pick: number): Record<string, unknown> {
  const key = fx.keys[pick % fx.keys.length]!;
  const dek = Buffer.from(fx.dataKey, "hex");
  const bodies: Record<string, Record<string, unknown>> = {
    "/create-key": { key_alias: `fuzz-${pick}`, key_description: "fuzzed" },
    "/describe-key": { key_id: key },
    "/list-keys": { limit: "2" },
    "/enable-key": { key_id: key },
    "/disable-key": { key_id: key },
    "/schedule-key-deletion": { key_id: key, pending_days: "7" },
    "/cancel-key-deletion": { key_id: key },
    "/update-key-alias": { key_id: key, key_alias: `renamed-${pick}` },
    "/update-key-description": { key_id: key, key_description: "d" },
    "/encrypt-data": { key_id: key, plain_text: "hello", encryption_context: { a: "b" } },
    "/decrypt-data": { cipher_text: fx.dataBlob },
    "/re-encrypt": { cipher_text: fx.dataBlob, destination_key_id: key },
    "/create-datakey": { key_id: key, datakey_length: "256" },
    "/create-datakey-without-plaintext": { key_id: key, key_spec: "AES_128" },
    "/encrypt-datakey": { key_id: key, plain_text: Buffer.concat([dek, createHash("sha256").update(dek).digest()]).toString("hex"), datakey_plain_length: "32" },
    "/decrypt-datakey": { key_id: fx.keys[0], cipher_text: fx.dataKeyBlob, datakey_cipher_length: "32" },
    "/gen-random": { random_data_length: "256" },
    "/enable-key-rotation": { key_id: key, rotation_interval: "90" },
    "/disable-key-rotation": { key_id: key },
    "/update-key-rotation-interval": { key_id: key, rotation_interval: "60" },
    "/get-key-rotation-status": { key_id: key },
    "/rotate-on-demand": { key_id: key },
    "/create-grant": { key_id: key, grantee_principal: "a".repeat(32), operations: ["encrypt-data"] },
    "/list-grants": { key_id: key, limit: "5" },
    "/list-retirable-grants": {},
    "/revoke-grant": { key_id: key, grant_id: "0".repeat(64) },
    "/retire-grant": { key_id: key, grant_id: "0".repeat(64) },
    "/:key_id/tags": { tag: { key: "k", value: "v" } },
    "/:key_id/tags/action": { action: "create", tags: [{ key: "k2", value: "v2" }] },
    "/audit/query": { limit: "3" },
    "/audit/export": { action: "createKey" },
    "/audit/verify": {},
    "/key-usage": { key_id: key },
  };
  return structuredClone(bodies[route.path] ?? {});
}

type Json = unknown;

const jsonValue: fc.Arbitrary<Json> = fc.jsonValue({ maxDepth: 3 });
const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });

const bodyMutation = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("replace" as const), value: jsonValue }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("set" as const), pick: fc.nat(), value: jsonValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("add" as const), name: fc.string({ maxLength: 12 }), value: jsonValue }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("long" as const), pick: fc.nat(),
      length: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 5000 }) }, { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }) }),
      char: fc.constantFrom("a", "0", "=", "é", "\u0000", "🔑", "\ud800"),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bytes" as const), bytes: fc.uint8Array({ maxLength: 512 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("text" as const), text: fc.string({ maxLength: 200 }) }) },
);

type BodyMutation = typeof bodyMutation extends fc.Arbitrary<infer T> ? T : never;

const headerMutation = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: "none" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("content-type" as const),
      value: fc.constantFrom("text/plain", "application/json; charset=utf-8", "application/xml", "application/x-ndjson", "multipart/form-data; boundary=x", "APPLICATION/JSON", "application/json;charset=latin1"),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "drop-content-type" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("x-request-id" as const), value: printable }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("x-project-id" as const), value: printable }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("x-sdk-date" as const), value: printable }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("authorization" as const), value: printable }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("x-auth-token" as const), value: printable }) },
);

type HeaderMutation = typeof headerMutation extends fc.Arbitrary<infer T> ? T : never;

const requestArbitrary = fc.record({
  route: fc.nat({ max: KMS_ROUTES.length - 1 }),
  pick: fc.nat({ max: 1000 }),
  body: bodyMutation,
  headers: headerMutation,
  auth: fc.constantFrom("signed-after", "signed-after", "signed-after", "signed-before", "token", "none"),
  method: fc.oneof({ weight: 12, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH") }),
  project: fc.oneof(
    { weight: 12, arbitrary: fc.constant("mine") },
    { weight: 1, arbitrary: fc.constantFrom("other", "random", "malformed") },
  ),
  keyParam: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }),
});

type FuzzRequest = typeof requestArbitrary extends fc.Arbitrary<infer T> ? T : never;

function mutateBody(body: Record<string, unknown>, route: KmsRoute, m: BodyMutation): string | Buffer {
  const fields = Object.keys((route.body?.["properties"] as Record<string, unknown> | undefined) ?? body);
  const field = (pick: number): string => fields.length === 0 ? "x" : fields[pick % fields.length]!;
  switch (m.kind) {
    case "none": return JSON.stringify(body);
    case "replace": return JSON.stringify(m.value) ?? "";
    case "delete": {
      delete body[Object.keys(body)[m.pick % Math.max(1, Object.keys(body).length)] ?? "x"];
      return JSON.stringify(body);
    }
    case "set": return JSON.stringify({ ...body, [field(m.pick)]: m.value });
    case "add": return JSON.stringify({ ...body, [m.name]: m.value });
    case "long": return JSON.stringify({ ...body, [field(m.pick)]: m.char.repeat(m.length) });
    case "bytes": return Buffer.from(m.bytes);
    case "text": return m.text;
  }
}

function pathOf(r: FuzzRequest, route: KmsRoute): string {
  const project = r.project === "mine" ? fx.identity.projectId
    : r.project === "other" ? fx.otherProject
    : r.project === "random" ? randomBytes(16).toString("hex") : "bad.project";
  const keyId = r.keyParam ?? fx.keys[r.pick % fx.keys.length]!;
  const operation = route.path.replace(":key_id", encodeURIComponent(keyId)).replace(":key", encodeURIComponent(`k${r.pick % 3}`));
  return kmsPath(project, operation);
}

function applyHeaders(headers: Record<string, string>, m: HeaderMutation): void {
  switch (m.kind) {
    case "none": return;
    case "content-type": headers["content-type"] = m.value; return;
    case "drop-content-type": delete headers["content-type"]; return;
    default: headers[m.kind] = m.value;
  }
}

interface Built {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Buffer | undefined;
}

/** The request a case describes, for a server reached as `origin` (its Host). */
function build(r: FuzzRequest, origin: string): Built {
  const route = KMS_ROUTES[r.route]!;
  const method = r.method ?? route.method;
  const path = pathOf(r, route);
  const hasBody = route.body !== undefined || r.body.kind !== "none";
  const body = hasBody ? mutateBody(baseBody(route, r.pick), route, r.body) : undefined;
  const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json" };
  const sign = (h: Record<string, string>, b: string | Buffer | undefined): Record<string, string> => signRequest({
    method, url: origin + path, headers: h, body: b, accessKey: fx.identity.ak, secretKey: fx.identity.sk,
  });
  switch (r.auth) {
    case "signed-after": {
      applyHeaders(headers, r.headers);
      return { method, path, headers: sign(headers, body), body };
    }
    case "signed-before": {
      const baseText = route.body !== undefined ? JSON.stringify(baseBody(route, r.pick)) : undefined;
      const signed = sign({ ...headers }, baseText);
      applyHeaders(signed, r.headers);
      return { method, path, headers: signed, body };
    }
    case "token": {
      applyHeaders(headers, r.headers);
      return { method, path, headers: { "x-auth-token": fx.token, ...headers }, body };
    }
    case "none": {
      applyHeaders(headers, r.headers);
      return { method, path, headers, body };
    }
  }
}

interface Outcome {
  status: number;
  headers: { get(name: string): string | null };
  text: string;
}

/** Why a response breaks the contract, or undefined. */
function problem(outcome: Outcome): string | undefined {
  const { status, text, headers } = outcome;
  if (!headers.get("x-request-id")) return "no X-Request-Id";
  if (status >= 200 && status < 300) {
    if (status === 204) return text === "" ? undefined : "a 204 with a body";
    const type = headers.get("content-type") ?? "";
    try {
      if (type.startsWith("application/x-ndjson")) {
        for (const line of text.split("\n").filter(Boolean)) JSON.parse(line);
        return undefined;
      }
      const json = JSON.parse(text) as unknown;
      return typeof json === "object" && json !== null && !Array.isArray(json) ? undefined : "a 2xx body that is not a JSON object";
    } catch {
      return `a 2xx body that does not parse (${type})`;
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return isWellFormedError({ status, json, headers });
}

interface Tally {
  statuses: Map<number, number>;
  codes: Set<string>;
}

function record(tally: Tally, outcome: Outcome): void {
  tally.statuses.set(outcome.status, (tally.statuses.get(outcome.status) ?? 0) + 1);
  if (outcome.status >= 400) {
    try {
      tally.codes.add((JSON.parse(outcome.text) as { error: { error_code: string } }).error.error_code);
    } catch {
      // counted by problem()
    }
  }
}

function describe(b: Built): string {
  const body = b.body === undefined ? "" : (typeof b.body === "string" ? b.body : b.body.toString("base64")).slice(0, 300);
  return `${b.method} ${b.path} ${JSON.stringify(b.headers).slice(0, 400)} ${body}`;
}

function twoHundreds(tally: Tally): number {
  return [...tally.statuses].filter(([s]) => s < 300).reduce((n, [, c]) => n + c, 0);
}


test.serial(`${INJECT_RUNS} mutated requests through app.inject: never a 5xx, always a well-formed body`, async (t) => {
  const tally: Tally = { statuses: new Map(), codes: new Set() };
  await fc.assert(fc.asyncProperty(requestArbitrary, async (r) => {
    const b = build(r, `http://${HOST}`);
    const response = await fx.server.app.inject({ method: b.method as "GET", url: b.path, headers: { host: HOST, ...b.headers }, ...(b.body === undefined ? {} : { payload: b.body }) });
    const outcome: Outcome = { status: response.statusCode, text: response.body, headers: { get: (n) => (response.headers[n] as string | undefined) ?? null } };
    record(tally, outcome);
    const wrong = problem(outcome);
    if (wrong !== undefined) throw new Error(`${wrong}: ${response.statusCode} ${response.body.slice(0, 300)} for ${describe(b)}`);
  }), { numRuns: INJECT_RUNS, verbose: 1 });
  t.log(`statuses ${JSON.stringify(Object.fromEntries(tally.statuses))}; ${tally.codes.size} codes: ${[...tally.codes].sort().join(" ")}`);
  // The cases must reach past authentication and validation, or the property says little.
  successes += twoHundreds(tally);
  t.true(twoHundreds(tally) >= INJECT_RUNS / 20, "a share of the requests succeed");
  t.true(tally.codes.size >= 15, "many different refusals");
  for (const code of ["APIGW.0301", "KMS.0202", "KMS.0308", "KMS.0204", "KMS.2201"]) t.true(tally.codes.has(code), `${code} reached`);
});

test.serial(`${HTTP_RUNS} mutated requests over HTTP: the same contract on real sockets`, async (t) => {
  const tally: Tally = { statuses: new Map(), codes: new Set() };
  await fc.assert(fc.asyncProperty(requestArbitrary, async (r) => {
    const b = build(r, fx.server.url);
    const { host: _host, ...headers } = b.headers;
    const init: RequestInit = { method: b.method, headers };
    if (b.body !== undefined && b.method !== "GET") init.body = b.body;
    const response = await fetch(fx.server.url + b.path, init);
    const outcome: Outcome = { status: response.status, text: await response.text(), headers: response.headers };
    record(tally, outcome);
    const wrong = problem(outcome);
    if (wrong !== undefined) throw new Error(`${wrong}: ${outcome.status} ${outcome.text.slice(0, 300)} for ${describe(b)}`);
  }), { numRuns: HTTP_RUNS, verbose: 1 });
  t.log(`statuses ${JSON.stringify(Object.fromEntries(tally.statuses))}`);
  successes += twoHundreds(tally);
  t.true(twoHundreds(tally) > 0);
});

test.serial("afterwards: /healthz answers 200, the audit log verifies intact (route and in-process), and the service still works", async (t) => {
  const health = await fetch(fx.server.url + "/healthz");
  t.is(health.status, 200);
  t.is(((await health.json()) as { status: string }).status, "ok");
  const sdk = new SdkClient(fx.server.url, fx.identity);
  const verified = await sdk.post("audit/verify", {});
  t.true(verified.ok, JSON.stringify(verified));
  t.true(successes > 0);
  t.true(verified.records >= successes, `every successful fuzzed request was audited (${verified.records} records, ${successes} successes)`);
  const direct = await fx.server.kmsService!.kms.verifyAuditLog({ projectId: fx.identity.projectId, principalId: fx.server.credentials.user_id, requestId: "fuzz-verify", source: "test" });
  t.true(direct.ok);
  const key = (await sdk.post("create-key", { key_alias: "after-fuzz" })).key_info.key_id;
  const sealed = await sdk.post("encrypt-data", { key_id: key, plain_text: "still fine" });
  t.is((await sdk.post("decrypt-data", { cipher_text: sealed.cipher_text })).plain_text, "still fine");
});
