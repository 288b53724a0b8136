/**
 * A measurement of the KMS store's durable writes (not a test):
 *
 *   node dist/bench/kms-store.js [--seconds 2] [--concurrency 1,16,256,1024] [--work-us 20] [--json FILE] [--reads]
 *
 * Closed loop: `concurrency` clients each append an audit record (or create a key with its audit
 * record), wait for the promise — resolved only once its COMMIT is on disk — and go again.
 * "audit" rows use audit.append (one write and one rebuilt record each), "record" rows audit.record
 * (the request path: records encoded into one write per batch, one shared promise).
 * "audit+work" rows first spend --work-us of CPU on the main thread per request (standing in for
 * the cryptographic operation the record audits), which is where a writer thread pays off: the
 * inline writer stops the event loop for every COMMIT.
 * Rows: group commit with the worker writer and with the inline writer, and one transaction per
 * write (maxBatch 1) for comparison. Each row reports durable writes/s, transactions/s, the mean
 * batch and the mean/p99 latency of a write. --reads adds key reads (getForUse) with 10 and with
 * 100 000 keys in the store. Figures on a shared VM vary between runs; compare rows of one run.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { randomUUID } from "node:crypto";
import { importKey } from "../src/crypto/keys.js";
import { hmacSign, hmacVerify } from "../src/crypto/hmac.js";
import { openSqliteStore, type SqliteStore } from "../src/kms/store/sqlite.js";
import type { WriterMode } from "../src/kms/store/writer.js";
import type { NewKey } from "../src/kms/types.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "2" },
    concurrency: { type: "string", default: "1,16,256,1024" },
    json: { type: "string" },
    reads: { type: "boolean", default: false },
    "work-us": { type: "string", default: "20" },
  },
});

const seconds = Number(values.seconds);
const workUs = Number(values["work-us"]);

/** Spins for `us` microseconds (CPU work on the main thread). */
function work(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}
const levels = values.concurrency.split(",").map(Number);
const macKey = importKey(Buffer.alloc(32, 7));
const mac = { mac: (d: Buffer) => hmacSign(macKey, "sha256", d), verifyMac: (d: Buffer, m: Buffer) => hmacVerify(macKey, "sha256", d, m) };
const P = "bench-project";

interface Row {
  write: string;
  mode: string;
  concurrency: number;
  writes_per_s: number;
  transactions_per_s: number;
  mean_batch: number;
  mean_ms: number;
  p99_ms: number;
}

const newKey = (): NewKey => {
  const keyId = randomUUID();
  return { projectId: P, keyId, domainId: "d", alias: `a-${keyId}`, keySpec: "AES_256", keyUsage: "ENCRYPT_DECRYPT", origin: "kms", state: 2, defaultKey: false };
};

async function withStore<T>(writer: WriterMode, maxBatch: number, body: (store: SqliteStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-bench-store-"));
  const store = await openSqliteStore({ directory: dir, mac, writer, groupCommit: { maxBatch } });
  try {
    return await body(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function trial(write: "audit" | "record" | "audit+work" | "createKey", writer: WriterMode, maxBatch: number, concurrency: number): Promise<Row> {
  return withStore(writer, maxBatch, async (store) => {
    const material = Buffer.alloc(40, 1);
    const one = (i: number): Promise<unknown> => {
      if (write === "audit+work") work(workUs);
      if (write === "record") return store.audit.record({ requestId: `r${i}`, projectId: P, principalId: "u", source: "bench", action: "encryptData", keyId: "k" }, "success", null);
      return write !== "createKey"
      ? store.audit.append({ requestId: `r${i}`, projectId: P, principalId: "u", source: "bench", action: "encryptData", keyId: "k", outcome: "success" })
      : store.keys.create(newKey(), { version: { material }, audit: { requestId: `r${i}`, projectId: P, principalId: "u", source: "bench", action: "createKey", keyId: null } });
    };
    const latencies: number[] = [];
    let count = 0;
    const run = async (until: number, record: boolean): Promise<void> => {
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          const started = performance.now();
          await one(count++);
          if (record) latencies.push(performance.now() - started);
        }
      }));
    };
    await run(performance.now() + 200, false); // warm-up
    const before = store.stats();
    const started = performance.now();
    await run(started + seconds * 1000, true);
    const elapsed = (performance.now() - started) / 1000;
    const after = store.stats();
    latencies.sort((a, b) => a - b);
    // Acknowledged requests, not the committer's writes: an audit.record batch is one write of many records.
    const writes = write === "record" ? latencies.length : after.writes - before.writes;
    const transactions = after.transactions - before.transactions;
    return {
      write,
      mode: maxBatch === 1 ? `${writer}, 1 tx/write` : `${writer}, group commit`,
      concurrency,
      writes_per_s: Math.round(writes / elapsed),
      transactions_per_s: Math.round(transactions / elapsed),
      mean_batch: Math.round((writes / Math.max(1, transactions)) * 10) / 10,
      mean_ms: Math.round((latencies.reduce((a, b) => a + b, 0) / latencies.length) * 100) / 100,
      p99_ms: Math.round((latencies[Math.floor(latencies.length * 0.99)] ?? 0) * 100) / 100,
    };
  });
}

async function readTrial(keys: number): Promise<{ keys: number; reads_per_s: number }> {
  return withStore("worker", 1024, async (store) => {
    const ids: string[] = [];
    const material = Buffer.alloc(40, 1);
    for (let done = 0; done < keys;) {
      const batch = Array.from({ length: Math.min(5000, keys - done) }, () => newKey());
      await Promise.all(batch.map((key) => store.keys.create(key, { version: { material } })));
      ids.push(...batch.map((key) => key.keyId));
      done += batch.length;
    }
    let n = 0;
    const until = performance.now() + seconds * 1000;
    const started = performance.now();
    while (performance.now() < until) {
      for (let i = 0; i < 1000; i++) await store.keys.getForUse(P, ids[(n + i * 7919) % ids.length]!);
      n += 1000;
    }
    return { keys, reads_per_s: Math.round(n / ((performance.now() - started) / 1000)) };
  });
}

const rows: Row[] = [];
for (const write of ["audit", "record", "audit+work", "createKey"] as const) {
  for (const concurrency of levels) {
    for (const [writer, maxBatch] of [["worker", 1024], ["inline", 1024], ["worker", 1]] as const) {
      const row = await trial(write, writer, maxBatch, concurrency);
      rows.push(row);
      process.stdout.write(
        `${row.write.padEnd(10)} ${row.mode.padEnd(24)} c=${String(concurrency).padEnd(5)} ` +
        `${String(row.writes_per_s).padStart(7)} writes/s  ${String(row.transactions_per_s).padStart(5)} tx/s  ` +
        `batch ${String(row.mean_batch).padStart(6)}  mean ${row.mean_ms} ms  p99 ${row.p99_ms} ms\n`,
      );
    }
  }
}
const reads = [];
if (values.reads) {
  for (const keys of [10, 100_000]) {
    const row = await readTrial(keys);
    reads.push(row);
    process.stdout.write(`getForUse with ${keys} keys: ${row.reads_per_s} reads/s\n`);
  }
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ writes: rows, reads }, null, 2) + "\n");
