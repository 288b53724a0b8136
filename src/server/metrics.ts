/**
 * /metrics (Prometheus text format, prom-client): HTTP requests by route, method and status with a
 * latency histogram; the service's token counters (sessions, unwrapped-version cache, recoveries,
 * calls by operation and outcome); entropy source health; and the process's own metrics (memory,
 * CPU, event-loop lag). Token and entropy figures are read from the service when scraped (the
 * service may run in another thread).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ServicePort } from "../service/service.js";

export interface ServerMetrics {
  readonly registry: Registry;
  observe(route: string, method: string, status: number, seconds: number): void;
}

export function createMetrics(service: ServicePort): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "hsmkit_" });
  const requests = new Counter({
    name: "hsmkit_http_requests_total", help: "HTTP requests by route, method and status.", labelNames: ["route", "method", "status"], registers: [registry],
  });
  const latency = new Histogram({
    name: "hsmkit_http_request_duration_seconds", help: "HTTP request latency by route.", labelNames: ["route", "method"],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
  });
  const snapshot = async (): Promise<Awaited<ReturnType<ServicePort["stats"]>> | undefined> => {
    try {
      return await service.stats();
    } catch {
      return undefined;
    }
  };
  // One stats() per scrape, shared by the gauges below. A gauge keeps what it was last set to: those
  // that tell the present state (sessions, cache, sources in service, heap) start each scrape
  // empty, or a KMS thread that died (stats() rejects) kept its last state on show as current.
  // The counts since start keep their last value (prom-client's reset() would make them 0).
  let pending: ReturnType<typeof snapshot> | null = null;
  const stats = (): ReturnType<typeof snapshot> => {
    pending ??= snapshot().finally(() => setImmediate(() => (pending = null)));
    return pending;
  };
  new Gauge({
    name: "hsmkit_token_operations_total", help: "KMS operations that reached the token, by operation and outcome (ok or error code).",
    labelNames: ["operation", "outcome"], registers: [registry],
    async collect() {
      const s = await stats();
      if (!s) return;
      for (const [operation, outcomes] of Object.entries(s.calls)) for (const [outcome, n] of Object.entries(outcomes)) this.set({ operation, outcome }, n);
    },
  });
  new Gauge({
    name: "hsmkit_token_sessions", help: "PKCS#11 sessions of the KMS backend.", labelNames: ["state"], registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s) return;
      this.set({ state: "open" }, s.backend.sessions.open);
      this.set({ state: "idle" }, s.backend.sessions.idle);
    },
  });
  new Gauge({
    name: "hsmkit_token_key_cache", help: "Unwrapped CMK versions held in the token, and the cache's counters.", labelNames: ["figure"], registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s) return;
      for (const [figure, value] of Object.entries(s.backend.cache)) this.set({ figure }, value);
    },
  });
  new Gauge({
    name: "hsmkit_token_recoveries", help: "Times the backend reopened its sessions after a token failure.", registers: [registry],
    async collect() {
      const s = await stats();
      if (s) this.set(s.backend.recoveries);
    },
  });
  new Gauge({
    name: "hsmkit_entropy_source_in_service", help: "1 when an entropy source passes its health tests and is in service.", labelNames: ["source"], registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s) return;
      for (const e of s.entropy) if (e.available) this.set({ source: e.name }, e.inService ? 1 : 0);
    },
  });
  new Gauge({
    name: "hsmkit_entropy_health_failures", help: "SP 800-90B health-test failures since start.", registers: [registry],
    async collect() {
      const s = await stats();
      if (s) this.set(s.entropyHealthFailures);
    },
  });
  new Gauge({
    name: "hsmkit_kms_heap_bytes", help: "The V8 heap of the thread running the KMS (the KMS thread's when there is one): bytes used, and its limit (server.kmsThreadHeapMb).",
    labelNames: ["figure"], registers: [registry],
    async collect() {
      const s = await stats();
      this.reset();
      if (!s) return;
      this.set({ figure: "used" }, s.heap.usedBytes);
      this.set({ figure: "limit" }, s.heap.limitBytes);
    },
  });
  // The labelled series of each route, method and status, looked up once: prom-client hashes the
  // label object on every inc/observe otherwise. Bounded, although routes are the templates and
  // Node's parser knows a fixed set of methods.
  const series = new Map<string, { count: { inc(): void }; latency: { observe(value: number): void } }>();
  return {
    registry,
    observe(route, method, status, seconds) {
      const key = `${status} ${method} ${route}`;
      let s = series.get(key);
      if (s === undefined) {
        if (series.size >= 1024) series.clear();
        s = { count: requests.labels(route, method, String(status)), latency: latency.labels(route, method) };
        series.set(key, s);
      }
      s.count.inc();
      s.latency.observe(seconds);
    },
  };
}
