/**
 * The KMS thread's hand-off alone (service/thread.ts): batches of encrypt-data calls (a ServiceCall
 * with AK/SK evidence and a 1 KiB plaintext decoded from base64) go to a worker that answers each
 * with a result shaped as the Kms's (key id and a 1 077-byte blob), ping-pong, one batch in flight.
 * No KMS work is done: the figure is the cost of postMessage, structured clone and the wake-ups per
 * call, on both threads.
 *
 *   node dist/bench/kms-thread.js [--seconds 1] [--runs 5] [--batches 1,16,64] [--json FILE]
 *
 * Two message formats, each with its own worker: `objects` is the protocol before the per-request
 * messages were packed ({t:"op",id,op:"call",arg:ServiceCall} and {t:"done",id,value}), `packed` is
 * the current one (packCall()/unpackCall() and [id, value]).
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { ServiceCall } from "../src/service/service.js";
import { packCall } from "../src/service/thread.js";
import { measure, type Measurement } from "./harness.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "1" },
    runs: { type: "string", default: "5" },
    batches: { type: "string", default: "1,16,64" },
    json: { type: "string" },
  },
});

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.threadModule).then(({ unpackCall }) => {
  const prefix = Buffer.alloc(51, 7);
  parentPort.on("message", (batch) => {
    const out = batch.map((m) => {
      const id = workerData.packed ? m[0] : m.id;
      const call = workerData.packed ? unpackCall(m) : m.arg;
      const value = { keyId: call.request.keyId, cipherText: Buffer.concat([prefix, call.request.plainText]) };
      return workerData.packed ? [id, value] : { t: "done", id, value };
    });
    parentPort.postMessage(out);
  });
  parentPort.postMessage("ready");
});
`;

const PLAINTEXT_BASE64 = Buffer.alloc(1024, 0x5a).toString("base64");

function call(id: number, packed: boolean): unknown {
  const serviceCall: ServiceCall = {
    auth: {
      kind: "aksk", accessKey: "HSTESTACCESSKEY0001", signature: "ab".repeat(32), signedAt: 1_790_000_000_000,
      stringToSign: `SDK-HMAC-SHA256\n20260102T030405Z\n${"cd".repeat(32)}`,
    },
    projectId: "0123456789abcdef0123456789abcdef", requestId: "6f1c1f5e-0f0e-4c55-8e57-6c1f2a3b4c5d", source: "127.0.0.1", method: "encryptData",
    request: { keyId: "00000000-0000-4000-8000-000000000000", plainText: Buffer.from(PLAINTEXT_BASE64, "base64") },
  };
  return packed ? packCall(id, serviceCall) : { t: "op", id, op: "call", arg: serviceCall };
}

async function startWorker(packed: boolean): Promise<Worker> {
  const worker = new Worker(WORKER, { eval: true, workerData: { packed, threadModule: new URL("../src/service/thread.js", import.meta.url).href } });
  await new Promise<void>((resolve) => worker.once("message", () => resolve()));
  return worker;
}

function roundTrip(worker: Worker, batch: number, packed: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const calls: unknown[] = [];
    for (let i = 0; i < batch; i++) calls.push(call(i, packed));
    worker.once("message", (answers: unknown[]) => {
      let sum = 0;
      for (const a of answers) {
        const value = (packed ? (a as [number, unknown])[1] : (a as { value: unknown }).value) as { cipherText: Uint8Array };
        sum += value.cipherText[0]!;
      }
      if (sum !== 7 * batch) reject(new Error("unexpected answer"));
      else resolve();
    });
    worker.postMessage(calls);
  });
}

const results: Measurement[] = [];
const batches = values.batches.split(",").map(Number);
for (const packed of [false, true]) {
  const worker = await startWorker(packed);
  for (const batch of batches) {
    const m = await measure(
      {
        target: packed ? "packed" : "objects", op: "call round trip", bytes: 1024, batch, opsPerIteration: batch,
        body: async (iterations) => {
          for (let i = 0; i < iterations; i++) await roundTrip(worker, batch, packed);
        },
      },
      { runSeconds: Number(values.seconds), runs: Number(values.runs) },
    );
    results.push(m);
  }
  await worker.terminate();
}

console.log("| format | batch | calls/s | µs per call | runs (calls/s) |");
console.log("|---|---:|---:|---:|---|");
for (const m of results) console.log(`| ${m.target} | ${m.batch} | ${m.ops_per_s} | ${(1e6 / m.ops_per_s).toFixed(1)} | ${m.runs.join(", ")} |`);
if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
