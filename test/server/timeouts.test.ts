// server.requestTimeoutMs and the requests Node's HTTP parser refuses: a request not received in
// time, or not answered in time because the service is stuck, ends with Huawei's 503 KMS.0104 and
// its connection closed; a malformed request or oversized headers get Huawei's body too; every
// one of them has an X-Request-Id and is counted at /metrics.
import test, { type ExecutionContext } from "ava";
import { connect } from "node:net";
import pino from "pino";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { KmsService, type ServicePort } from "../../src/service/service.js";
import { huaweiErrorBody, kmsPath, signedRequest } from "./helpers/client.js";
import { readCredentialsFile, tempDir, testConfig } from "./helpers/server.js";

/**
 * The smallest timeout the configuration accepts: the tests wait for it to pass, never measure it.
 * Node counts it from the connection's accept, so the tests run one at a time: another test's
 * server starting in this process could stall the event loop for that long before a request is read.
 */
const TIMEOUT_MS = 100;

/** A gate calls wait at: `arrived` once one has, `finished` with its outcome once released. */
interface Gate {
  arrived: Promise<void>;
  finished: Promise<unknown>;
  release(): void;
}

interface GateControl extends Gate {
  pass(work: () => Promise<unknown>): Promise<unknown>;
}

function gate(): GateControl {
  let release!: () => void;
  let arrive!: () => void;
  let finish!: (outcome: Promise<unknown>) => void;
  const open = new Promise<void>((resolve) => (release = resolve));
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const finished = new Promise<unknown>((resolve) => (finish = resolve));
  return {
    arrived, finished, release,
    pass(work) {
      arrive();
      const outcome = open.then(work);
      // The outcome, settled either way, for the test to await; the caller still gets the rejection.
      finish(outcome.then((value) => value, (error: unknown) => error));
      return outcome;
    },
  };
}

/** A server whose service (in this thread) passes the calls `gateOf` names through their gate. */
async function serverWith(t: ExecutionContext, gateOf: (what: string) => GateControl | undefined): Promise<{ server: RunningServer; dir: string; kms: KmsService }> {
  const dir = tempDir(t);
  let kms!: KmsService;
  const server = await startServer(testConfig(dir, { server: { requestTimeoutMs: TIMEOUT_MS } }), {
    openService: async (c, log) => {
      const inner = await KmsService.open(c, { log, sweep: false });
      kms = inner;
      return {
        call: (call) => gateOf(call.method)?.pass(() => inner.call(call)) ?? inner.call(call),
        authenticate: (auth, projectId) => inner.authenticate(auth, projectId),
        issueToken: (request) => inner.issueToken(request),
        health: () => (gateOf("health")?.pass(() => inner.health()) ?? inner.health()) as ReturnType<ServicePort["health"]>,
        stats: () => inner.stats(),
        close: () => inner.close(),
      };
    },
    logger: pino({ level: "silent" }),
  });
  t.teardown(() => server.close());
  return { server, dir, kms };
}

/** Sends `text` on a new connection and resolves with everything received once the server closes it. */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(text));
    let received = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(received));
  });
}

/** The one HTTP/1.1 response in `text`. */
function parseResponse(text: string): { status: number; headers: Map<string, string>; body: unknown } {
  const end = text.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
  const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
  return { status: Number(statusLine!.split(" ")[1]), headers, body: JSON.parse(text.slice(end + 4)) };
}

function assertRefusal(t: ExecutionContext, text: string, status: number, code: "KMS.0104" | "KMS.0203" | "KMS.0214", what: string): void {
  const response = parseResponse(text);
  const requestId = response.headers.get("x-request-id");
  t.is(response.status, status, what);
  t.truthy(requestId, `${what}: X-Request-Id`);
  t.deepEqual(response.body, huaweiErrorBody(code, requestId ?? null), `${what}: Huawei's body`);
  t.regex(response.headers.get("content-type") ?? "", /^application\/json/u, what);
  t.is(response.headers.get("connection"), "close", what);
}

test.serial("a KMS call still running at server.requestTimeoutMs is answered 503 KMS.0104 and its connection closed; the call itself completes and is audited", async (t) => {
  const slow = gate();
  let holding = false;
  const { server, dir, kms: service } = await serverWith(t, (method) => (holding && method === "encryptData" ? slow : undefined));
  const credentials = readCredentialsFile(dir);
  const identity = { ak: credentials.ak, sk: credentials.sk };
  const kms = service.kms;
  const ctx = { projectId: credentials.project_id, principalId: credentials.user_id, requestId: "check", source: "test" };
  // Made directly: through HTTP, generating a key in the token may itself outlast so short a timeout.
  await kms.createKey(ctx, { keyAlias: "slow" });

  holding = true;
  const response = await signedRequest(server.url, {
    method: "POST", path: kmsPath(credentials.project_id, "encrypt-data"), identity,
    body: JSON.stringify({ key_id: "slow", plain_text: "late" }), headers: { "x-request-id": "stuck-call" },
  });
  t.is(response.status, 503);
  t.deepEqual(response.json, huaweiErrorBody("KMS.0104", "stuck-call"));
  t.is(response.headers.get("connection"), "close");

  // The service goes on with the call: its audit record says what it did, whatever the client was told.
  await slow.arrived;
  slow.release();
  t.false((await slow.finished) instanceof Error);
  const records = (await kms.queryAuditLog(ctx, { action: "encryptData", limit: 10 })).records.filter((r) => r.requestId === "stuck-call");
  t.deepEqual(records.map((r) => r.outcome), ["success"]);
});

test.serial("/healthz is 503 when the service does not answer within server.requestTimeoutMs", async (t) => {
  const stuck = gate();
  const { server } = await serverWith(t, (what) => (what === "health" ? stuck : undefined));
  const response = await fetch(`${server.url}/healthz`);
  t.is(response.status, 503);
  t.like(await response.json(), { status: "unavailable", problem: `no answer within server.requestTimeoutMs (${TIMEOUT_MS} ms)` });
  stuck.release();
  await stuck.finished;
});

test.serial("a request whose headers or body do not arrive within server.requestTimeoutMs is answered 503 KMS.0104 in Huawei's body and closed", async (t) => {
  const { server, dir } = await serverWith(t, () => undefined);
  const path = kmsPath(readCredentialsFile(dir).project_id, "gen-random");
  // Half the headers; then all the headers and 1 byte of a 100-byte body (which Node did not time out).
  const [headers, body] = await Promise.all([
    exchange(server.port, `POST ${path} HTTP/1.1\r\nHost: kms\r\n`),
    exchange(server.port, `POST ${path} HTTP/1.1\r\nHost: kms\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`),
  ]);
  assertRefusal(t, headers, 503, "KMS.0104", "headers too slow");
  assertRefusal(t, body, 503, "KMS.0104", "body too slow");
});

test.serial("a request Node's parser refuses gets Huawei's body and X-Request-Id, and /metrics counts it under one series", async (t) => {
  const { server } = await serverWith(t, () => undefined);
  assertRefusal(t, await exchange(server.port, "NOT HTTP AT ALL\r\n\r\n"), 400, "KMS.0214", "malformed");
  assertRefusal(t, await exchange(server.port, `GET /healthz HTTP/1.1\r\nHost: kms\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`), 400, "KMS.0203", "headers too large");
  assertRefusal(t, await exchange(server.port, "GET /healthz HTTP/1.1\r\nHost: kms\r\nBad Header: x\r\n\r\n"), 400, "KMS.0214", "bad header");
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  t.regex(metrics, /^hsmkit_http_requests_total\{route="unparsed",method="unknown",status="400"\} 3$/mu);
});
