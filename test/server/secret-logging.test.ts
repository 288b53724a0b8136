/**
 * Secrets never reach the log, even at trace: a real service behind the HTTP layer, a pino logger
 * configured as the server configures its own (REDACT_PATHS), and requests that carry every kind of
 * secret the API handles — plaintexts, data keys, the SK as an IAM password, X-Auth-Tokens — in
 * successful requests and in ones refused by the parser, the schema, the service or authentication.
 * Every secret value is then searched for in the captured lines, as written and hex/base64-encoded.
 */
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { pino } from "pino";
import { buildApp, REDACT_PATHS } from "../../src/server/app.js";
import { signRequest } from "../../src/service/auth/sdk-hmac-sha256.js";
import { KmsService } from "../../src/service/service.js";
import { tempDir, testConfig } from "./helpers/server.js";

test("no plaintext, data key, SK, password or token value appears in a trace-level log", async (t) => {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = pino({ level: "trace", redact: REDACT_PATHS }, stream);
  const config = testConfig(tempDir(t));
  const service = await KmsService.open(config, { sweep: false });
  t.teardown(() => service.close());
  const app = await buildApp({ config, service, logger });
  t.teardown(() => app.close());
  const { ak, sk, project_id: project } = service.credentials;
  const kms = `/v1.0/${project}/kms`;
  const secrets = new Map<string, string>([["sk", sk]]);

  const signed = (path: string, body: string, extra: Record<string, string> = {}) => {
    const headers = signRequest({ method: "POST", url: `http://localhost${path}`, headers: { "content-type": "application/json", ...extra }, body, accessKey: ak, secretKey: sk });
    return app.inject({ method: "POST", url: path, headers, payload: body });
  };
  const json = (body: unknown) => JSON.stringify(body);

  const created = await signed(`${kms}/create-key`, json({ key_alias: "logging" }));
  t.is(created.statusCode, 200, created.body);
  const keyId = (JSON.parse(created.body) as { key_info: { key_id: string } }).key_info.key_id;

  // A data key returned in plaintext, then given back to decrypt-datakey and encrypt-datakey.
  const datakey = await signed(`${kms}/create-datakey`, json({ key_id: keyId, datakey_length: "256" }));
  t.is(datakey.statusCode, 200, datakey.body);
  const dk = JSON.parse(datakey.body) as { plain_text: string; cipher_text: string };
  secrets.set("data key", dk.plain_text);
  const opened = await signed(`${kms}/decrypt-datakey`, json({ key_id: keyId, cipher_text: dk.cipher_text, datakey_cipher_length: "32" }));
  t.is(opened.statusCode, 200, opened.body);
  const dek = Buffer.from(dk.plain_text, "hex");
  const digest = createHash("sha256").update(dek).digest();
  t.is((await signed(`${kms}/encrypt-datakey`, json({ key_id: keyId, plain_text: dk.plain_text + digest.toString("hex"), datakey_plain_length: "32" }))).statusCode, 200);
  // A DEK whose digest does not match (KMS.2103), and one refused by the schema (not hex).
  const otherDek = randomBytes(32).toString("hex");
  secrets.set("refused data key", otherDek);
  t.is((await signed(`${kms}/encrypt-datakey`, json({ key_id: keyId, plain_text: otherDek + "00".repeat(32), datakey_plain_length: "32" }))).statusCode, 400);
  const notHex = `zz${randomBytes(16).toString("hex")}`;
  secrets.set("non-hex data key", notHex);
  t.is((await signed(`${kms}/encrypt-datakey`, json({ key_id: keyId, plain_text: notHex, datakey_plain_length: "32" }))).statusCode, 400);

  // A plaintext sealed and opened, one refused by the schema (an undeclared field), one in a body that is not JSON.
  const plaintext = `plaintext-${randomBytes(12).toString("hex")}`;
  secrets.set("plaintext", plaintext);
  const sealed = await signed(`${kms}/encrypt-data`, json({ key_id: keyId, plain_text: plaintext }));
  t.is(sealed.statusCode, 200, sealed.body);
  const cipherText = (JSON.parse(sealed.body) as { cipher_text: string }).cipher_text;
  t.is((await signed(`${kms}/decrypt-data`, json({ cipher_text: cipherText }))).statusCode, 200);
  const refusedPlaintext = `refused-${randomBytes(12).toString("hex")}`;
  secrets.set("refused plaintext", refusedPlaintext);
  t.is((await signed(`${kms}/encrypt-data`, json({ key_id: keyId, plain_text: refusedPlaintext, surplus: refusedPlaintext }))).statusCode, 400);
  const unparsedPlaintext = `unparsed-${randomBytes(12).toString("hex")}`;
  secrets.set("unparsed plaintext", unparsedPlaintext);
  t.is((await signed(`${kms}/encrypt-data`, `{"key_id":"${keyId}","plain_text":"${unparsedPlaintext}"`)).statusCode, 400);

  // The SK as an IAM password: accepted, refused (another password), and in a body the schema refuses.
  const tokenBody = (password: string, scope: unknown = { project: { id: project } }) =>
    json({ auth: { identity: { methods: ["password"], password: { user: { name: ak, password, domain: { name: "x" } } } }, scope } });
  const issued = await app.inject({ method: "POST", url: "/v3/auth/tokens", headers: { "content-type": "application/json" }, payload: tokenBody(sk) });
  t.is(issued.statusCode, 201, issued.body);
  const token = issued.headers["x-subject-token"] as string;
  secrets.set("token", token);
  const wrongPassword = `Wrong${randomBytes(12).toString("hex")}`;
  secrets.set("wrong password", wrongPassword);
  t.is((await app.inject({ method: "POST", url: "/v3/auth/tokens", headers: { "content-type": "application/json" }, payload: tokenBody(wrongPassword) })).statusCode, 401);
  t.true((await app.inject({ method: "POST", url: "/v3/auth/tokens", headers: { "content-type": "application/json" }, payload: tokenBody(sk, "no scope") })).statusCode >= 400);

  // The token used, and a forged one.
  const withToken = (value: string) => app.inject({
    method: "POST", url: `${kms}/decrypt-data`, headers: { "content-type": "application/json", "x-auth-token": value }, payload: json({ cipher_text: cipherText }),
  });
  t.is((await withToken(token)).statusCode, 200);
  const forged = `hsk1.${randomBytes(24).toString("base64url")}.${randomBytes(32).toString("base64url")}`;
  secrets.set("forged token", forged);
  t.is((await withToken(forged)).statusCode, 403);

  const log = written.join("");
  t.true(log.split("\n").length > 10, "the trace log has lines to search");
  for (const [name, value] of secrets) {
    const forms = [value, Buffer.from(value, "utf8").toString("base64"), Buffer.from(value, "utf8").toString("hex")];
    if (/^[0-9a-f]+$/u.test(value)) forms.push(Buffer.from(value, "hex").toString("base64"));
    for (const form of forms) t.false(log.includes(form), `the ${name} appears in the log`);
  }
});
