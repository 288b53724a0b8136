// A server's data directory across restarts: the default identity (credentials.json, 0600) is made
// once and reused, so signatures made before a restart still verify after it; keys, ciphertexts and
// the audit log survive; the emulator token's PINs are 0600; a second server cannot open a data
// directory a running one holds.
import test from "ava";
import { execFile } from "node:child_process";
import { chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { kmsPath, SdkClient, signedHeaders, rawRequest, type RawResponse } from "./helpers/client.js";
import { readCredentialsFile, startTestServer, tempDir, type TestServer } from "./helpers/server.js";

const execFileAsync = promisify(execFile);

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

function client(server: TestServer): SdkClient {
  return new SdkClient(server.url, { ak: server.credentials.ak, sk: server.credentials.sk, projectId: server.credentials.project_id });
}

function ctx(server: TestServer): { projectId: string; principalId: string; requestId: string; source: string } {
  return { projectId: server.credentials.project_id, principalId: server.credentials.user_id, requestId: `restart-test-${Date.now()}`, source: "test" };
}

test("credentials.json is made 0600 on first start and reused after a restart: same AK, and a request signed before the restart verifies after it", async (t) => {
  const dir = tempDir(t);
  const first = await startTestServer(t, { dir });
  const file = join(dir, "credentials.json");
  t.is(mode(file), 0o600);
  const credentials = readCredentialsFile(dir);
  t.regex(credentials.ak, /^[A-Z0-9]{20}$/u);
  t.regex(credentials.sk, /^[A-Za-z0-9]{40}$/u);
  t.regex(credentials.project_id, /^[0-9a-f]{32}$/u);
  for (const pin of ["token-pin", "token-so-pin"]) t.is(mode(join(dir, pin)), 0o600, `${pin} is 0600`);

  const sdk = client(first);
  const key = (await sdk.post("create-key", { key_alias: "survives-restart", key_description: "made before the restart" })).key_info;
  const body = JSON.stringify({ key_id: key.key_id });
  const path = kmsPath(credentials.project_id, "describe-key");
  // Signed once; the same bytes are sent before and after the restart (replays are accepted by
  // default, and the restarted server listens on the same port, so Host is the same).
  const headers = signedHeaders(first.url, { method: "POST", path, body, identity: credentials });
  const { host: _host, ...sendable } = headers;
  const describe = (url: string): Promise<RawResponse> => rawRequest(url, { method: "POST", path, headers: sendable, body });
  const before = await describe(first.url);
  t.is(before.status, 200, before.text);
  const port = new URL(first.url).port;
  await first.close();

  const second = await startTestServer(t, { dir, overrides: { server: { port: Number(port) } } });
  t.is(second.url, first.url);
  t.deepEqual(readCredentialsFile(dir), credentials, "the same identity");
  t.is(mode(file), 0o600);
  const after = await describe(second.url);
  t.is(after.status, 200, after.text);
  t.deepEqual(after.json, before.json, "the key as it was");
  t.is(after.json.key_info.key_description, "made before the restart");
  const sdkAfter = client(second);
  t.is((await sdkAfter.post("describe-key", { key_id: "survives-restart" })).key_info.key_id, key.key_id);
});

test("keys, ciphertexts and the audit log survive a restart; the log verifies intact across it", async (t) => {
  const dir = tempDir(t);
  const first = await startTestServer(t, { dir });
  const sdk = client(first);
  const key = (await sdk.post("create-key", { key_alias: "durable" })).key_info;
  const plain = "written before the restart";
  const sealed = await sdk.post("encrypt-data", { key_id: key.key_id, plain_text: plain });
  const datakey = await sdk.post("create-datakey", { key_id: key.key_id, datakey_length: "256" });
  const kms1 = first.kmsService!.kms;
  const recordsBefore = (await kms1.queryAuditLog(ctx(first), { limit: 1000 })).records;
  t.true(recordsBefore.some((r) => r.action === "createKey" && r.keyId === key.key_id), "createKey audited");
  await first.close();

  const second = await startTestServer(t, { dir });
  const sdk2 = client(second);
  const opened = await sdk2.post("decrypt-data", { cipher_text: sealed.cipher_text });
  t.is(opened.plain_text, plain);
  t.is(opened.key_id, key.key_id);
  const dek = await sdk2.post("decrypt-datakey", { key_id: key.key_id, cipher_text: datakey.cipher_text, datakey_cipher_length: "32" });
  t.is(dek.data_key, datakey.plain_text);
  const listed = await sdk2.post("list-keys", { limit: "10" });
  t.deepEqual(listed.keys, [key.key_id]);

  const kms2 = second.kmsService!.kms;
  const recordsAfter = (await kms2.queryAuditLog(ctx(second), { limit: 1000 })).records;
  for (const record of recordsBefore) {
    const again = recordsAfter.find((r) => r.seq === record.seq);
    t.truthy(again, `record ${record.seq} kept`);
    t.deepEqual(again, record, `record ${record.seq} unchanged`);
  }
  t.true(recordsAfter.some((r) => r.action === "decryptData" && r.keyId === key.key_id && r.outcome === "success"), "post-restart use audited");
  const verification = await kms2.verifyAuditLog(ctx(second));
  t.true(verification.ok, JSON.stringify(verification));
});

test("a credentials file readable by others is refused at start, naming the file", async (t) => {
  const dir = tempDir(t);
  const first = await startTestServer(t, { dir });
  await first.close();
  chmodSync(join(dir, "credentials.json"), 0o644);
  const error = await t.throwsAsync(startTestServer(t, { dir }));
  t.regex(error?.message ?? "", /credentials\.json is readable by others/u);
  chmodSync(join(dir, "credentials.json"), 0o600);
  const again = await startTestServer(t, { dir });
  t.is(again.credentials.ak, first.credentials.ak);
});

test("a second server on the same data directory fails with a lock error naming the running one, while the first keeps serving", async (t) => {
  const dir = tempDir(t);
  const first = await startTestServer(t, { dir });
  const config = fileURLToPath(new URL("../../src/config/config.js", import.meta.url));
  const server = fileURLToPath(new URL("../../src/server/server.js", import.meta.url));
  // Another process, as a second `hsmkit serve` would be: it must refuse, not share the token or store.
  const script = `
    import { loadConfig } from ${JSON.stringify(config)};
    import { startServer } from ${JSON.stringify(server)};
    try {
      const s = await startServer(loadConfig({ env: {}, overrides: { data: ${JSON.stringify(dir)}, server: { port: 0, kmsThread: false }, log: { level: "silent" } } }));
      await s.close();
      console.log(JSON.stringify({ started: true }));
    } catch (error) {
      console.log(JSON.stringify({ started: false, name: error.name, code: error.code, message: error.message }));
    }`;
  const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", script], { timeout: 60_000 });
  const outcome = JSON.parse(stdout.trim().split("\n").pop()!) as { started: boolean; name?: string; code?: string; message?: string };
  t.false(outcome.started, "the second server did not start");
  t.regex(`${outcome.name} ${outcome.code}`, /Lock/iu, "a lock error");
  t.true(outcome.message?.includes(`process ${process.pid}`), `names the holder: ${outcome.message}`);
  t.true(outcome.message?.includes(dir), "names the directory");

  const health = await fetch(first.url + "/healthz");
  t.is(health.status, 200);
  t.is((await client(first).post("create-key", { key_alias: "still-serving" })).key_info.key_id.length, 36);
  t.deepEqual(readCredentialsFile(dir), first.credentials, "the refused start changed nothing");
});
