// Requests the server must refuse, each with Huawei's documented 4xx code and error body and an
// X-Request-Id, never a 5xx: malformed bodies, wrong types, missing and extra fields, oversized
// bodies, unknown routes and methods, bad encodings, every way an SDK-HMAC-SHA256 signature can be
// wrong or stale, replays (when rejected), expired and foreign tokens, and other projects in the URL.
// Requests are built with signRequest and fetch so that they can be changed after signing.
import test from "ava";
import { createHmac, randomBytes } from "node:crypto";
import type { KmsErrorCode } from "../../src/kms/errors.js";
import { canonicalRequest, formatSdkDate, sha256Hex, stringToSign } from "../../src/service/auth/sdk-hmac-sha256.js";
import {
  assertHuaweiError, isWellFormedError, kmsPath, rawRequest, SdkClient, signedRequest, withoutRequestId, type RawResponse,
} from "./helpers/client.js";
import { createOtherProject, createPrincipal, sharedScope, startTestServer, type Principal, type TestServer } from "./helpers/server.js";

const scope = sharedScope();
test.after.always(() => scope.close());

let server: TestServer;
let me: { ak: string; sk: string; projectId: string };
let keyId: string;
let other: { projectId: string; owner: Principal };
let otherKeyId: string;

test.before(async () => {
  server = await startTestServer(scope);
  me = { ak: server.credentials.ak, sk: server.credentials.sk, projectId: server.credentials.project_id };
  keyId = (await new SdkClient(server.url, me).post("create-key", { key_alias: "bad-input" })).key_info.key_id;
  other = await createOtherProject(server);
  otherKeyId = (await new SdkClient(server.url, { ...other.owner }).post("create-key", { key_alias: "theirs" })).key_info.key_id;
});

/** A signed POST of `body` (a string sent as is, or JSON) to an operation of `project` (default: mine). */
function post(operation: string, body: unknown, options: { project?: string; identity?: { ak: string; sk: string }; time?: number } = {}): Promise<RawResponse> {
  return signedRequest(server.url, {
    method: "POST", path: kmsPath(options.project ?? me.projectId, operation), body: typeof body === "string" ? body : JSON.stringify(body),
    identity: options.identity ?? me, ...(options.time !== undefined ? { time: options.time } : {}),
  });
}

async function refused(t: import("ava").ExecutionContext, response: Promise<RawResponse> | RawResponse, status: number, code: KmsErrorCode, message: string): Promise<RawResponse> {
  const r = await response;
  assertHuaweiError(t, r, status, code, message);
  return r;
}

// Bodies -------------------------------------------------------------------------------------

test("malformed JSON is KMS.0202", async (t) => {
  for (const body of ['{"key_id":', "{key_id: 1}", "{'key_id':'x'}", '{"key_id":"a"} trailing', "\u0000", '{"a":1,}']) {
    await refused(t, post("describe-key", body), 400, "KMS.0202", JSON.stringify(body));
  }
});

test("a key given twice is refused: KMS.0208 inside an encryption context, KMS.0202 elsewhere; the same request without it passes", async (t) => {
  await refused(t, post("encrypt-data", `{"key_id":"${keyId}","plain_text":"x","encryption_context":{"a":"1","a":"2"}}`), 400, "KMS.0208", "in the context");
  await refused(t, post("encrypt-data", `{"key_id":"${keyId}","plain_text":"x","encryption_context":{"a":"1","\\u0061":"2"}}`), 400, "KMS.0208", "escaped");
  await refused(t, post("describe-key", `{"key_id":"${otherKeyId}","key_id":"${keyId}"}`), 400, "KMS.0202", "a top-level field");
  const fine = await post("encrypt-data", `{"key_id":"${keyId}","plain_text":"x","encryption_context":{"a":"1","b":"2"}}`);
  t.is(fine.status, 200, fine.text);
});

test("a body that is not a JSON object (or none at all) is refused 400", async (t) => {
  for (const body of ["", "[]", '"key_id"', "42", "null", "true"]) {
    const r = await post("describe-key", body);
    t.is(r.status, 400, body);
    t.is(isWellFormedError(r), undefined, body);
    t.true(["KMS.0202", "KMS.0204", "KMS.0308"].includes(r.json.error.error_code), `${body}: ${r.json.error.error_code}`);
  }
});

test("wrong types get the field's code", async (t) => {
  const cases: Array<[string, Record<string, unknown>, KmsErrorCode]> = [
    ["describe-key", { key_id: 123 }, "KMS.0205"],
    ["describe-key", { key_id: ["a"] }, "KMS.0205"],
    ["describe-key", { key_id: null }, "KMS.0205"],
    ["describe-key", { key_id: "" }, "KMS.0205"],
    ["describe-key", { key_id: "x".repeat(256) }, "KMS.0205"],
    ["describe-key", { key_id: keyId, sequence: 1 }, "KMS.0206"],
    ["describe-key", { key_id: keyId, sequence: "s".repeat(37) }, "KMS.0206"],
    ["create-key", { key_alias: 5 }, "KMS.1101"],
    ["create-key", { key_alias: "" }, "KMS.1101"],
    ["create-key", { key_alias: "bad alias!" }, "KMS.1101"],
    ["create-key", { key_alias: "ok-alias", key_description: {} }, "KMS.1103"],
    ["create-key", { key_alias: "ok-alias", key_description: "d".repeat(256) }, "KMS.1103"],
    ["schedule-key-deletion", { key_id: keyId, pending_days: "abc" }, "KMS.1401"],
    ["schedule-key-deletion", { key_id: keyId, pending_days: 7.5 }, "KMS.1401"],
    ["schedule-key-deletion", { key_id: keyId, pending_days: -7 }, "KMS.1401"],
    ["schedule-key-deletion", { key_id: keyId, pending_days: "6" }, "KMS.1401"],
    ["schedule-key-deletion", { key_id: keyId, pending_days: "1097" }, "KMS.1401"],
    ["list-keys", { limit: "x" }, "KMS.1601"],
    ["list-keys", { limit: true }, "KMS.1601"],
    ["list-keys", { limit: "0" }, "KMS.1601"],
    ["list-keys", { limit: "2001" }, "KMS.1601"],
    ["list-keys", { marker: 5 }, "KMS.1602"],
    ["list-keys", { key_state: "9" }, "KMS.0308"],
    ["list-keys", { key_state: {} }, "KMS.0308"],
    ["list-keys", { key_spec: "FOO" }, "KMS.0308"],
    // resource_instances' matches: Huawei's codes for the key, the value and the list (OTC error table).
    ["resource_instances/action", { action: "filter", matches: [{ key: 5, value: "a" }] }, "KMS.0403"],
    ["resource_instances/action", { action: "filter", matches: [{ key: "resource_name", value: 5 }] }, "KMS.0402"],
    ["resource_instances/action", { action: "filter", matches: [5] }, "KMS.0415"],
    ["resource_instances/action", { action: "filter", matches: [{ key: "name", value: "a" }] }, "KMS.0403"],
    ["resource_instances/action", { action: "filter", matches: [{ key: "resource_name", value: "" }] }, "KMS.0402"],
  ];
  for (const [operation, body, code] of cases) await refused(t, post(operation, body), 400, code, `${operation} ${JSON.stringify(body).slice(0, 80)}`);
});

test("an encryption_algorithm Huawei defines for asymmetric keys is KMS.2105 on a symmetric key; a name it does not define is KMS.0308", async (t) => {
  const sealed = await post("encrypt-data", { key_id: keyId, plain_text: "algorithms", encryption_algorithm: "SYMMETRIC_DEFAULT" });
  t.is(sealed.status, 200, sealed.text);
  const cipherText = sealed.json.cipher_text as string;
  for (const algorithm of ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "SM2_ENCRYPT"]) {
    await refused(t, post("encrypt-data", { key_id: keyId, plain_text: "x", encryption_algorithm: algorithm }), 400, "KMS.2105", `encrypt-data ${algorithm}`);
    await refused(t, post("decrypt-data", { cipher_text: cipherText, encryption_algorithm: algorithm }), 400, "KMS.2105", `decrypt-data ${algorithm}`);
    await refused(t, post("re-encrypt", { cipher_text: cipherText, destination_key_id: keyId, source_encryption_algorithm: algorithm }), 400, "KMS.2105", `re-encrypt source ${algorithm}`);
    await refused(t, post("re-encrypt", { cipher_text: cipherText, destination_key_id: keyId, destination_encryption_algorithm: algorithm }), 400, "KMS.2105", `re-encrypt destination ${algorithm}`);
  }
  for (const algorithm of ["AES_256_GCM", "symmetric_default", "", 5]) {
    await refused(t, post("encrypt-data", { key_id: keyId, plain_text: "x", encryption_algorithm: algorithm }), 400, "KMS.0308", `encrypt-data ${JSON.stringify(algorithm)}`);
  }
  const opened = await post("decrypt-data", { cipher_text: cipherText, encryption_algorithm: "SYMMETRIC_DEFAULT" });
  t.is(opened.json.plain_text, "algorithms", opened.text);
});

test("a tag key or value of the wrong type gets the Kms's tag code, not the enclosing field's", async (t) => {
  const cases: Array<[string, Record<string, unknown>, KmsErrorCode]> = [
    [`${keyId}/tags`, { tag: { key: 1, value: "v" } }, "KMS.0406"],
    [`${keyId}/tags`, { tag: { key: "k", value: 2 } }, "KMS.0405"],
    [`${keyId}/tags/action`, { action: "create", tags: [{ key: "k", value: 3 }] }, "KMS.0405"],
    [`${keyId}/tags/action`, { action: "create", tags: [{ key: "k", value: "v" }, { key: null, value: "v" }] }, "KMS.0406"],
    [`${keyId}/tags/action`, { action: "delete", tags: ["k"] }, "KMS.0406"],
    // The list itself keeps the list's code.
    [`${keyId}/tags/action`, { action: "create", tags: "k" }, "KMS.0401"],
  ];
  for (const [operation, body, code] of cases) await refused(t, post(operation, body), 400, code, `${operation.slice(37)} ${JSON.stringify(body)}`);
  const tags = await new SdkClient(server.url, me).get(`/${keyId}/tags`);
  t.deepEqual(tags.tags, [], "nothing was tagged");
});

test("a key description holding a lone surrogate (JSON's \\u escapes carry one, UTF-8 cannot) is KMS.1103, never stored as another string", async (t) => {
  const mine = (await post("create-key", { key_alias: "lone-surrogate-description" })).json.key_info.key_id as string;
  await refused(t, post("update-key-description", String.raw`{"key_id":"${mine}","key_description":"a\ud800b"}`), 400, "KMS.1103", "update-key-description");
  await refused(t, post("create-key", String.raw`{"key_alias":"lone-surrogate-2","key_description":"\udfff"}`), 400, "KMS.1103", "create-key");
  await refused(t, post("describe-key", { key_id: "lone-surrogate-2" }), 404, "KMS.0207", "no key was created");
  // A pair is one character: accepted, and kept as sent.
  const pair = "\u{1F511} description";
  t.is((await post("update-key-description", { key_id: mine, key_description: pair })).status, 200);
  t.is((await post("describe-key", { key_id: mine })).json.key_info.key_description, pair);
});

test("a batch's tag key holding a lone surrogate is KMS.0406 whether the batch creates or deletes, not a 500", async (t) => {
  const mine = (await post("create-key", { key_alias: "lone-surrogate-tags" })).json.key_info.key_id as string;
  await refused(t, post(`${mine}/tags/action`, String.raw`{"action":"delete","tags":[{"key":"k\ud800"}]}`), 400, "KMS.0406", "batch delete");
  await refused(t, post(`${mine}/tags/action`, String.raw`{"action":"create","tags":[{"key":"k\udc00","value":"v"}]}`), 400, "KMS.0406", "batch create");
  t.is((await post(`${mine}/tags/action`, { action: "delete", tags: [{ key: "k\u{1F511}" }] })).status, 204, "a pair is fine");
});

test("missing fields are KMS.0204", async (t) => {
  const cases: Array<[string, unknown]> = [
    ["describe-key", {}],
    ["create-key", { key_description: "no alias" }],
    ["schedule-key-deletion", { key_id: keyId }],
    ["update-key-alias", { key_id: keyId }],
    ["update-key-description", { key_alias: "x" }],
    ["enable-key", { sequence: "1" }],
  ];
  for (const [operation, body] of cases) await refused(t, post(operation, body), 400, "KMS.0204", `${operation} ${JSON.stringify(body)}`);
});

test("extra fields are refused (KMS.0308), not ignored, at any depth", async (t) => {
  await refused(t, post("describe-key", { key_id: keyId, extra: 1 }), 400, "KMS.0308", "top-level extra field");
  await refused(t, post("list-keys", { limit: "10", __proto__x: "1" }), 400, "KMS.0308", "list-keys extra field");
  await refused(t, post("create-key", { key_alias: "with-extra", KEY_ALIAS: "dup" }), 400, "KMS.0308", "field names are case-sensitive");
  const token = await rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["password"], password: { user: { name: me.ak, password: me.sk, extra: true } } }, scope: { project: { id: me.projectId } } } }),
  });
  assertHuaweiError(t, token, 400, "KMS.0308", "nested extra field in a token request");
  // "__proto__" as a JSON key is an ordinary property to JSON.parse: still an unknown field.
  await refused(t, post("describe-key", `{"key_id":"${keyId}","__proto__":{"admin":true}}`), 400, "KMS.0308", "__proto__ key");
});

test("a body over server.bodyLimitBytes is KMS.0203, before any work on it", async (t) => {
  const limit = server.config.server.bodyLimitBytes;
  const big = JSON.stringify({ key_id: keyId, key_description: "d".repeat(limit) });
  t.true(big.length > limit);
  await refused(t, post("update-key-description", big), 400, "KMS.0203", "signed");
  await refused(t, rawRequest(server.url, { method: "POST", path: kmsPath(me.projectId, "describe-key"), headers: { "content-type": "application/json" }, body: big }), 400, "KMS.0203", "unsigned");
  await refused(t, rawRequest(server.url, { method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" }, body: big }), 400, "KMS.0203", "token route");
});

test("unsupported media types are KMS.0202", async (t) => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/octet-stream"]) {
    const r = await signedRequest(server.url, {
      method: "POST", path: kmsPath(me.projectId, "describe-key"), body: JSON.stringify({ key_id: keyId }), identity: me, signedHeaders: { "content-type": type },
    });
    assertHuaweiError(t, r, 400, "KMS.0202", type);
  }
});

// Routes and methods -------------------------------------------------------------------------

test("unknown routes and methods are APIGW.0101 (404)", async (t) => {
  const cases: Array<[string, string]> = [
    ["GET", "/"],
    ["GET", "/nope"],
    ["POST", kmsPath(me.projectId, "no-such-operation")],
    ["POST", `/v2.0/${me.projectId}/kms/describe-key`],
    ["POST", `/v1.0/${me.projectId}/kms`],
    ["PUT", kmsPath(me.projectId, "create-key")],
    ["DELETE", kmsPath(me.projectId, "describe-key")],
    ["PATCH", kmsPath(me.projectId, "list-keys")],
    ["GET", kmsPath(me.projectId, "describe-key")],
    ["POST", kmsPath(me.projectId, "user-quotas")],
    ["POST", "/healthz"],
  ];
  for (const [method, path] of cases) {
    const signed = await signedRequest(server.url, { method, path, identity: me, ...(method === "GET" || method === "DELETE" ? {} : { body: "{}" }) });
    assertHuaweiError(t, signed, 404, "APIGW.0101", `${method} ${path} (signed)`);
    const unsigned = await rawRequest(server.url, { method, path });
    assertHuaweiError(t, unsigned, 404, "APIGW.0101", `${method} ${path} (unsigned)`);
  }
});

test("a malformed project id in the URL is KMS.0201", async (t) => {
  for (const project of ["a.b", "x".repeat(65), "%20"]) {
    await refused(t, post("describe-key", { key_id: keyId }, { project }), 400, "KMS.0201", project);
  }
});

test("a path's key_id may be a 255-character alias; a malformed escape or an overlong parameter is KMS.0201 with a Huawei body", async (t) => {
  const alias = `${"a".repeat(200)}/${"b".repeat(54)}`;
  await new SdkClient(server.url, me).post("create-key", { key_alias: alias });
  const tags = await signedRequest(server.url, { method: "GET", path: `/v1.0/${me.projectId}/kms/${encodeURIComponent(alias)}/tags`, identity: me });
  t.is(tags.status, 200, JSON.stringify(tags.json));
  t.deepEqual(tags.json.tags, []);
  for (const path of [`/v1.0/${me.projectId}/kms/%ZZ/tags`, `/v1.0/${me.projectId}/kms/${keyId}/tags/${"k".repeat(1100)}`]) {
    await refused(t, rawRequest(server.url, { method: path.endsWith("tags") ? "GET" : "DELETE", path }), 400, "KMS.0201", path.slice(0, 60));
  }
});

// Encodings ----------------------------------------------------------------------------------

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The same bytes with a bit set that the last character before the padding carries unused. */
function withPaddingBits(canonical: string): string {
  const at = canonical.search(/=+$/u) - 1;
  const altered = canonical.slice(0, at) + BASE64_ALPHABET[BASE64_ALPHABET.indexOf(canonical[at]!) | 1] + canonical.slice(at + 1);
  if (!Buffer.from(altered, "base64").equals(Buffer.from(canonical, "base64")) || altered === canonical) throw new Error("not a padding-bit variant");
  return altered;
}

test("bad base64 and hex are the field's code", async (t) => {
  const sealed = (await new SdkClient(server.url, me).post("encrypt-data", { key_id: keyId, plain_text: "hello" })).cipher_text as string;
  const cases: Array<[string, Record<string, unknown>, KmsErrorCode]> = [
    ["decrypt-data", { cipher_text: "!!!!" + sealed.slice(4) }, "KMS.2201"],
    ["decrypt-data", { cipher_text: sealed.slice(0, -1) }, "KMS.2201"],
    ["decrypt-data", { cipher_text: ` ${sealed}` }, "KMS.2201"],
    ["decrypt-data", { cipher_text: sealed.replace(/=+$/u, "") + "===" }, "KMS.2201"],
    ["decrypt-data", { cipher_text: Buffer.from("short").toString("base64") }, "KMS.2201"],
    ["decrypt-data", { cipher_text: withPaddingBits(sealed) }, "KMS.2201"],
    ["decrypt-data", { cipher_text: 12 }, "KMS.2201"],
    ["encrypt-datakey", { key_id: keyId, plain_text: "zz".repeat(64), datakey_plain_length: "32" }, "KMS.2101"],
    ["encrypt-datakey", { key_id: keyId, plain_text: "abc", datakey_plain_length: "32" }, "KMS.2101"],
    ["decrypt-datakey", { key_id: keyId, cipher_text: "xyz", datakey_cipher_length: "32" }, "KMS.2201"],
    ["decrypt-datakey", { key_id: keyId, cipher_text: "0".repeat(127), datakey_cipher_length: "32" }, "KMS.2201"],
    ["encrypt-data", { key_id: keyId, plain_text: "" }, "KMS.2101"],
    ["encrypt-data", { key_id: keyId, plain_text: "p".repeat(4097) }, "KMS.2101"],
    ["gen-random", { random_data_length: "12" }, "KMS.1802"],
    ["create-datakey", { key_id: keyId, datakey_length: "9000" }, "KMS.1901"],
  ];
  for (const [operation, body, code] of cases) await refused(t, post(operation, body), 400, code, `${operation} ${JSON.stringify(body).slice(0, 60)}`);
});

// Signatures ---------------------------------------------------------------------------------

const describeBody = (): string => JSON.stringify({ key_id: keyId });

function flipHex(hex: string): string {
  return hex.slice(0, 10) + (hex[10] === "0" ? "1" : "0") + hex.slice(11);
}

test("a request changed after signing, or signed with the wrong SK or an unknown AK, is APIGW.0301 (401)", async (t) => {
  const base = { method: "POST", path: kmsPath(me.projectId, "describe-key"), body: describeBody(), identity: me };
  t.is((await signedRequest(server.url, base)).status, 200, "the unchanged request is accepted");
  const mutations: Array<[string, Parameters<typeof signedRequest>[2]]> = [
    // A change that keeps the body valid for the schema: the signature alone must catch it.
    ["a body byte flipped", (r) => {
      const bytes = Buffer.from(r.body as string);
      const at = bytes.indexOf(Buffer.from(keyId.slice(-4)));
      bytes[at]! = bytes[at] === 0x61 ? 0x62 : 0x61;
      r.body = bytes;
    }],
    ["whitespace added to the body", (r) => void (r.body = ` ${r.body as string}`)],
    ["the signature's hex flipped", (r) => void (r.headers.authorization = r.headers.authorization!.replace(/Signature=([0-9a-f]+)/u, (_m, hex: string) => `Signature=${flipHex(hex)}`))],
    ["the signature truncated", (r) => void (r.headers.authorization = r.headers.authorization!.slice(0, -2))],
    ["another path", (r) => void (r.path = kmsPath(me.projectId, "enable-key"))],
    ["a query added", (r) => void (r.path += "?x=1")],
    ["the date moved, inside the window", (r) => void (r.headers["x-sdk-date"] = formatSdkDate(Date.now() - 61_000))],
    ["a signed header's value changed", (r) => void (r.headers["content-type"] = "application/json; charset=utf-8")],
    ["a signed header missing from the request", (r) => {
      r.headers.authorization = r.headers.authorization!.replace("SignedHeaders=", "SignedHeaders=x-extra;");
    }],
    ["another AK", (r) => void (r.headers.authorization = r.headers.authorization!.replace(/Access=[A-Z0-9]+/u, `Access=${"A".repeat(20)}`))],
    ["Authorization removed", (r) => void delete r.headers.authorization],
    ["Authorization of another scheme", (r) => void (r.headers.authorization = `Bearer ${me.sk}`)],
    ["Authorization with SHA-1 name", (r) => void (r.headers.authorization = r.headers.authorization!.replace("SDK-HMAC-SHA256", "SDK-HMAC-SHA1"))],
    ["X-Sdk-Date removed", (r) => void delete r.headers["x-sdk-date"]],
    ["X-Sdk-Date malformed", (r) => void (r.headers["x-sdk-date"] = "2024-01-01T00:00:00Z")],
    ["X-Sdk-Date impossible", (r) => void (r.headers["x-sdk-date"] = "20240230T000000Z")],
  ];
  for (const [name, mutate] of mutations) await refused(t, signedRequest(server.url, base, mutate), 401, "APIGW.0301", name);
  await refused(t, signedRequest(server.url, { ...base, identity: { ak: me.ak, sk: me.sk.slice(1) + "x" } }), 401, "APIGW.0301", "wrong SK");
  await refused(t, signedRequest(server.url, { ...base, identity: { ak: "UNKNOWNAK00000000000", sk: me.sk } }), 401, "APIGW.0301", "unknown AK");
  const noAuth = await rawRequest(server.url, { method: "POST", path: base.path, headers: { "content-type": "application/json" }, body: base.body });
  assertHuaweiError(t, noAuth, 401, "APIGW.0301", "no Authorization");
  // Unauthenticated requests are refused 401 whatever their body (authentication comes before validation).
  const unauthInvalid = await rawRequest(server.url, { method: "POST", path: base.path, headers: { "content-type": "application/json" }, body: JSON.stringify({ key_id: 5, extra: 1 }) });
  assertHuaweiError(t, unauthInvalid, 401, "APIGW.0301", "no Authorization, invalid body");
  // Every cause is the one body: a caller learns nothing about which AKs exist.
  const a = await signedRequest(server.url, { ...base, identity: { ak: "UNKNOWNAK00000000000", sk: me.sk } });
  const b = await signedRequest(server.url, { ...base, identity: { ak: me.ak, sk: "x".repeat(40) } });
  t.deepEqual(withoutRequestId(a), withoutRequestId(b));
});

// Known gap (reported): the signature is verified by the service with the call, after schema
// validation, so a request with a well-formed but wrong signature learns its body's validation error
// (400) instead of 401 — app.ts promises 401 "whatever its body". ava reports when this starts passing.
test("a wrongly signed request is 401 whatever its body, as an unsigned one is", async (t) => {
  const wrongSk = { ak: me.ak, sk: "x".repeat(40) };
  await refused(t, post("describe-key", { key_id: 5 }, { identity: wrongSk }), 401, "APIGW.0301", "wrong SK, invalid key_id");
  await refused(t, post("describe-key", { key_id: keyId, extra: 1 }, { identity: wrongSk }), 401, "APIGW.0301", "wrong SK, extra field");
});

test("a body that cannot be parsed is no exception: without usable credentials it is 401 (a bad token 403), not 400", async (t) => {
  const path = kmsPath(me.projectId, "describe-key");
  const json = { "content-type": "application/json" };
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: json, body: '{"key_id":' }), 401, "APIGW.0301", "unsigned, not JSON");
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: { "content-type": "text/plain" }, body: "key_id" }), 401, "APIGW.0301", "unsigned, text/plain");
  await refused(t, post("describe-key", '{"key_id":', { identity: { ak: me.ak, sk: "x".repeat(40) } }), 401, "APIGW.0301", "wrong SK, not JSON");
  await refused(t, post("describe-key", '{"key_id":', { time: Date.now() - server.config.auth.clockSkewSeconds * 1000 - 60_000 }), 401, "APIGW.0301", "stale date, not JSON");
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: { ...json, "x-auth-token": "hsk1.forged" }, body: "{" }), 403, "KMS.0302", "forged token, not JSON");
  // Well authenticated, the same bodies are what is wrong.
  await refused(t, post("describe-key", '{"key_id":'), 400, "KMS.0202", "signed, not JSON");
  const token = (await rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: json,
    body: JSON.stringify({ auth: { identity: { methods: ["password"], password: { user: { name: me.ak, password: me.sk } } }, scope: { project: { id: me.projectId } } } }),
  })).headers.get("x-subject-token")!;
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: { ...json, "x-auth-token": token }, body: "{" }), 400, "KMS.0202", "token, not JSON");
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: { "content-type": "text/plain", "x-auth-token": token }, body: "{}" }), 400, "KMS.0202", "token, text/plain");
});

test("X-Sdk-Date must be signed: a signature over every other header is APIGW.0301", async (t) => {
  const path = kmsPath(me.projectId, "describe-key");
  const body = describeBody();
  const date = formatSdkDate(Date.now());
  const headers: Record<string, string> = { "content-type": "application/json", host: new URL(server.url).host, "x-sdk-date": date };
  const signed = ["content-type", "host"];
  const canonical = canonicalRequest({ method: "POST", rawPath: path, rawQuery: "", signedHeaders: signed, header: (n) => headers[n], payloadHash: sha256Hex(body) })!;
  const signature = createHmac("sha256", me.sk).update(stringToSign(date, canonical)).digest("hex");
  const { host: _host, ...sendable } = headers;
  const authorization = `SDK-HMAC-SHA256 Access=${me.ak}, SignedHeaders=${signed.join(";")}, Signature=${signature}`;
  await refused(t, rawRequest(server.url, { method: "POST", path, headers: { ...sendable, authorization }, body }), 401, "APIGW.0301", "x-sdk-date unsigned");
  // The same construction with x-sdk-date among the signed headers is accepted: the refusal is about that header.
  const signedWithDate = ["content-type", "host", "x-sdk-date"];
  const canonical2 = canonicalRequest({ method: "POST", rawPath: path, rawQuery: "", signedHeaders: signedWithDate, header: (n) => headers[n], payloadHash: sha256Hex(body) })!;
  const signature2 = createHmac("sha256", me.sk).update(stringToSign(date, canonical2)).digest("hex");
  const ok = await rawRequest(server.url, {
    method: "POST", path, body, headers: { ...sendable, authorization: `SDK-HMAC-SHA256 Access=${me.ak}, SignedHeaders=${signedWithDate.join(";")}, Signature=${signature2}` },
  });
  t.is(ok.status, 200, ok.text);
});

test("an X-Sdk-Date outside auth.clockSkewSeconds either way is APIGW.0301, even correctly signed", async (t) => {
  const skew = server.config.auth.clockSkewSeconds * 1000;
  const body = { key_id: keyId };
  t.is((await post("describe-key", body, { time: Date.now() - skew + 60_000 })).status, 200, "inside the window (past)");
  t.is((await post("describe-key", body, { time: Date.now() + skew - 60_000 })).status, 200, "inside the window (future)");
  await refused(t, post("describe-key", body, { time: Date.now() - skew - 60_000 }), 401, "APIGW.0301", "too old");
  await refused(t, post("describe-key", body, { time: Date.now() + skew + 60_000 }), 401, "APIGW.0301", "too far ahead");
  await refused(t, post("describe-key", body, { time: Date.UTC(2000, 0, 1) }), 401, "APIGW.0301", "year 2000");
});

test("replays: accepted twice by default (the SDK signs no nonce); refused once seen with auth.rejectReplays", async (t) => {
  // Default server: two identical requests in one second carry one signature, and both are served.
  const once = { method: "POST", path: kmsPath(me.projectId, "describe-key"), body: describeBody(), identity: me, time: Date.now() };
  const headersOnce = await (async () => {
    const captured: Record<string, string> = {};
    const first = await signedRequest(server.url, once, (r) => Object.assign(captured, r.headers));
    t.is(first.status, 200);
    return captured;
  })();
  const { host: _h, ...again } = headersOnce;
  const second = await rawRequest(server.url, { method: "POST", path: once.path, headers: again, body: once.body });
  t.is(second.status, 200, "the same signature again is accepted when replays are not rejected");

  const strict = await startTestServer(t, { overrides: { auth: { rejectReplays: true } } });
  const id = { ak: strict.credentials.ak, sk: strict.credentials.sk };
  const key = (await new SdkClient(strict.url, { ...id, projectId: strict.credentials.project_id }).post("create-key", { key_alias: "replay" })).key_info.key_id;
  const path = kmsPath(strict.credentials.project_id, "describe-key");
  const body = JSON.stringify({ key_id: key });
  const captured: Record<string, string> = {};
  const first = await signedRequest(strict.url, { method: "POST", path, body, identity: id }, (r) => Object.assign(captured, r.headers));
  t.is(first.status, 200, first.text);
  const { host: _h2, ...replayHeaders } = captured;
  const replay = await rawRequest(strict.url, { method: "POST", path, headers: replayHeaders, body });
  assertHuaweiError(t, replay, 401, "APIGW.0301", "replayed signature");
  // A new signature (another date) of the same request is fine.
  const fresh = await signedRequest(strict.url, { method: "POST", path, body, identity: id, time: Date.now() + 1000 });
  t.is(fresh.status, 200, fresh.text);
});

// Tokens -------------------------------------------------------------------------------------

function tokenBody(identity: { ak: string; sk: string }, projectId: string): string {
  return JSON.stringify({ auth: { identity: { methods: ["password"], password: { user: { name: identity.ak, password: identity.sk } } }, scope: { project: { id: projectId } } } });
}

async function issueToken(url: string, identity: { ak: string; sk: string }, projectId: string): Promise<RawResponse> {
  return rawRequest(url, { method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" }, body: tokenBody(identity, projectId) });
}

function withToken(url: string, token: string, projectId: string, operation: string, body: unknown): Promise<RawResponse> {
  return rawRequest(url, { method: "POST", path: kmsPath(projectId, operation), headers: { "content-type": "application/json", "x-auth-token": token }, body: JSON.stringify(body) });
}

test("token requests with wrong credentials or for a project without a role are refused", async (t) => {
  await refused(t, issueToken(server.url, { ak: me.ak, sk: "x".repeat(40) }, me.projectId), 401, "APIGW.0301", "wrong SK");
  await refused(t, issueToken(server.url, { ak: "NOSUCHAK000000000000", sk: me.sk }, me.projectId), 401, "APIGW.0301", "unknown AK");
  const foreign = await issueToken(server.url, me, other.projectId);
  const missing = await issueToken(server.url, me, randomBytes(16).toString("hex"));
  assertHuaweiError(t, foreign, 403, "KMS.0305", "another account's project");
  assertHuaweiError(t, missing, 403, "KMS.0305", "no such project");
  t.deepEqual(withoutRequestId(foreign), withoutRequestId(missing), "no hint whether the project exists");
  const noMethods = await rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["token"] }, scope: { project: { id: me.projectId } } } }),
  });
  t.is(isWellFormedError(noMethods), undefined);
  t.is(noMethods.status, 400);
  await refused(t, rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["password"] } } }),
  }), 400, "KMS.0204", "no scope");
  await refused(t, rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" },
    body: JSON.stringify({ auth: { identity: { methods: ["password"] }, scope: { project: { id: me.projectId } } } }),
  }), 401, "APIGW.0301", "password method without a password");
});

test("tokens: an expired one is KMS.0303, an altered or foreign one KMS.0302, an empty one KMS.0301", async (t) => {
  let clock = Date.now();
  const timed = await startTestServer(t, { now: () => clock, overrides: { auth: { tokenTtlSeconds: 60 } } });
  const id = { ak: timed.credentials.ak, sk: timed.credentials.sk };
  const project = timed.credentials.project_id;
  const issued = await issueToken(timed.url, id, project);
  t.is(issued.status, 201, issued.text);
  const token = issued.headers.get("x-subject-token")!;
  t.truthy(token);
  t.is(Date.parse(issued.json.token.expires_at) - Date.parse(issued.json.token.issued_at), 60_000);
  const ok = await withToken(timed.url, token, project, "list-keys", {});
  t.is(ok.status, 200, ok.text);

  const last = token.length - 3;
  const altered = token.slice(0, last) + (token[last] === "A" ? "B" : "A") + token.slice(last + 1);
  await refused(t, withToken(timed.url, altered, project, "list-keys", {}), 403, "KMS.0302", "altered token");
  await refused(t, withToken(timed.url, "not-a-token", project, "list-keys", {}), 403, "KMS.0302", "garbage token");
  await refused(t, withToken(timed.url, "hsk1." + "A".repeat(3000), project, "list-keys", {}), 403, "KMS.0302", "oversized token");
  // A token of another server (another HSM MAC key) is not ours.
  const elsewhere = await issueToken(server.url, me, me.projectId);
  await refused(t, withToken(timed.url, elsewhere.headers.get("x-subject-token")!, project, "list-keys", {}), 403, "KMS.0302", "another server's token");
  await refused(t, withToken(timed.url, "", project, "list-keys", {}), 403, "KMS.0301", "empty token");

  clock += 59_000;
  t.is((await withToken(timed.url, token, project, "list-keys", {})).status, 200, "still valid before its expiry");
  clock += 1_000;
  await refused(t, withToken(timed.url, token, project, "list-keys", {}), 403, "KMS.0303", "expired token");
  // The clock also bounds X-Sdk-Date: a request signed at the real time is now far from the server's.
  clock += 3_600_000;
  await refused(t, signedRequest(timed.url, { method: "POST", path: kmsPath(project, "list-keys"), body: "{}", identity: id }), 401, "APIGW.0301", "signed at the real time");
  const inServerTime = await signedRequest(timed.url, { method: "POST", path: kmsPath(project, "list-keys"), body: "{}", identity: id, time: clock });
  t.is(inServerTime.status, 200, inServerTime.text);
});

test("a disabled principal is unauthenticated, as IAM's disabled user: its token answered as a forged one (KMS.0302), its AK/SK as an unknown one (APIGW.0301)", async (t) => {
  let clock = Date.now();
  const timed = await startTestServer(t, { now: () => clock });
  const user = await createPrincipal(timed, ["crypto_user"]);
  const token = (await issueToken(timed.url, user, user.projectId)).headers.get("x-subject-token")!;
  const signed = (identity: { ak: string; sk: string }): Promise<RawResponse> =>
    signedRequest(timed.url, { method: "POST", path: kmsPath(user.projectId, "gen-random"), body: JSON.stringify({ random_data_length: "8" }), identity, time: clock });
  t.is((await withToken(timed.url, token, user.projectId, "gen-random", { random_data_length: "8" })).status, 200);
  t.is((await signed(user)).status, 200);

  await timed.kmsService!.kms.admin.setPrincipalDisabled(user.userId, true);
  // Past the authenticator's re-read interval (1 s) on the server's clock.
  clock += 2_000;
  const byToken = await withToken(timed.url, token, user.projectId, "gen-random", { random_data_length: "8" });
  assertHuaweiError(t, byToken, 403, "KMS.0302", "a disabled principal's token");
  const forged = await withToken(timed.url, "not-a-token", user.projectId, "gen-random", { random_data_length: "8" });
  t.deepEqual(withoutRequestId(byToken), withoutRequestId(forged), "the same answer as a token that is not one");
  const bySignature = await signed(user);
  assertHuaweiError(t, bySignature, 401, "APIGW.0301", "a disabled principal's AK/SK");
  t.deepEqual(withoutRequestId(bySignature), withoutRequestId(await signed({ ak: "NOSUCHAK000000000000", sk: user.sk })), "the same answer as an unknown AK");
  await refused(t, issueToken(timed.url, user, user.projectId), 401, "APIGW.0301", "no new token for a disabled principal");
});

test("a token used on another project's URL is KMS.0321; so is an X-Project-Id that differs from the URL", async (t) => {
  const issued = await issueToken(server.url, me, me.projectId);
  const token = issued.headers.get("x-subject-token")!;
  t.is((await withToken(server.url, token, me.projectId, "describe-key", { key_id: keyId })).status, 200);
  await refused(t, withToken(server.url, token, other.projectId, "describe-key", { key_id: otherKeyId }), 403, "KMS.0321", "token of P on Q's URL");
  await refused(t, withToken(server.url, token, randomBytes(16).toString("hex"), "list-keys", {}), 403, "KMS.0321", "token of P on a random project");
  const mismatched = await signedRequest(server.url, {
    method: "POST", path: kmsPath(me.projectId, "describe-key"), body: describeBody(), identity: me,
    signedHeaders: { "content-type": "application/json", "x-project-id": other.projectId },
  });
  assertHuaweiError(t, mismatched, 403, "KMS.0321", "X-Project-Id of another project");
  const matching = await signedRequest(server.url, {
    method: "POST", path: kmsPath(me.projectId, "describe-key"), body: describeBody(), identity: me,
    signedHeaders: { "content-type": "application/json", "x-project-id": me.projectId },
  });
  t.is(matching.status, 200, "X-Project-Id equal to the URL's (as the SDK sends it) is fine");
});

// Other projects -----------------------------------------------------------------------------

test("another project's id in the URL is 403 KMS.0306 with the same body whether or not the project exists", async (t) => {
  const random = randomBytes(16).toString("hex");
  const operations: Array<[string, unknown]> = [
    ["list-keys", {}],
    ["describe-key", { key_id: otherKeyId }],
    ["create-key", { key_alias: "intruder" }],
    ["disable-key", { key_id: otherKeyId }],
    ["encrypt-data", { key_id: otherKeyId, plain_text: "x" }],
  ];
  for (const [operation, body] of operations) {
    const existing = await post(operation, body, { project: other.projectId });
    const missing = await post(operation, body, { project: random });
    assertHuaweiError(t, existing, 403, "KMS.0306", `${operation} in an existing project of another account`);
    assertHuaweiError(t, missing, 403, "KMS.0306", `${operation} in a project that does not exist`);
    t.deepEqual(withoutRequestId(existing), withoutRequestId(missing), `${operation}: the bodies tell nothing (but their request ids)`);
    t.deepEqual(
      [...existing.headers.keys()].filter((h) => h !== "date" && h !== "x-request-id").sort(),
      [...missing.headers.keys()].filter((h) => h !== "date" && h !== "x-request-id").sort(),
      `${operation}: the same headers`,
    );
  }
  const quotas = await signedRequest(server.url, { method: "GET", path: kmsPath(other.projectId, "user-quotas"), identity: me });
  assertHuaweiError(t, quotas, 403, "KMS.0306", "GET user-quotas of another project");
  // Their key named from my project is simply missing.
  await refused(t, post("describe-key", { key_id: otherKeyId }), 404, "KMS.0207", "another project's key id in mine");
  // Nothing changed in theirs.
  const theirs = await new SdkClient(server.url, { ...other.owner }).post("describe-key", { key_id: otherKeyId });
  t.is(theirs.key_info.key_state, "2");
});

test("a principal without the role is KMS.0306; a key that does not exist is KMS.0207", async (t) => {
  const auditor = await createPrincipal(server, ["auditor"]);
  await refused(t, post("create-key", { key_alias: "by-auditor" }, { identity: auditor }), 403, "KMS.0306", "auditor creating a key");
  await refused(t, post("disable-key", { key_id: keyId }, { identity: auditor }), 403, "KMS.0306", "auditor disabling a key");
  await refused(t, post("describe-key", { key_id: "00000000-0000-4000-8000-000000000000" }), 404, "KMS.0207", "no such key id");
  await refused(t, post("describe-key", { key_id: "no-such-alias" }), 404, "KMS.0207", "no such alias");
});

// Request ids --------------------------------------------------------------------------------

test("X-Request-Id: a well-formed client id is echoed, anything else replaced; present on every response", async (t) => {
  const echoed = await rawRequest(server.url, { method: "GET", path: "/healthz", headers: { "x-request-id": "client-id_1.2:3" } });
  t.is(echoed.headers.get("x-request-id"), "client-id_1.2:3");
  for (const bad of ["has space", "x".repeat(129), "semi;colon"]) {
    const r = await rawRequest(server.url, { method: "GET", path: "/nope", headers: { "x-request-id": bad } });
    const id = r.headers.get("x-request-id");
    t.truthy(id);
    t.not(id, bad);
    t.regex(id!, /^[0-9a-f-]{36}$/u);
  }
  const signedOk = await post("describe-key", { key_id: keyId });
  t.is(signedOk.status, 200);
  t.truthy(signedOk.headers.get("x-request-id"));
  t.not(signedOk.headers.get("x-request-id"), (await post("describe-key", { key_id: keyId })).headers.get("x-request-id"), "ids differ per request");
});
