/**
 * The KMS thread (src/service/thread.ts): the service opened in a worker thread and driven through
 * ThreadServicePort, on a fresh data directory per test. What must survive the thread boundary:
 * results (bytes included), KmsError codes, which caller gets which result, log lines, and the
 * shutdown order (calls in flight finish, the store flushes, later calls get KMS.0104); and what a
 * failed start or a crashed thread looks like from the server's side.
 */
import test, { type ExecutionContext } from "ava";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { threadId } from "node:worker_threads";
import { loadConfig, type HsmkitConfig } from "../../src/config/config.js";
import type { RequestContext } from "../../src/kms/access.js";
import type { AuditPage } from "../../src/kms/store/store.js";
import type { AuditVerification } from "../../src/kms/audit/verify.js";
import { KmsError } from "../../src/kms/errors.js";
import type { AuthEvidence } from "../../src/service/auth/authenticator.js";
import type { Credentials } from "../../src/service/identity.js";
import { createMetrics } from "../../src/server/metrics.js";
import { KmsService, type ServiceCall, type ServiceLog, type ServiceMethod } from "../../src/service/service.js";
import { ThreadServicePort, type ThreadServiceOptions } from "../../src/service/thread.js";

interface LogLine {
  level: "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
}

interface Fixture {
  dir: string;
  config: Readonly<HsmkitConfig>;
  lines: LogLine[];
  log: ServiceLog;
}

function fixture(t: ExecutionContext): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-thread-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: LogLine[] = [];
  const log: ServiceLog = {
    info: (message, fields) => lines.push({ level: "info", message, fields }),
    warn: (message, fields) => lines.push({ level: "warn", message, fields }),
    error: (message, fields) => lines.push({ level: "error", message, fields }),
  };
  return { dir, config: loadConfig({ overrides: { data: dir }, env: {} }), lines, log };
}

async function openPort(t: ExecutionContext, f: Fixture, options: ThreadServiceOptions = {}): Promise<ThreadServicePort> {
  const port = await ThreadServicePort.open(f.config, f.log, { sweep: false, ...options });
  t.teardown(() => port.close().catch(() => undefined));
  return port;
}

function credentialsOf(f: Fixture): Credentials {
  return JSON.parse(readFileSync(join(f.dir, "credentials.json"), "utf8")) as Credentials;
}

/** A token for the data directory's default identity, through the IAM password method. */
async function tokenEvidence(port: ThreadServicePort, creds: Credentials): Promise<AuthEvidence> {
  const issued = await port.issueToken({ password: { accessKey: creds.ak, secretKey: creds.sk }, projectId: creds.project_id, requestId: "token", source: "test" });
  return { kind: "token", token: issued.token };
}

function caller(port: ThreadServicePort, auth: AuthEvidence, creds: Credentials) {
  return (method: ServiceMethod, request: unknown, requestId = `req-${method}`): Promise<any> => {
    const call: ServiceCall = { auth, projectId: creds.project_id, requestId, source: "test", method, request };
    return port.call(call);
  };
}

test("calls run in another thread and their results, bytes and errors come back intact", async (t) => {
  const f = fixture(t);
  const port = await openPort(t, f);
  t.not(port.threadId, threadId);
  t.is(port.credentialsFile, join(f.dir, "credentials.json"));
  // The service's log lines reach this thread's log.
  t.true(f.lines.some((l) => l.level === "info" && l.message.includes(port.credentialsFile)));

  const creds = credentialsOf(f);
  const wrong = await t.throwsAsync(port.issueToken({ password: { accessKey: creds.ak, secretKey: "x".repeat(40) }, projectId: creds.project_id, requestId: "r", source: "test" }));
  t.true(wrong instanceof KmsError);
  t.is((wrong as KmsError).code, "APIGW.0301");
  t.is((wrong as KmsError).status, 401);

  const auth = await tokenEvidence(port, creds);
  const call = caller(port, auth, creds);
  const key = await call("createKey", { keyAlias: "thread-key" });
  t.is(key.keyAlias, "thread-key");

  const plain = Buffer.from("bytes across threads \x00\xff", "latin1");
  const sealed = await call("encryptData", { keyId: key.keyId, plainText: plain });
  t.true(sealed.cipherText instanceof Uint8Array);
  const opened = await call("decryptData", { cipherText: sealed.cipherText });
  t.is(opened.keyId, key.keyId);
  t.true(Buffer.from(opened.plainText).equals(plain));

  const missing = await t.throwsAsync(call("describeKey", { keyId: "0d0466b8-2e1f-4e6c-9c5d-8f1c2b3a4d5e" }));
  t.true(missing instanceof KmsError);
  t.is((missing as KmsError).code, "KMS.0207");
  t.is((missing as KmsError).status, 404);
  await t.throwsAsync(call("nope" as ServiceMethod, {}), { instanceOf: KmsError, code: "APIGW.0101" });

  const health = await port.health();
  t.true(health.ok);
  t.is(health.token.label, f.config.token.label);
  const stats = await port.stats();
  t.is(stats.calls["encryptData"]?.["ok"], 1);
  t.is(stats.calls["describeKey"]?.["KMS.0207"], 1);
});

test("the KMS thread's V8 heap is limited by server.kmsThreadHeapMb, and its stats report that heap, not the caller's", async (t) => {
  const MB = 1024 * 1024;
  for (const heapMb of [96, 512]) {
    const f = fixture(t);
    const config = loadConfig({ overrides: { data: f.dir, server: { kmsThreadHeapMb: heapMb } }, env: {} });
    const port = await openPort(t, { ...f, config });
    const { heap } = await port.stats();
    // V8's limit is the old generation's plus the young generation's (a few MB to tens of MB).
    t.true(heap.limitBytes >= heapMb * MB && heap.limitBytes < (heapMb + 64) * MB, `${heapMb} MB: limit ${heap.limitBytes}`);
    t.true(heap.limitBytes < getHeapStatistics().heap_size_limit, "not this thread's limit");
    t.true(heap.usedBytes > 0 && heap.usedBytes < heap.limitBytes);
    const scraped = /^hsmkit_kms_heap_bytes\{figure="limit"\} (\d+)$/mu.exec(await createMetrics(port).registry.metrics());
    t.is(Number(scraped?.[1]), heap.limitBytes, "exported at /metrics");
    await port.close();
  }
});

test("a KMS thread that exhausts its heap limit fails calls with KMS.0104, and health names the setting to raise", async (t) => {
  const f = fixture(t);
  const config = loadConfig({ overrides: { data: f.dir, server: { kmsThreadHeapMb: 64 } }, env: {} });
  const port = await openPort(t, { ...f, config }, { entry: new URL("./thread-crash-worker.js", import.meta.url) });
  const creds = credentialsOf(f);
  const call = caller(port, await tokenEvidence(port, creds), creds);
  const error = await t.throwsAsync(call("genRandom", { randomDataLength: 64 }, "exhaust"), { instanceOf: KmsError, code: "KMS.0104" });
  t.regex((error as KmsError).detail ?? "", /ran out of its 64 MB V8 heap \(server\.kmsThreadHeapMb\)/u);
  const health = await port.health();
  t.false(health.ok);
  t.regex(health.problem ?? "", /raise the limit/u);
  t.true(f.lines.some((l) => l.level === "error" && /server\.kmsThreadHeapMb/u.test(l.message)));
  await port.close();
});

test("concurrent calls each resolve to their own caller", async (t) => {
  const f = fixture(t);
  const port = await openPort(t, f);
  const creds = credentialsOf(f);
  const call = caller(port, await tokenEvidence(port, creds), creds);
  const key = await call("createKey", { keyAlias: "many" });

  // Posted within one turn of the event loop, so they cross in shared batches both ways.
  const plains = Array.from({ length: 48 }, (_, i) => Buffer.from(`message ${i} `.repeat(i + 1)));
  const sealed = await Promise.all(plains.map((plainText, i) => call("encryptData", { keyId: key.keyId, plainText }, `enc-${i}`)));
  const opened = await Promise.all(sealed.map((s, i) => call("decryptData", { cipherText: s.cipherText }, `dec-${i}`)));
  opened.forEach((o, i) => t.true(Buffer.from(o.plainText).equals(plains[i]!), `result ${i}`));

  const lengths = [8, 16, 64, 128, 256, 512, 1024, 2048];
  const randoms = await Promise.all(lengths.map((bits) => call("genRandom", { randomDataLength: bits })));
  t.deepEqual(randoms.map((r) => r.randomData.length * 8), lengths);

  // Failures and successes interleaved in one batch keep their places.
  const mixed = await Promise.allSettled([0, 1, 2, 3, 4, 5].map((i) => call("describeKey", { keyId: i % 2 === 0 ? key.keyId : `alias-missing-${i}` })));
  t.deepEqual(mixed.map((m) => m.status), ["fulfilled", "rejected", "fulfilled", "rejected", "fulfilled", "rejected"]);

  // A request structured clone refuses fails alone, not the batch it was queued with.
  const [uncloneable, beside] = await Promise.allSettled([
    call("describeKey", { keyId: key.keyId, callback: () => key.keyId }),
    call("describeKey", { keyId: key.keyId }),
  ]);
  t.is(uncloneable.status, "rejected");
  if (uncloneable.status === "rejected") t.is((uncloneable.reason as KmsError).code, "KMS.0101");
  t.is(beside.status, "fulfilled");
});

test("close() lets calls in flight finish, flushes the store, and later calls get KMS.0104", async (t) => {
  const f = fixture(t);
  const port = await openPort(t, f);
  const creds = credentialsOf(f);
  const call = caller(port, await tokenEvidence(port, creds), creds);
  const key = await call("createKey", { keyAlias: "kept" });

  // Started, not awaited, before close(): they must complete, not fail.
  const inFlight = Array.from({ length: 12 }, (_, i) => call("encryptData", { keyId: key.keyId, plainText: Buffer.from(`in flight ${i}`) }, `late-${i}`));
  inFlight.push(call("createKey", { keyAlias: "made-while-closing" }, "late-create"));
  const closed = port.close();
  t.is(port.close(), closed);
  const results = await Promise.allSettled(inFlight);
  t.deepEqual(results.filter((r) => r.status === "rejected"), []);
  await closed;

  await t.throwsAsync(call("describeKey", { keyId: key.keyId }), { instanceOf: KmsError, code: "KMS.0104" });
  await t.throwsAsync(port.stats(), { instanceOf: KmsError, code: "KMS.0104" });
  const health = await port.health();
  t.false(health.ok);
  t.is(health.problem, "closed");

  // The directory is free again, and holds everything the thread acknowledged.
  const service = await KmsService.open(f.config, { sweep: false });
  try {
    const ctx: RequestContext = { projectId: creds.project_id, principalId: creds.user_id, requestId: "check", source: "test" };
    const made = (await service.callAs(ctx, "describeKey", { keyId: "made-while-closing" })) as { keyState: number };
    t.is(made.keyState, 2);
    const page = (await service.callAs(ctx, "queryAuditLog", { action: "encryptData", limit: 100 })) as AuditPage;
    const audited = new Set(page.records.map((r) => r.requestId));
    for (let i = 0; i < 12; i++) t.true(audited.has(`late-${i}`), `late-${i} audited`);
    const verified = (await service.callAs(ctx, "verifyAuditLog", {})) as AuditVerification;
    t.true(verified.ok, verified.ok ? "" : verified.message);
    // A clean close checkpointed the chain; a thread that died would have left work for a "recovery" checkpoint.
    if (verified.ok) t.deepEqual(verified.recoveryCheckpoints, []);
  } finally {
    await service.close();
  }
});

test("a failed start rejects open() with the service's error and leaves the directory free", async (t) => {
  const f = fixture(t);
  const holder = await KmsService.open(f.config, { sweep: false });
  let error: Error & { code?: string };
  try {
    error = await t.throwsAsync(ThreadServicePort.open(f.config, f.log, { sweep: false })) as Error & { code?: string };
  } finally {
    await holder.close();
  }
  t.is(error.code, "ERR_HSMKIT_TOKEN_DIR_LOCKED");
  t.is(error.name, "TokenDirectoryLockedError");
  t.regex(error.message, /already open in this process/u);
  t.regex(error.stack ?? "", /emulator/u, "the stack is the KMS thread's");

  // open() rejected only after the thread ended: nothing of it holds the directory now.
  const port = await openPort(t, f);
  t.true((await port.health()).ok);
  await port.close();
});

test("a wrong PIN fails the start with the token's error", async (t) => {
  const f = fixture(t);
  const first = await KmsService.open(f.config, { sweep: false });
  await first.close();
  const wrongPin = loadConfig({ overrides: { data: f.dir, token: { pin: "not-the-pin" } }, env: {} });
  const error = await t.throwsAsync(ThreadServicePort.open(wrongPin, f.log, { sweep: false }), { instanceOf: KmsError, code: "KMS.0101" });
  t.regex((error as KmsError).detail ?? "", /CKR_PIN_INCORRECT/u);
});

test("a crashed KMS thread fails pending and later calls with KMS.0104 and reports why", async (t) => {
  const f = fixture(t);
  const port = await openPort(t, f, { entry: new URL("./thread-crash-worker.js", import.meta.url) });
  const creds = credentialsOf(f);
  const call = caller(port, await tokenEvidence(port, creds), creds);
  const key = await call("createKey", { keyAlias: "before-crash" });

  const pending = [call("encryptData", { keyId: key.keyId, plainText: "x" }, "crash"), call("describeKey", { keyId: key.keyId }, "beside")];
  for (const result of await Promise.allSettled(pending)) {
    t.is(result.status, "rejected");
    if (result.status === "rejected") {
      t.true(result.reason instanceof KmsError);
      t.is((result.reason as KmsError).code, "KMS.0104");
      t.regex((result.reason as KmsError).detail ?? "", /simulated crash/u);
    }
  }
  await t.throwsAsync(call("describeKey", { keyId: key.keyId }), { instanceOf: KmsError, code: "KMS.0104" });
  const health = await port.health();
  t.false(health.ok);
  t.regex(health.problem ?? "", /simulated crash/u);
  t.true(f.lines.some((l) => l.level === "error" && /simulated crash/u.test(l.message)));
  // Nothing left to close: close() resolves at once.
  await port.close();
});

test("a call leaves its request as it was: the same call can be made again, a frozen request works, an unreadable one fails alone", async (t) => {
  const f = fixture(t);
  const port = await openPort(t, f);
  const creds = credentialsOf(f);
  const auth = await tokenEvidence(port, creds);
  const key = await caller(port, auth, creds)("createKey", { keyAlias: "retried" });

  // A pooled Buffer: the port sends an exact copy of it, and must not put that copy in the request.
  const plainText = Buffer.from("sent twice");
  t.true(plainText.buffer.byteLength > plainText.length, "the test needs a pooled Buffer");
  const request = { keyId: key.keyId, plainText };
  const encrypt: ServiceCall = { auth, projectId: creds.project_id, requestId: "retry", source: "test", method: "encryptData", request };
  await port.call(encrypt);
  t.is(request.plainText, plainText, "the request still holds the caller's Buffer");
  t.is(plainText.toString(), "sent twice");
  const again = (await port.call(encrypt)) as { cipherText: Uint8Array };
  const decrypt: ServiceCall = { ...encrypt, method: "decryptData", request: { cipherText: again.cipherText } };
  t.is(Buffer.from(((await port.call(decrypt)) as { plainText: Uint8Array }).plainText).toString(), "sent twice");

  const frozen = Object.freeze({ keyId: key.keyId, plainText: Buffer.from("frozen") });
  const sealed = (await port.call({ ...encrypt, request: frozen })) as { cipherText: Uint8Array };
  t.true(sealed.cipherText.length > 0);

  const unreadable = { keyId: key.keyId, get plainText(): Buffer { throw new Error("unreadable"); } };
  await t.throwsAsync(port.call({ ...encrypt, request: unreadable }), { instanceOf: KmsError, code: "KMS.0101" });
  t.true((await port.health()).ok);
});
