// Graceful shutdown: close() lets the requests in flight finish with their answers, flushes their
// audit records, and only then closes the store and the token — with the KMS in its own thread and
// in the server's thread.
import test from "ava";
import { connect } from "node:net";
import { startServer } from "../../src/server/server.js";
import { KmsService, type ServicePort } from "../../src/service/service.js";
import { openConfiguredService } from "../../src/server/server.js";
import { huaweiErrorBody, kmsPath, signedRequest } from "./helpers/client.js";
import { readCredentialsFile, tempDir, testConfig } from "./helpers/server.js";

const IN_FLIGHT = 40;

for (const kmsThread of [true, false]) {
  test(`close() answers every request in flight and their audit records survive (kmsThread ${kmsThread})`, async (t) => {
    const dir = tempDir(t);
    const config = testConfig(dir, { server: { kmsThread } });
    // A service whose calls wait until every request has arrived, so that close() starts while all
    // of them are in flight inside the server.
    let arrived = 0;
    let release!: () => void;
    const allIn = new Promise<void>((resolve) => (release = resolve));
    let everyoneArrived!: () => void;
    const gathered = new Promise<void>((resolve) => (everyoneArrived = resolve));
    const server = await startServer(config, {
      openService: async (c, log) => {
        const inner: ServicePort = await openConfiguredService(c, log);
        return {
          call: async (call) => {
            if (call.method === "encryptData" && ++arrived === IN_FLIGHT) everyoneArrived();
            if (call.method === "encryptData") await allIn;
            return inner.call(call);
          },
          authenticate: (auth, projectId) => inner.authenticate(auth, projectId),
          issueToken: (request) => inner.issueToken(request),
          health: () => inner.health(),
          stats: () => inner.stats(),
          close: () => inner.close(),
        };
      },
      logger: (await import("pino")).default({ level: "silent" }),
    });
    const credentials = readCredentialsFile(dir);
    const identity = { ak: credentials.ak, sk: credentials.sk };
    const created = await signedRequest(server.url, {
      method: "POST", path: kmsPath(credentials.project_id, "create-key"), identity, body: JSON.stringify({ key_alias: "bye" }),
    });
    t.is(created.status, 200);

    const requests = Array.from({ length: IN_FLIGHT }, (_, i) => signedRequest(server.url, {
      method: "POST", path: kmsPath(credentials.project_id, "encrypt-data"), identity,
      body: JSON.stringify({ key_id: "bye", plain_text: `message ${i}` }),
    }));
    await gathered;
    const closed = server.close();
    // New connections are refused once closing has begun; the ones inside finish.
    release();
    const responses = await Promise.all(requests);
    await closed;
    t.deepEqual(responses.map((r) => r.status), Array(IN_FLIGHT).fill(200));

    const reopened = await KmsService.open(testConfig(dir), { sweep: false });
    t.teardown(() => reopened.close());
    const ctx = { projectId: credentials.project_id, principalId: credentials.user_id, requestId: "check", source: "test" };
    const page = await reopened.kms.queryAuditLog(ctx, { action: "encryptData", limit: 1000 });
    t.is(page.records.filter((r) => r.outcome === "success").length, IN_FLIGHT);
    t.true((await reopened.kms.verifyAuditLog(ctx)).ok);
    for (const response of responses) {
      const blob = Buffer.from((response.json as { cipher_text: string }).cipher_text, "base64");
      t.regex((await reopened.kms.decryptData(ctx, { cipherText: blob })).plainText.toString(), /^message \d+$/u);
    }
  });
}

/** The HTTP/1.1 responses in `text`, in order (each with a Content-Length, as this server sends them). */
function responses(text: string): Array<{ status: number; headers: Map<string, string>; body: string }> {
  const out = [];
  let rest = Buffer.from(text, "latin1");
  while (rest.length > 0) {
    const end = rest.indexOf("\r\n\r\n");
    const [statusLine, ...lines] = rest.subarray(0, end).toString("latin1").split("\r\n");
    const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
    const length = Number(headers.get("content-length") ?? 0);
    out.push({ status: Number(statusLine!.split(" ")[1]), headers, body: rest.subarray(end + 4, end + 4 + length).toString("utf8") });
    rest = rest.subarray(end + 4 + length);
  }
  return out;
}

test("a request that arrives on an open connection once closing has begun is refused 503 KMS.0104 in Huawei's body (/healthz: its own 503), with its X-Request-Id", async (t) => {
  const dir = tempDir(t);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let heldCount = 0;
  let bothArrived!: () => void;
  const arrived = new Promise<void>((resolve) => (bothArrived = resolve));
  const server = await startServer(testConfig(dir), {
    openService: async (c, log) => {
      const inner: ServicePort = await openConfiguredService(c, log);
      return {
        call: (call) => inner.call(call),
        authenticate: (auth, projectId) => inner.authenticate(auth, projectId),
        issueToken: (request) => inner.issueToken(request),
        // The first two health checks are held, so that their connections are busy when closing begins.
        health: async () => {
          if (heldCount < 2) {
            if (++heldCount === 2) bothArrived();
            await held;
          }
          return inner.health();
        },
        stats: () => inner.stats(),
        close: () => inner.close(),
      };
    },
    logger: (await import("pino")).default({ level: "silent" }),
  });
  const open = (): { write(text: string): void; done: Promise<string> } => {
    const socket = connect(server.port, "127.0.0.1");
    let received = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (received += chunk));
    return { write: (text) => void socket.write(text), done: new Promise((resolve) => socket.on("close", () => resolve(received))) };
  };
  const kms = open();
  const health = open();
  kms.write("GET /healthz HTTP/1.1\r\nHost: kms\r\nX-Request-Id: first-a\r\n\r\n");
  health.write("GET /healthz HTTP/1.1\r\nHost: kms\r\nX-Request-Id: first-b\r\n\r\n");
  await arrived;
  const closed = server.close();
  // The listening socket is closed once fastify has entered its closing state.
  while (server.app.server.listening) await new Promise((resolve) => setImmediate(resolve));
  const seen = new Set<string>();
  const bothSeen = new Promise<void>((resolve) => server.app.server.on("request", (request) => {
    seen.add(String(request.headers["x-request-id"]));
    if (seen.has("late-kms") && seen.has("late-health")) resolve();
  }));
  kms.write(`GET ${kmsPath(readCredentialsFile(dir).project_id, "user-quotas")} HTTP/1.1\r\nHost: kms\r\nX-Request-Id: late-kms\r\n\r\n`);
  health.write("GET /healthz HTTP/1.1\r\nHost: kms\r\nX-Request-Id: late-health\r\n\r\n");
  await bothSeen;
  release();
  await closed;
  const [answered, refused] = responses(await kms.done);
  t.is(answered?.status, 200, "the request in flight is answered");
  t.is(answered?.headers.get("x-request-id"), "first-a");
  t.is(refused?.status, 503);
  t.is(refused?.headers.get("x-request-id"), "late-kms", "X-Request-Id on the refusal too");
  t.regex(refused?.headers.get("content-type") ?? "", /^application\/json/u);
  t.deepEqual(JSON.parse(refused?.body ?? "null"), huaweiErrorBody("KMS.0104", "late-kms"), "the error body a Huawei SDK reads");
  t.is(refused?.headers.get("connection"), "close");
  const [, unhealthy] = responses(await health.done);
  t.is(unhealthy?.status, 503);
  t.is(unhealthy?.headers.get("x-request-id"), "late-health");
  t.deepEqual(JSON.parse(unhealthy?.body ?? "null"), { status: "unavailable", problem: "closing" });
});
