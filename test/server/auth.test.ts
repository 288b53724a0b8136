// Authentication at the HTTP edge: SDK-HMAC-SHA256 requests of Huawei's own SDK core whose path
// carries a parameter the SDK signs differently from how it sends it, and what POST /v3/auth/tokens
// accepts as an identity.
import test from "ava";
import { kmsPath, rawRequest, SdkClient, signedRequest, assertHuaweiError } from "./helpers/client.js";
import { sharedScope, startTestServer, type TestServer } from "./helpers/server.js";

const scope = sharedScope();
test.after.always(() => scope.close());

let server: TestServer;
let me: { ak: string; sk: string; projectId: string };

test.before(async () => {
  server = await startTestServer(scope);
  me = { ak: server.credentials.ak, sk: server.credentials.sk, projectId: server.credentials.project_id };
});

test("the SDK's DELETE of a tag whose key is non-ASCII or holds ' ^ | verifies (the path parameter goes into the URL unencoded)", async (t) => {
  const sdk = new SdkClient(server.url, me);
  const keyId = (await sdk.post("create-key", { key_alias: "tag-paths" })).key_info.key_id as string;
  for (const key of ["é", "项目", "a|b", "a'b", "a^b", "a b"]) {
    const created = await sdk.send("POST", `/${keyId}/tags`, { tag: { key, value: "v" } });
    t.is(created.status, 204, key);
    // As the generated KmsClient.deleteTag passes it: pathParams { key_id, key } replaced verbatim.
    const deleted = await sdk.send("DELETE", `/${keyId}/tags/${key}`).catch((error: { errorCode?: string }) => ({ status: error.errorCode }));
    t.is(deleted.status, 204, key);
  }
  t.deepEqual((await sdk.get(`/${keyId}/tags`)).tags, []);
});

test("a request signed by signRequest over a pre-escaped path verifies too", async (t) => {
  const sdk = new SdkClient(server.url, me);
  const keyId = (await sdk.post("create-key", { key_alias: "tag-paths-escaped" })).key_info.key_id as string;
  await sdk.send("POST", `/${keyId}/tags`, { tag: { key: "é|x", value: "v" } });
  const r = await signedRequest(server.url, { method: "DELETE", path: kmsPath(me.projectId, `${keyId}/tags/${encodeURIComponent("é|x")}`), identity: me });
  t.is(r.status, 204, r.text);
});

function tokenBody(methods: string[], password?: { name: string; password: string }): string {
  return JSON.stringify({ auth: { identity: { methods, ...(password ? { password: { user: password } } : {}) }, scope: { project: { id: me.projectId } } } });
}

test("POST /v3/auth/tokens takes no X-Auth-Token as identity: a token cannot buy its own successor", async (t) => {
  const issued = await rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" }, body: tokenBody(["password"], { name: me.ak, password: me.sk }),
  });
  t.is(issued.status, 201, issued.text);
  const token = issued.headers.get("x-subject-token")!;
  // Any Authorization header beside the token: refused as the signature it is not.
  const renewed = await rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json", authorization: "x", "x-auth-token": token }, body: tokenBody(["hw_ak_sk"]),
  });
  assertHuaweiError(t, renewed, 401, "APIGW.0301", "token renewing itself");
  t.is(renewed.headers.get("x-subject-token"), null);
  // A good signature is the identity whatever X-Auth-Token comes with it.
  const signed = await signedRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", identity: me, body: tokenBody(["hw_ak_sk"]), headers: { "x-auth-token": "not-a-token" },
  });
  t.is(signed.status, 201, signed.text);
  t.deepEqual(signed.json.token.methods, ["hw_ak_sk"]);
});

test("POST /v3/auth/tokens refuses the SK with NULs appended as the password (the same HMAC key, not the same secret)", async (t) => {
  const request = (password: string) => rawRequest(server.url, {
    method: "POST", path: "/v3/auth/tokens", headers: { "content-type": "application/json" }, body: tokenBody(["password"], { name: me.ak, password }),
  });
  for (const password of [`${me.sk}\u0000`, `${me.sk}\u0000\u0000\u0000`]) {
    const r = await request(password);
    assertHuaweiError(t, r, 401, "APIGW.0301", JSON.stringify(password));
    t.is(r.headers.get("x-subject-token"), null);
  }
  t.is((await request(me.sk)).status, 201);
});
