/**
 * The KMS server under HTTP load (issue 5's targets) in one run: the hsmkit server and a bare
 * fastify server, each in its own child process, measured with autocannon from this process.
 *
 *   npm run bench:server -- [--duration 10] [--warmup 2] [--connections 8,32,64,128,256] [--kms-thread true|false] [--store-writer worker|inline]
 *                           [--signing pooled|fresh] [--memory] [--profile DIR] [--json FILE]
 *
 * - KMS: startServer on a fresh temporary data directory (emulator token, SQLite store, audit log
 *   — the audit is always on: every request is acknowledged after the group commit that holds its
 *   record), KMS thread per --kms-thread (default true, the server's default), log level info.
 * - bare: fastify with one POST route on the same path, parsing the same JSON body and answering a
 *   JSON body of the same length as the KMS's encrypt-data answer for 1 KiB: the ceiling the HTTP
 *   stack itself allows on this machine.
 * - The same signed request (encrypt-data, 1 KiB plaintext, SDK-HMAC-SHA256) goes to both, with each
 *   connection count of --connections, KMS and bare alternating; then one KMS run with fresh
 *   signing at the best count shows what signing every request costs the client. The default sweep
 *   goes up to 256 because the audit's group commit batches the requests in flight: on this
 *   2-core VM the KMS's rate still grew up to 128 connections.
 * - Each server's RSS (VmRSS of /proc/<pid>/status) and CPU (utime + stime of /proc/<pid>/stat, and
 *   of each thread in /proc/<pid>/task) are sampled during the run; this process's CPU (autocannon and signing) is measured too. Client
 *   and servers share the machine's cores: the client's CPU is CPU the server did not get.
 * - --memory: instead of the sweep, one KMS run of --duration seconds at the first --connections
 *   value, RSS sampled every second: start, middle, end, growth (the issue's check is
 *   `--duration 600 --memory`).
 * - --profile DIR: the KMS child runs under `node --cpu-prof`; the profile of every thread is
 *   summarized by layer over the timed KMS runs only (src/bench/http/profile.ts).
 *
 * When the server has no encrypt-data route yet, describe-key stands in, and the output says so.
 *
 * Child mode (internal): `node dist/bench/server.js --child kms|bare …`.
 */
import { fork, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { machineFacts, type Row } from "../src/bench/index.js";
import { httpRow, kmsCall, kmsPath, plaintext, prepareBenchKey, runLoad, signedHeaders, type KmsEndpoint, type Signing } from "../src/bench/http/index.js";
import { HTTP_OPERATIONS } from "../src/bench/http/operations.js";
import { renderProfile, summarizeProfile, type ProfileSummary } from "../src/bench/http/profile.js";

const { values } = parseArgs({
  options: {
    child: { type: "string" },
    data: { type: "string" },
    "response-bytes": { type: "string" },
    path: { type: "string" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "8,32,64,128,256" },
    "kms-thread": { type: "string", default: "true" },
    "store-writer": { type: "string", default: "inline" },
    signing: { type: "string", default: "pooled" },
    memory: { type: "boolean", default: false },
    profile: { type: "string" },
    json: { type: "string" },
  },
});

const SELF = fileURLToPath(import.meta.url);
const PLAINTEXT_BYTES = 1024;

// ---------------------------------------------------------------------------------------------
// Child processes

async function childKms(): Promise<void> {
  // As hsmkit serve does before it starts the server (src/crypto/allocator.ts).
  const { limitMallocArenas } = await import("../src/crypto/allocator.js");
  limitMallocArenas();
  const { loadConfig } = await import("../src/config/config.js");
  const { startServer } = await import("../src/server/server.js");
  const config = loadConfig({
    env: {},
    overrides: {
      data: values.data!, server: { host: "127.0.0.1", port: 0, kmsThread: values["kms-thread"] !== "false" }, log: { level: "info" },
      store: { writer: values["store-writer"] === "worker" ? "worker" : "inline" },
    },
  });
  const server = await startServer(config);
  process.on("message", (message: { stop?: boolean }) => {
    if (message.stop) void server.close().then(() => process.exit(0), () => process.exit(1));
  });
  process.send!({ url: server.url });
}

async function childBare(): Promise<void> {
  const { default: Fastify } = await import("fastify");
  const bytes = Number(values["response-bytes"]);
  const keyId = "00000000-0000-4000-8000-000000000000";
  const overhead = JSON.stringify({ key_id: keyId, cipher_text: "" }).length;
  const answer = { key_id: keyId, cipher_text: "A".repeat(Math.max(0, bytes - overhead)) };
  const app = Fastify({ logger: false });
  app.post(values.path!, async () => answer);
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  process.on("message", (message: { stop?: boolean }) => {
    if (message.stop) void app.close().then(() => process.exit(0));
  });
  process.send!({ url: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}` });
}

interface Child {
  process: ChildProcess;
  pid: number;
  url: string;
  log: string;
  stop(): Promise<void>;
}

function spawnChild(args: string[], log: string, execArgv: string[] = []): Promise<Child> {
  const fd = openSync(log, "a");
  const child = fork(SELF, args, { execArgv, stdio: ["ignore", fd, fd, "ipc"] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`the child ${args.join(" ")} did not start in 120 s (log: ${log})`)); }, 120_000);
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`the child ${args.join(" ")} exited with ${code} before it was ready:\n${tail(log)}`));
    };
    child.once("exit", early);
    child.once("message", (message: { url: string }) => {
      clearTimeout(timer);
      child.off("exit", early);
      resolve({
        process: child, pid: child.pid!, url: message.url, log,
        stop: async () => {
          child.send({ stop: true });
          const timeout = setTimeout(() => child.kill("SIGKILL"), 30_000);
          await exited;
          clearTimeout(timeout);
        },
      });
    });
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling a child's memory and CPU

const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+)\s+kB/u.exec(status);
  return kb === null ? NaN : Math.round((Number(kb[1]) / 1024) * 10) / 10;
}

/** utime + stime of a /proc stat file, seconds. */
function statSeconds(file: string): number {
  const stat = readFileSync(file, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime and stime are fields 14 and 15
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const cpuSeconds = (pid: number): number => statSeconds(`/proc/${pid}/stat`);

/** CPU seconds of each thread of a process, by thread id (all are named "node", so only the main thread, tid = pid, is known by name). */
function threadSeconds(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), statSeconds(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

interface Sampled {
  rss: Array<{ t: number; mb: number }>;
  cpuS: number;
  /** Per-thread CPU seconds during the run: the main thread, then the others largest first. */
  mainS: number;
  othersS: number[];
}

/** Samples a process every second while `run` runs (and once at each end). */
async function sampled<T>(pid: number, run: (tick: () => void) => Promise<T>): Promise<{ result: T; sample: Sampled }> {
  const start = Date.now();
  const rss: Sampled["rss"] = [{ t: 0, mb: rssMb(pid) }];
  const cpu0 = cpuSeconds(pid);
  const threads0 = threadSeconds(pid);
  const result = await run(() => rss.push({ t: (Date.now() - start) / 1000, mb: rssMb(pid) }));
  rss.push({ t: (Date.now() - start) / 1000, mb: rssMb(pid) });
  const used = [...threadSeconds(pid)].map(([tid, sec]) => [tid, sec - (threads0.get(tid) ?? 0)] as const);
  const othersS = used.filter(([tid]) => tid !== pid).map(([, sec]) => sec).sort((a, b) => b - a);
  return { result, sample: { rss, cpuS: cpuSeconds(pid) - cpu0, mainS: used.find(([tid]) => tid === pid)?.[1] ?? 0, othersS } };
}

// ---------------------------------------------------------------------------------------------
// The parent

interface RunRecord {
  server: "kms" | "bare";
  connections: number;
  signing: Signing;
  row: Row;
  server_rss_mb: { start: number; max: number; end: number };
  /** RSS about every second of the timed run (t: seconds since it started). */
  rss: Array<{ t: number; mb: number }>;
  server_cpu_cores: number;
  /** The server's main (HTTP) thread, and its three busiest other threads (KMS thread, store writer, V8/libuv helpers — unnamed), cores. */
  server_threads_cores: { main: number; busiest_others: number[] };
  /** Hrtime window of the timed run, µs (for the profile). */
  window: [number, number];
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function list(text: string): number[] {
  const items = text.split(",").map((s) => Number(s.trim()));
  if (items.length === 0 || items.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) throw new Error(`--connections: "${text}" is not a list of connection counts`);
  return items;
}

async function parent(): Promise<void> {
  const durationS = Number(values.duration);
  const warmupS = Number(values.warmup);
  const connections = list(values.connections!);
  const signing = values.signing as Signing;
  if (!(durationS > 0) || !(warmupS >= 0) || (signing !== "pooled" && signing !== "fresh")) throw new Error("--duration > 0, --warmup ≥ 0, --signing pooled|fresh");
  const kmsThread = values["kms-thread"] !== "false";
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-bench-server-"));
  const profileDir = values.profile;
  const children: Child[] = [];
  const out = (line = ""): void => { process.stdout.write(line + "\n"); };
  try {
    const kms = await spawnChild(["--child", "kms", "--data", join(dir, "data"), "--kms-thread", String(kmsThread), "--store-writer", values["store-writer"]!], join(dir, "kms.log"),
      profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir]);
    children.push(kms);
    const idleRss = rssMb(kms.pid);
    const credentials = JSON.parse(readFileSync(join(dir, "data", "credentials.json"), "utf8")) as { ak: string; sk: string; project_id: string };
    const endpoint: KmsEndpoint = { url: kms.url, credentials: { accessKey: credentials.ak, secretKey: credentials.sk, projectId: credentials.project_id, source: "the server's data directory" } };
    const key = await prepareBenchKey(endpoint);

    // encrypt-data if the server has it; otherwise describe-key stands in.
    const probe = await kmsCall(endpoint, "encrypt-data", { key_id: key.keyId, plain_text: plaintext(PLAINTEXT_BYTES) });
    const standIn = probe.status === 404 && probe.errorCode === "APIGW.0101";
    if (!standIn && probe.status !== 200) throw new Error(`encrypt-data answered ${probe.status} ${probe.errorCode ?? ""}`);
    const operation = HTTP_OPERATIONS.find((o) => o.mech === (standIn ? "describe-key" : "encrypt-data"))!;
    const bytes = standIn ? 0 : PLAINTEXT_BYTES;
    const shape = await operation.prepare(endpoint, key.keyId, bytes);
    const path = kmsPath(endpoint, shape.operation);
    const sample = standIn ? await kmsCall(endpoint, "describe-key", { key_id: key.keyId }) : probe;

    const bare = await spawnChild(["--child", "bare", "--path", path, "--response-bytes", String(sample.bytes)], join(dir, "bare.log"));
    children.push(bare);
    const bareEndpoint: KmsEndpoint = { ...endpoint, url: bare.url };

    // What signing one request costs this client (the same request, 2 000 times, after 500 to warm up).
    const body = shape.body("00000000-0000-0000-0000-000000000000");
    for (let i = 0; i < 500; i++) signedHeaders(endpoint, path, body);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 2000; i++) signedHeaders(endpoint, path, body);
    const signUs = Number(process.hrtime.bigint() - t0) / 2000 / 1000;

    const facts = machineFacts();
    const loadStart = loadavg().map((n) => n.toFixed(2)).join(" / ");
    out(`hsmkit bench:server — ${facts.cpu}, ${facts.cores} cores, Node ${facts.node}; server, bare server and autocannon share these cores`);
    out(`load average (1/5/15 min) at start ${loadStart}: other work on the machine takes CPU from every figure below`);
    out(`operation: ${shape.operation}${standIn ? " — STAND-IN: this server has no encrypt-data route yet, so describe-key is measured instead" : ` of ${bytes} B`}, ` +
      `SDK-HMAC-SHA256 (${signing} signing), ${durationS} s per run after ${warmupS} s of warm-up; KMS thread ${kmsThread ? "on" : "off"}; audit on`);
    out(`request body ${Buffer.byteLength(shape.body(undefined))} B; response body ${sample.bytes} B (the bare route answers the same length)`);
    out(`signing one request here: ${signUs.toFixed(1)} µs (fresh signing at 10 000 req/s would take ${(signUs * 10_000 / 1e6).toFixed(2)} of a core)`);
    out(`KMS server RSS idle after start: ${idleRss} MB`);
    out();

    const runs: RunRecord[] = [];
    const run = async (server: "kms" | "bare", c: number, how: Signing, seconds: number): Promise<RunRecord> => {
      const target = server === "kms" ? kms : bare;
      const ep = server === "kms" ? endpoint : bareEndpoint;
      const load = { endpoint: ep, path, body: shape.body, connections: c, signing: how };
      if (warmupS > 0) await runLoad({ ...load, durationS: warmupS });
      const from = nowUs();
      const { result, sample: s } = await sampled(target.pid, (tick) => runLoad({ ...load, durationS: seconds, onTick: tick }));
      const to = nowUs();
      const row = httpRow(server === "kms" ? "kms-http" : "bare-fastify", { operation, bytes }, c, how, ep.url, result);
      const mbs = s.rss.map((r) => r.mb);
      const record: RunRecord = {
        server, connections: c, signing: how, row,
        server_rss_mb: { start: mbs[0]!, max: Math.max(...mbs), end: mbs[mbs.length - 1]! }, rss: s.rss,
        server_cpu_cores: round(s.cpuS / (result.elapsedNs / 1e9), 2),
        server_threads_cores: { main: round(s.mainS / (result.elapsedNs / 1e9), 2), busiest_others: s.othersS.slice(0, 3).map((x) => round(x / (result.elapsedNs / 1e9), 2)) },
        window: [from, to],
      };
      runs.push(record);
      return record;
    };
    const bareAt = (c: number): RunRecord | undefined => runs.find((r) => r.server === "bare" && r.connections === c);

    out(header());
    let memory: Record<string, unknown> | undefined;
    if (values.memory) {
      const c = connections[0]!;
      const record = await run("kms", c, signing, durationS);
      out(line(record));
      const rss = record.rss.map((r) => ({ t: round(r.t), mb: r.mb }));
      const at = (fraction: number): { t: number; mb: number } => rss[Math.min(rss.length - 1, Math.floor(fraction * (rss.length - 1)))]!;
      const start = at(0);
      const middle = at(0.5);
      const end = at(1);
      memory = {
        connections: c, duration_s: durationS, idle_after_start_mb: idleRss, samples: rss,
        start_mb: start.mb, middle_mb: middle.mb, end_mb: end.mb, max_mb: Math.max(...rss.map((r) => r.mb)),
        growth_mb: round(end.mb - start.mb), second_half_growth_mb: round(end.mb - middle.mb),
        requests: record.row.ops,
      };
      out();
      out(`memory over ${durationS} s at ${c} connections (${record.row.ops} requests): RSS idle ${idleRss} MB; start ${start.mb} MB, middle ${middle.mb} MB, end ${end.mb} MB, max ${memory["max_mb"]} MB; ` +
        `growth ${memory["growth_mb"]} MB (second half ${memory["second_half_growth_mb"]} MB)`);
    } else {
      // The KMS line is printed once the bare run after it is done: its "× bare" is against that run.
      for (const c of connections) {
        const kmsRun = await run("kms", c, signing, durationS);
        const bareRun = await run("bare", c, signing, durationS);
        out(line(kmsRun, bareRun));
        out(line(bareRun));
      }
      const best = bestKms(runs);
      if (best !== undefined && signing === "pooled") out(line(await run("kms", best.connections, "fresh", durationS), bareAt(best.connections)));
    }

    await kms.stop();
    await bare.stop();
    children.length = 0;

    let profiles: Array<{ file: string; summary: ProfileSummary }> | undefined;
    if (profileDir !== undefined) {
      const windows = runs.filter((r) => r.server === "kms").map((r) => r.window);
      profiles = readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile") && f.includes(`.${kms.pid}.`))
        .map((f) => ({ file: join(profileDir, f), summary: summarizeProfile(join(profileDir, f), 25, windows) }));
      out();
      out(`CPU profile of the KMS server (pid ${kms.pid}) over the timed KMS runs only, one per thread (${profileDir}):`);
      for (const p of profiles) out(renderProfile(p.file, p.summary));
    }

    const verdict = verdicts(runs, memory, durationS, standIn, signing);
    const loadEnd = loadavg().map((n) => n.toFixed(2)).join(" / ");
    out();
    out(`load average at end ${loadEnd}`);
    out("issue 5 targets:");
    for (const v of verdict) out(`  ${v.met === null ? "n/a " : v.met ? "met " : "NOT "} ${v.target}: ${v.measured}`);
    if (values.json !== undefined) {
      writeFileSync(values.json, JSON.stringify({
        schema: "hsmkit-bench-server/1", created: new Date().toISOString(), machine: facts,
        config: { duration_s: durationS, warmup_s: warmupS, connections, signing, kms_thread: kmsThread, operation: shape.operation, plaintext_bytes: bytes, stand_in: standIn, memory: values.memory },
        load_average: { start: loadStart, end: loadEnd }, signing_us: round(signUs, 2), idle_rss_mb: idleRss, request_body_bytes: Buffer.byteLength(shape.body(undefined)), response_body_bytes: sample.bytes,
        runs: runs.map(({ window: _, rss: __, ...r }) => r), memory: memory ?? null, targets: verdict,
        profile: profiles?.map((p) => ({ file: p.file, layers: p.summary.layers, functions: p.summary.functions })) ?? null,
      }, null, 2) + "\n");
      out(`\nwrote ${values.json}`);
    }
  } finally {
    for (const child of children) await child.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function header(): string {
  return ["server".padEnd(12), "conns".padStart(5), "signing".padEnd(7), "req/s".padStart(8), "× bare".padStart(6), "p50 ms".padStart(7), "p99 ms".padStart(7),
    "errors".padStart(6), "RSS MB".padStart(13), "server CPU".padStart(10), "main + others".padStart(20), "client CPU".padStart(10)].join("  ");
}

/** One table line; a KMS run's "× bare" is over `bare`, the bare run at the same connection count. */
function line(r: RunRecord, bare?: RunRecord): string {
  const ratio = r.server === "kms" && bare !== undefined && bare.row.ops_per_s > 0 ? (r.row.ops_per_s / bare.row.ops_per_s).toFixed(2) : "";
  const ms = (us: number | null): string => (us === null ? "-" : (us / 1000).toFixed(2));
  const errors = r.row.errors === 0 ? "0" : `${r.row.errors} (${Object.entries(r.row.errors_by_code).map(([k, n]) => `${k} ×${n}`).join(", ")})`;
  return [r.server.padEnd(12), String(r.connections).padStart(5), r.signing.padEnd(7), Math.round(r.row.ops_per_s).toLocaleString("en-US").padStart(8), ratio.padStart(6),
    ms(r.row.p50_us).padStart(7), ms(r.row.p99_us).padStart(7), errors.padStart(6), `${r.server_rss_mb.start}→${r.server_rss_mb.end}`.padStart(13),
    r.server_cpu_cores.toFixed(2).padStart(10), `${r.server_threads_cores.main.toFixed(2)} + ${r.server_threads_cores.busiest_others.map((x) => x.toFixed(2)).join(" ")}`.padStart(20),
    (r.row.http?.client_cpu_cores ?? 0).toFixed(2).padStart(10)].join("  ");
}

/** The KMS run (pooled or the configured signing) with the most req/s. */
function bestKms(runs: RunRecord[]): RunRecord | undefined {
  return runs.filter((r) => r.server === "kms").sort((a, b) => b.row.ops_per_s - a.row.ops_per_s)[0];
}

function verdicts(runs: RunRecord[], memory: Record<string, unknown> | undefined, durationS: number, standIn: boolean, signing: Signing): Array<{ target: string; met: boolean | null; measured: string }> {
  const note = standIn ? " (describe-key stand-in, not encrypt-data)" : "";
  const out: Array<{ target: string; met: boolean | null; measured: string }> = [];
  const kms = runs.filter((r) => r.server === "kms" && r.signing === signing);
  const best = bestKms(kms);
  if (best !== undefined && !values.memory) {
    const bare = runs.find((r) => r.server === "bare" && r.connections === best.connections);
    out.push({ target: "encrypt-data 1 KiB, AK/SK, durable audit ≥ 10 000 req/s", met: standIn ? null : best.row.ops_per_s >= 10_000,
      measured: `${Math.round(best.row.ops_per_s)} req/s at ${best.connections} connections${note}` });
    if (bare !== undefined) {
      const ratio = best.row.ops_per_s / bare.row.ops_per_s;
      out.push({ target: "≥ 0.5× the bare fastify route", met: standIn ? null : ratio >= 0.5, measured: `${ratio.toFixed(2)}× (bare ${Math.round(bare.row.ops_per_s)} req/s at ${best.connections} connections)${note}` });
    }
    const p99 = best.row.p99_us === null ? NaN : best.row.p99_us / 1000;
    out.push({ target: "p99 < 20 ms at that load", met: standIn ? null : p99 < 20, measured: `p99 ${p99.toFixed(1)} ms, p50 ${((best.row.p50_us ?? NaN) / 1000).toFixed(1)} ms${note}` });
    const errors = runs.reduce((s, r) => s + r.row.errors, 0);
    out.push({ target: "no errors", met: errors === 0, measured: `${errors} non-2xx or failed requests in all runs` });
  }
  if (memory !== undefined) {
    const end = memory["end_mb"] as number;
    const growth = memory["second_half_growth_mb"] as number;
    const long = durationS >= 600;
    out.push({ target: "RSS < 250 MB after 10 minutes, no growth", met: long ? end < 250 && growth < 0.05 * (memory["middle_mb"] as number) : null,
      measured: `after ${durationS} s: ${end} MB, growth over the second half ${growth} MB (start ${memory["start_mb"]} MB)${long ? "" : " — a 10-minute run is --duration 600 --memory"}${note}` });
  } else {
    const max = Math.max(...runs.filter((r) => r.server === "kms").map((r) => r.server_rss_mb.max));
    out.push({ target: "RSS < 250 MB after 10 minutes, no growth", met: null, measured: `not run (--duration 600 --memory); max RSS in this sweep ${max} MB` });
  }
  return out;
}

if (values.child === "kms") await childKms();
else if (values.child === "bare") await childBare();
else if (values.child !== undefined) throw new Error(`unknown --child ${values.child}`);
else if (!existsSync("/proc/self/status")) throw new Error("bench:server samples /proc/<pid>: Linux only");
else await parent();
