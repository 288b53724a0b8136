/**
 * The service figures at /metrics (server/metrics.ts) are read from the service at each scrape. Once
 * they cannot be (a dead KMS thread rejects every stats() with KMS.0104), the gauges that tell the
 * present state must not go on showing the last state read as if it were current.
 */
import test from "ava";
import { KmsError } from "../../src/kms/errors.js";
import { createMetrics } from "../../src/server/metrics.js";
import type { ServicePort, ServiceStats } from "../../src/service/service.js";

const STATS: ServiceStats = {
  backend: { sessions: { open: 3, idle: 2, size: 4 }, cache: { size: 5, capacity: 64, hits: 9, misses: 4, evictions: 0, unwraps: 4, configured: 64, memoryShrinks: 0 }, recoveries: 1 },
  calls: { encryptData: { ok: 7 } },
  entropy: [{ name: "rdrand", available: true, inService: true, bytesDrawn: 64 }],
  entropyHealthFailures: 0,
  cachedKeys: 5,
  heap: { usedBytes: 1_000_000, limitBytes: 512 * 2 ** 20 },
};

function service(): ServicePort & { dead: boolean } {
  return {
    dead: false,
    async call() {
      throw new KmsError("KMS.0104");
    },
    async authenticate() {},
    async issueToken() {
      throw new KmsError("KMS.0104");
    },
    async health() {
      return { ok: !this.dead, token: { label: "t", module: "emulator" } };
    },
    async stats() {
      if (this.dead) throw new KmsError("KMS.0104", "the KMS thread exited unexpectedly (code 1)");
      return STATS;
    },
    async close() {},
  };
}

const STATE_SERIES = [
  /^hsmkit_token_sessions\{state="open"\} 3$/mu,
  /^hsmkit_token_key_cache\{figure="size"\} 5$/mu,
  /^hsmkit_entropy_source_in_service\{source="rdrand"\} 1$/mu,
  /^hsmkit_kms_heap_bytes\{figure="used"\} 1000000$/mu,
];

test("once stats() fails, the sessions, cache, entropy sources and heap last read are no longer exported", async (t) => {
  const kms = service();
  const metrics = createMetrics(kms);
  const before = await metrics.registry.metrics();
  for (const series of STATE_SERIES) t.regex(before, series);

  kms.dead = true;
  // Scrapes within one turn of the event loop share one stats(): the next scrape is a later one.
  await new Promise((resolve) => setImmediate(resolve));
  const after = await metrics.registry.metrics();
  for (const series of STATE_SERIES) t.notRegex(after, series);
  t.notRegex(after, /^hsmkit_(token_sessions|token_key_cache|entropy_source_in_service|kms_heap_bytes)\{/mu, "no series of the state gauges at all");
  // The counts since start are not turned into zeros.
  t.regex(after, /^hsmkit_token_recoveries 1$/mu);
  t.regex(after, /^hsmkit_token_operations_total\{operation="encryptData",outcome="ok"\} 7$/mu);
});
