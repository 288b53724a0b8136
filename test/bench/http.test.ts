// `hsmkit bench --module http://…` against a KMS server on an ephemeral port: the CLI as a user runs
// it (child process), and the library entry with a fixed number of requests so the counts are exact.
// Never asserts speed.
import test from "ava";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { validate } from "../../src/bench/schema.js";
import type { BenchReport } from "../../src/bench/index.js";
import { BENCH_KEY_ALIAS, HTTP_OPERATIONS, kmsCall, loadCredentials, runHttpBench, type BenchCredentials } from "../../src/bench/http/index.js";
import { BenchError } from "../../src/bench/types.js";
import { startTestServer, tempDir, type TestServer } from "../server/helpers/server.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

interface Run { code: number; stdout: string; stderr: string }

function bench(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    for (const name of ["HSMKIT_AK", "HSMKIT_SK", "HSMKIT_PROJECT_ID"]) delete clean[name];
    execFile(process.execPath, ["--no-warnings", CLI, "bench", ...args], { env: { ...clean, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function credentialsOf(server: TestServer): BenchCredentials {
  return { accessKey: server.credentials.ak, secretKey: server.credentials.sk, projectId: server.credentials.project_id, source: "test" };
}

/** A port nothing listens on: bound, then released. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

test("the CLI measures encrypt-data on a running server: a valid report, zero errors, the bench CMK created", async (t) => {
  const server = await startTestServer(t);
  const dir = tempDir(t, "hsmkit-bench-http-");
  const json = join(dir, "out.json");
  const run = await bench(["--module", server.url, "--mech", "encrypt-data", "--sizes", "64", "--duration", "1", "--warmup", "0", "--threads", "2",
    "--credentials", join(server.dir, "credentials.json"), "--json", json]);
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
  t.deepEqual(validate(report), []);
  t.is(report.rows.length, 1);
  const row = report.rows[0]!;
  t.like(row, { target: "kms-http", op: "encrypt-data", bytes: 64, threads: 2, status: "ok", errors: 0, errors_by_code: {} });
  t.true(row.ops > 0);
  t.deepEqual(row.http!.status_counts, { 200: row.ops });
  t.is(row.per_thread.length, 2, "one entry per connection");
  t.is(row.per_thread.reduce((s, c) => s + c.ops, 0), row.ops);
  t.true(row.p50_us !== null && row.p99_us !== null && row.p99_us >= row.p50_us);
  t.is(report.targets[0]!.kind, "http");
  t.is(report.targets[0]!.http!.key_alias, BENCH_KEY_ALIAS);
  t.regex(run.stdout, /kms-http\s+encrypt-data\s+256\s+64\s+2\s/u);
  const described = await kmsCall({ url: server.url, credentials: credentialsOf(server) }, "describe-key", { key_id: BENCH_KEY_ALIAS });
  t.is((described.body["key_info"] as { key_id: string }).key_id, report.targets[0]!.http!.key_id);
});

test("the library entry: every operation, a fixed number of requests per connection, all answered 200", async (t) => {
  const server = await startTestServer(t);
  const report = await runHttpBench({
    urls: [server.url], credentials: credentialsOf(server), operations: [...HTTP_OPERATIONS], sizes: [64],
    connections: 2, durationS: 1, iterations: 3, warmupS: 0, signing: "fresh", compare: false,
  });
  t.deepEqual(validate(JSON.parse(JSON.stringify(report))), []);
  t.deepEqual(report.rows.map((r) => [r.op, r.bytes]), [["encrypt-data", 64], ["decrypt-data", 64], ["create-datakey", 32], ["describe-key", 0]]);
  for (const row of report.rows) {
    t.is(row.ops, 6, row.op);
    t.is(row.errors, 0, row.op);
    t.is(row.http!.signing_us === null, false);
  }
});

test("non-2xx answers are errors by status and code, never throughput: pooled signatures on a server that rejects replays", async (t) => {
  const server = await startTestServer(t, { overrides: { auth: { rejectReplays: true } } });
  const options = {
    urls: [server.url], credentials: credentialsOf(server), operations: HTTP_OPERATIONS.filter((o) => o.mech === "encrypt-data"), sizes: [64],
    connections: 2, durationS: 1, iterations: 5, warmupS: 0, compare: false,
  };
  // Ten identical requests signed once per second: the server accepts each signature once.
  const pooled = (await runHttpBench({ ...options, signing: "pooled" })).rows[0]!;
  t.is(pooled.ops + pooled.errors, 10);
  t.true(pooled.errors >= 1);
  t.deepEqual(Object.keys(pooled.errors_by_code), ["401 APIGW.0301"]);
  t.is(pooled.http!.status_counts["401"], pooled.errors);
  t.is(pooled.per_thread.reduce((s, c) => s + c.ops, 0), pooled.ops);
  // Fresh signing varies each request's sequence, so every signature is new.
  const fresh = (await runHttpBench({ ...options, signing: "fresh" })).rows[0]!;
  t.like(fresh, { ops: 10, errors: 0 });
});

test("a wrong SK: a clear message and exit 1", async (t) => {
  const server = await startTestServer(t);
  const dir = tempDir(t, "hsmkit-bench-http-");
  const file = join(dir, "credentials.json");
  writeFileSync(file, JSON.stringify({ ...server.credentials, sk: "not-the-secret-key" }));
  const run = await bench(["--module", server.url, "--mech", "encrypt-data", "--sizes", "64", "--duration", "1", "--credentials", file]);
  t.is(run.code, 1);
  t.regex(run.stderr, /refused the credentials \(describe-key answered 401 APIGW\.0301\): check the AK\/SK and project id/u);
  const env = await bench(["--module", server.url, "--duration", "1"], { HSMKIT_AK: server.credentials.ak, HSMKIT_SK: "wrong", HSMKIT_PROJECT_ID: server.credentials.project_id });
  t.is(env.code, 1);
  t.regex(env.stderr, /refused the credentials .*environment HSMKIT_AK/u);
});

test("an unreachable endpoint: a clear message and exit 1", async (t) => {
  const port = await freePort();
  const dir = tempDir(t, "hsmkit-bench-http-");
  const file = join(dir, "credentials.json");
  writeFileSync(file, JSON.stringify({ ak: "AK", sk: "SK", project_id: "0123456789abcdef0123456789abcdef" }));
  const run = await bench(["--module", `http://127.0.0.1:${port}`, "--duration", "1", "--credentials", file]);
  t.is(run.code, 1);
  t.regex(run.stderr, new RegExp(`cannot reach the KMS at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`, "u"));
});

test("flags: KMS operations only, sizes within the API's limit, no mixing with local targets", async (t) => {
  const unknown = await bench(["--module", "http://127.0.0.1:1", "--mech", "aes-gcm", "--duration", "1"]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /has no operation "aes-gcm"; choose from encrypt-data, decrypt-data, create-datakey, describe-key/u);
  const big = await bench(["--module", "http://127.0.0.1:1", "--sizes", "8192", "--duration", "1"]);
  t.is(big.code, 2);
  t.regex(big.stderr, /encrypt-data takes 1–4096 bytes/u);
  const mixed = await bench(["--module", "http://127.0.0.1:1,native", "--duration", "1"]);
  t.is(mixed.code, 2);
  const signing = await bench(["--module", "http://127.0.0.1:1", "--signing", "sometimes", "--duration", "1"]);
  t.is(signing.code, 2);
});

test("credentials: --credentials first, then HSMKIT_AK/SK/PROJECT_ID, then ./.hsmkit/credentials.json", (t) => {
  const dir = tempDir(t, "hsmkit-bench-http-");
  const file = join(dir, "c.json");
  writeFileSync(file, JSON.stringify({ ak: "FILEAK", sk: "FILESK", project_id: "p1" }));
  const env = { HSMKIT_AK: "ENVAK", HSMKIT_SK: "ENVSK", HSMKIT_PROJECT_ID: "p2" };
  t.like(loadCredentials(file, env), { accessKey: "FILEAK", secretKey: "FILESK", projectId: "p1" });
  t.like(loadCredentials(undefined, env), { accessKey: "ENVAK", secretKey: "ENVSK", projectId: "p2" });
  t.throws(() => loadCredentials(undefined, { HSMKIT_AK: "A", HSMKIT_SK: "S" }), { instanceOf: BenchError, message: /HSMKIT_PROJECT_ID is not/u });
  t.throws(() => loadCredentials(join(dir, "missing.json"), {}), { instanceOf: BenchError, message: /cannot read the credentials file .*missing\.json \(ENOENT\)/u });
  writeFileSync(file, JSON.stringify({ ak: "A" }));
  t.throws(() => loadCredentials(file, {}), { instanceOf: BenchError, message: /lacks "ak", "sk" or "project_id"/u });
});
