/**
 * The HTTP layer's request lines (server/app.ts) with its lazily made per-request loggers: a
 * refused request logs at info with its request id, a failed one at error, a successful one only at
 * debug, and metrics count every request whatever is logged. The service is a stand-in that
 * verifies nothing (these tests are about the lines, not the KMS).
 */
import test from "ava";
import { connect } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { buildApp, REDACT_PATHS } from "../../src/server/app.js";
import { createMetrics } from "../../src/server/metrics.js";
import { KmsError } from "../../src/kms/errors.js";
import { signRequest } from "../../src/service/auth/sdk-hmac-sha256.js";
import type { ServiceCall, ServicePort } from "../../src/service/service.js";
import { tempDir, testConfig } from "./helpers/server.js";

const PROJECT = "0123456789abcdef0123456789abcdef";

function fakeService(): ServicePort & { calls: ServiceCall[] } {
  const calls: ServiceCall[] = [];
  return {
    calls,
    async call(call) {
      calls.push(call);
      if (call.requestId === "req-boom") throw new Error("boom");
      return { randomData: new Uint8Array(4).fill(0xab) };
    },
    async authenticate() {},
    async issueToken() {
      throw new KmsError("APIGW.0301", "not here");
    },
    async health() {
      return { ok: true, token: { label: "t", module: "emulator" } };
    },
    async stats() {
      throw new Error("no stats");
    },
    async close() {},
  };
}

async function setup(t: import("ava").ExecutionContext, level: string, redact?: string[]) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino(redact === undefined ? { level } : { level, redact }, stream);
  const service = fakeService();
  const metrics = createMetrics(service);
  const config = testConfig(tempDir(t));
  const app = await buildApp({ config, service, metrics, logger });
  t.teardown(() => app.close());
  const send = (requestId: string, signed: boolean) => {
    const url = `http://localhost/v1.0/${PROJECT}/kms/gen-random`;
    const body = JSON.stringify({ random_data_length: "32" });
    const headers = signed
      ? signRequest({ method: "POST", url, headers: { "content-type": "application/json" }, body, accessKey: "AK", secretKey: "SK" })
      : { "content-type": "application/json" };
    return app.inject({ method: "POST", url: `/v1.0/${PROJECT}/kms/gen-random`, headers: { ...headers, "x-request-id": requestId }, payload: body });
  };
  return { lines, send, service, metrics, app };
}

test("refusals log at info and failures at error, each with its request id; successes log nothing at info", async (t) => {
  const { lines, send, metrics } = await setup(t, "info");
  t.is((await send("req-ok", true)).statusCode, 200);
  t.is((await send("req-unsigned", false)).statusCode, 401);
  t.is((await send("req-boom", true)).statusCode, 500);
  const of = (id: string) => lines.filter((l) => l["reqId"] === id);
  t.deepEqual(of("req-ok"), []);
  t.true(of("req-unsigned").some((l) => l["msg"] === "request refused" && l["level"] === 30 && l["status"] === 401));
  t.true(of("req-boom").some((l) => l["msg"] === "request failed" && l["level"] === 50 && l["status"] === 500));
  const text = await metrics.registry.metrics();
  const route = "/v1.0/:project_id/kms/gen-random";
  for (const status of [200, 401, 500]) t.regex(text, new RegExp(`hsmkit_http_requests_total\\{route="${route.replace(/[/.]/gu, "\\$&")}",method="POST",status="${status}"\\} 1\\n`, "u"));
  await send("req-ok-2", true);
  t.regex(await metrics.registry.metrics(), /status="200"\} 2\n/u);
});

test("at debug a success is logged with its request id", async (t) => {
  const { lines, send } = await setup(t, "debug");
  t.is((await send("req-ok", true)).statusCode, 200);
  t.true(lines.some((l) => l["reqId"] === "req-ok" && l["msg"] === "request completed" && l["level"] === 20 && l["status"] === 200));
});

test("a request the HTTP parser refuses puts none of its bytes in the log, even at trace", async (t) => {
  // Node's parser errors carry the request's bytes as err.rawPacket, which fastify logs at trace
  // (its client-error handler) and pino's err serializer copies: headers, X-Auth-Token included.
  const { lines, app } = await setup(t, "trace", REDACT_PATHS);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = app.server.address() as { port: number };
  const token = "hsmkit-secret-token-value-0123456789";
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(`POST /v1.0/${PROJECT}/kms/gen-random HTTP/1.1\r\nHost: localhost\r\nX-Auth-Token: ${token}\r\nBad Header: x\r\n\r\n`);
    });
    let received = "";
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
    socket.on("close", () => resolve(received));
    socket.on("error", reject);
  });
  t.regex(answer, /^HTTP\/1\.1 400 /u);
  const refused = lines.filter((l) => l["msg"] === "client error" && l["err"] !== undefined);
  t.is(refused.length, 1);
  // The line as written, and any byte array in it read back as text.
  const text = JSON.stringify(lines);
  const bytes = JSON.stringify(lines, (_key, value: unknown) =>
    Array.isArray(value) && value.length > 0 && value.every((b) => Number.isInteger(b)) ? Buffer.from(value as number[]).toString("latin1") : value);
  t.false(text.includes(token));
  t.false(bytes.includes(token));
});

test("a URL fastify's router refuses (a malformed escape, an overlong parameter) is counted and logged with its request id", async (t) => {
  // fastify answers these through frameworkErrors, before any hook: onResponse never sees them.
  const { lines, metrics, app } = await setup(t, "info");
  const badEscape = await app.inject({ method: "GET", url: `/v1.0/${PROJECT}/kms/keys/%ZZ`, headers: { "x-request-id": "req-bad-escape" } });
  const overlong = await app.inject({ method: "GET", url: `/v1.0/${PROJECT}/kms/${"k".repeat(2000)}/tags`, headers: { "x-request-id": "req-overlong" } });
  for (const [response, id] of [[badEscape, "req-bad-escape"], [overlong, "req-overlong"]] as const) {
    t.is(response.statusCode, 400);
    t.is(response.headers["x-request-id"], id);
    t.true(lines.some((l) => l["reqId"] === id && l["msg"] === "request refused" && l["level"] === 30 && l["status"] === 400), id);
  }
  t.regex(await metrics.registry.metrics(), /^hsmkit_http_requests_total\{route="unmatched",method="GET",status="400"\} 2$/mu);
});
