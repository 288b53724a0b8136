/**
 * One timed load on an HTTP endpoint with autocannon (used as a library, in this thread): N
 * keep-alive connections, each with one request in flight (closed loop), for a duration or a number
 * of requests. Every request is signed with SDK-HMAC-SHA256:
 *
 * - `fresh`: each request gets its own `sequence` (a field every Huawei KMS body accepts and ignores)
 *   and its own signature, as a fleet of SDK clients would send; the signing runs here, on the
 *   client's CPU, and is timed. Distinct signatures also pass a server with auth.rejectReplays.
 * - `pooled`: the body never changes, and a signature is made once per second (X-Sdk-Date has a
 *   1 s resolution, so every identical request signed in that second carries the same signature)
 *   and reused. The server still verifies every request in full; only the client's cost drops.
 *   A server with auth.rejectReplays accepts one request per second of these.
 *
 * What counts: a response with a 2xx status is an operation, and only those are timed; any other
 * status is an error counted by "<status> <error_code>" from Huawei's error body, and a transport
 * failure (refused or reset connection, timeout) by its code. Latency per response is autocannon's
 * (process.hrtime from when the request is queued on the connection to the end of the response,
 * in ms with ns resolution), kept here in ns for the statistics of stats.ts.
 */
import { cpuUsage, hrtime } from "node:process";
import autocannon from "autocannon";
import { Samples } from "../stats.js";
import { errorCodeOf, signedHeaders, type KmsEndpoint } from "./client.js";

export type Signing = "fresh" | "pooled";

export interface LoadOptions {
  endpoint: KmsEndpoint;
  /** Request path, e.g. /v1.0/<project>/kms/encrypt-data. */
  path: string;
  /** The JSON body; `sequence` is given in fresh signing (36 characters at most). */
  body: (sequence: string | undefined) => string;
  connections: number;
  signing: Signing;
  /** Seconds; ignored when `amount` is set. */
  durationS: number;
  /** Requests in all (autocannon's amount) instead of a duration. */
  amount?: number | undefined;
  /** Seconds a request may take before it counts as a timeout (default 10). */
  timeoutS?: number;
  /** Called about once a second during the run (e.g. to sample the server's memory). */
  onTick?: () => void;
}

export interface ConnectionCount {
  ops: number;
  errors: number;
}

export interface LoadOutcome {
  /** 2xx responses. */
  ops: number;
  /** Non-2xx responses and transport failures. */
  errors: number;
  errorsByCode: Record<string, number>;
  /** Responses by HTTP status. */
  statusCounts: Record<string, number>;
  /** Latencies of the 2xx responses, ns (a uniform sample when there are more than MAX_SAMPLES). */
  samples: Float64Array;
  perConnection: ConnectionCount[];
  elapsedNs: number;
  /** This process's CPU time during the run (autocannon, signing, everything), s. */
  clientCpuS: number;
  /** Signatures made, and the time spent making them (inside clientCpuS), ns. */
  signatures: number;
  signingNs: number;
  /** Bytes of one request body, and mean bytes of a 2xx response (headers included). */
  requestBodyBytes: number;
  responseBytesMean: number;
}

const MAX_SAMPLES = 5_000_000;

/** A 36-character sequence unique to this process and request. */
function sequencer(): () => string {
  const prefix = `${process.pid.toString(16).padStart(8, "0").slice(-8)}-${Date.now().toString(16).padStart(12, "0").slice(-12)}-`;
  let n = 0;
  return () => prefix + (n++).toString(16).padStart(36 - prefix.length, "0");
}

/** Runs one load; resolves when autocannon is done. */
export function runLoad(options: LoadOptions): Promise<LoadOutcome> {
  const { endpoint, path } = options;
  const samples = new Samples();
  let seen = 0;
  const errorsByCode: Record<string, number> = {};
  const statusCounts: Record<string, number> = {};
  const connections = new Map<object, ConnectionCount>();
  let ops = 0;
  let errors = 0;
  let responseBytes = 0;
  let signatures = 0;
  let signingNs = 0;
  const count = (code: string): void => { errorsByCode[code] = (errorsByCode[code] ?? 0) + 1; };

  const next = sequencer();
  const fixedBody = options.body(undefined);
  let pooled: { second: number; headers: Record<string, string> } | undefined;
  const sign = (body: string, time?: number): Record<string, string> => {
    const t0 = hrtime.bigint();
    const headers = signedHeaders(endpoint, path, body, time);
    signingNs += Number(hrtime.bigint() - t0);
    signatures++;
    return headers;
  };
  const setupRequest = (request: autocannon.Request): autocannon.Request => {
    if (options.signing === "fresh") {
      const body = options.body(next());
      request.body = body;
      request.headers = sign(body);
    } else {
      const second = Math.floor(Date.now() / 1000);
      if (pooled?.second !== second) pooled = { second, headers: sign(fixedBody, second * 1000) };
      request.body = fixedBody;
      request.headers = pooled.headers;
    }
    return request;
  };

  return new Promise((resolve, reject) => {
    const cpu0 = cpuUsage();
    const t0 = hrtime.bigint();
    const tick = options.onTick === undefined ? undefined : setInterval(options.onTick, 1000);
    const instance = autocannon({
      url: endpoint.url,
      connections: options.connections,
      duration: options.durationS,
      ...(options.amount !== undefined ? { amount: options.amount } : {}),
      timeout: options.timeoutS ?? 10,
      requests: [{
        method: "POST",
        path,
        setupRequest,
        onResponse: (status: number, body: string) => {
          if (status < 200 || status > 299) count(`${status} ${errorCodeOf(safeJson(body)) ?? "-"}`);
        },
      }],
    }, (error) => {
      if (tick !== undefined) clearInterval(tick);
      const elapsedNs = Number(hrtime.bigint() - t0);
      const cpu = cpuUsage(cpu0);
      if (error !== null && error !== undefined) {
        reject(error);
        return;
      }
      resolve({
        ops, errors, errorsByCode, statusCounts, samples: samples.values().slice(),
        perConnection: [...connections.values()], elapsedNs, clientCpuS: (cpu.user + cpu.system) / 1e6,
        signatures, signingNs, requestBodyBytes: Buffer.byteLength(fixedBody), responseBytesMean: ops === 0 ? 0 : responseBytes / ops,
      });
    });
    instance.on("response", (client: object, statusCode: number, resBytes: number, responseTime: number) => {
      let c = connections.get(client);
      if (c === undefined) connections.set(client, (c = { ops: 0, errors: 0 }));
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
      if (statusCode < 200 || statusCode > 299) {
        errors++;
        c.errors++;
        return;
      }
      ops++;
      c.ops++;
      responseBytes += resBytes;
      const ns = responseTime * 1e6;
      // Reservoir sampling past MAX_SAMPLES keeps the sample uniform over the whole run.
      if (seen++ < MAX_SAMPLES) samples.push(ns);
      else {
        const slot = Math.floor(Math.random() * seen);
        if (slot < MAX_SAMPLES) samples.values()[slot] = ns;
      }
    });
    instance.on("reqError", (error: Error & { code?: string }) => {
      errors++;
      count(error.code ?? (error.message === "request timed out" ? "timeout" : error.name));
    });
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
