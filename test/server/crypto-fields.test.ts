// Field rules of the data-key and random routes that a Huawei client relies on, through the Huawei
// SDK core: "" for an optional field is no value (create-datakey's "both empty" default,
// re-encrypt's datakey_cipher_length), and a length that is not a count of bits gets the same
// code over HTTP as through the Kms, which the CLI and library callers see.
import test from "ava";
import type { KmsErrorCode } from "../../src/kms/errors.js";
import { KmsError } from "../../src/kms/errors.js";
import type { ServiceMethod } from "../../src/service/service.js";
import { kmsPath, SdkClient, signedRequest } from "./helpers/client.js";
import { sharedScope, startTestServer, type TestServer } from "./helpers/server.js";

const scope = sharedScope();
test.after.always(() => scope.close());

let server: TestServer;
let sdk: SdkClient;
let keyId: string;

test.before(async () => {
  server = await startTestServer(scope);
  const { ak, sk, project_id: projectId } = server.credentials;
  sdk = new SdkClient(server.url, { ak, sk, projectId });
  keyId = (await sdk.post("create-key", { key_alias: "crypto-fields" })).key_info.key_id;
});

/** The error code of a POST signed as the SDK signs it (the SDK itself hides Huawei's error body). */
async function httpCode(operation: string, body: Record<string, unknown>): Promise<string> {
  const { ak, sk, project_id: projectId } = server.credentials;
  const response = await signedRequest(server.url, { method: "POST", path: kmsPath(projectId, operation), body: JSON.stringify(body), identity: { ak, sk } });
  return response.status === 200 ? "200" : String(response.json?.error?.error_code);
}

/** The error code the Kms gives the same request as a library or CLI caller. */
async function kmsCode(method: ServiceMethod, request: Record<string, unknown>): Promise<string> {
  const { project_id: projectId, user_id: principalId } = server.credentials;
  try {
    await server.kmsService!.callAs({ projectId, principalId, requestId: "crypto-fields", source: "test" }, method, request);
    return "200";
  } catch (error) {
    return error instanceof KmsError ? error.code : String(error);
  }
}

test("create-datakey: datakey_length and key_spec both \"\" give Huawei's 256-bit default; \"\" leaves out either one", async (t) => {
  const cases: Array<[Record<string, unknown>, number]> = [
    [{ datakey_length: "", key_spec: "" }, 32],
    [{ datakey_length: "" }, 32],
    [{ key_spec: "" }, 32],
    [{ datakey_length: "", key_spec: "AES_128" }, 16],
    [{ datakey_length: "64", key_spec: "" }, 8],
  ];
  for (const [fields, bytes] of cases) {
    const made = await sdk.post("create-datakey", { key_id: keyId, ...fields });
    t.is(made.plain_text.length, 2 * bytes, JSON.stringify(fields));
    const opened = await sdk.post("decrypt-datakey", { key_id: keyId, cipher_text: made.cipher_text, datakey_cipher_length: String(bytes) });
    t.is(opened.data_key, made.plain_text, JSON.stringify(fields));
    const hidden = await sdk.post("create-datakey-without-plaintext", { key_id: keyId, ...fields });
    t.is(hidden.cipher_text.length, 2 * (51 + bytes), `without plaintext ${JSON.stringify(fields)}`);
  }
});

test("re-encrypt: datakey_cipher_length \"\" is no data key, so cipher_text is encrypt-data's, base64 in and out", async (t) => {
  const sealed = await sdk.post("encrypt-data", { key_id: keyId, plain_text: "moved with an empty length" });
  const moved = await sdk.post("re-encrypt", { cipher_text: sealed.cipher_text, destination_key_id: keyId, datakey_cipher_length: "" });
  t.is(Buffer.from(moved.cipher_text, "base64").toString("base64"), moved.cipher_text);
  t.is((await sdk.post("decrypt-data", { cipher_text: moved.cipher_text })).plain_text, "moved with an empty length");
});

test("a datakey_length or random_data_length that is not a count of bits gets the Kms's code over HTTP, never KMS.1802's \"multiple of 8\"", async (t) => {
  // Negative and past the schema's largest integer, off the step too: still out of range, not "multiple of 8".
  const values: unknown[] = ["lots", "-8", -8, "-7", -1, "99999999999", 4294967297, 1.5, "8.0", true, {}];
  const expected: { datakey: KmsErrorCode; random: KmsErrorCode } = { datakey: "KMS.1901", random: "KMS.0308" };
  for (const value of values) {
    const what = JSON.stringify(value);
    const http = { datakey: await httpCode("create-datakey", { key_id: keyId, datakey_length: value }), random: await httpCode("gen-random", { random_data_length: value }) };
    const kms = { datakey: await kmsCode("createDataKey", { keyId, datakeyLength: value }), random: await kmsCode("genRandom", { randomDataLength: value }) };
    t.deepEqual(http, kms, `HTTP and Kms agree on ${what}`);
    t.deepEqual(http, expected, what);
  }
});

test("the largest valid re-encrypt fits the default body limit, as a client that escapes non-ASCII sends it", async (t) => {
  const { ak, sk, project_id: projectId } = server.credentials;
  // Two encryption contexts at the 8192-character limit, every character "é": Python's json.dumps
  // (the Huawei Python SDK's serializer) writes each as \u00e9, six bytes, about 49 KB a context.
  const context = (tag: string): Record<string, string> => ({ [tag]: "é".repeat(8192 - 7 - tag.length) });
  const source = context("s");
  const destination = context("d");
  t.is(JSON.stringify(source).length, 8192);
  const sealed = await sdk.post("encrypt-data", { key_id: keyId, plain_text: "x".repeat(4096), encryption_context: source });
  const escaped = (value: unknown): string => JSON.stringify(value).replace(/[\u0080-\uffff]/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const body = `{"cipher_text":${JSON.stringify(sealed.cipher_text)},"source_encryption_context":${escaped(source)},` +
    `"destination_key_id":${JSON.stringify(keyId)},"destination_encryption_context":${escaped(destination)}}`;
  t.true(body.length > 65_536, `${body.length} bytes`);
  const response = await signedRequest(server.url, { method: "POST", path: kmsPath(projectId, "re-encrypt"), body, identity: { ak, sk } });
  t.is(response.status, 200, JSON.stringify(response.json));
});
