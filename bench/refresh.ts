/**
 * `npm run bench`: the standard comparison — native core vs node:crypto vs emulator vs SoftHSMv2 —
 * run through the src/bench library (the engine behind `hsmkit bench`), then written to
 * docs/bench/standard.json (schema: docs/bench-schema.md), docs/bench/standard.svg (the chart) and
 * the generated section of docs/BENCHMARKS.md between the marker comments
 * `<!-- bench:standard:begin -->` and `<!-- bench:standard:end -->`. The rest of the document is
 * hand-written and left untouched; when the markers are absent they are inserted after the
 * introduction (before the first `## ` heading).
 *
 *   node dist/bench/refresh.js [--duration S] [--warmup S] [--no-doc]
 *
 * SoftHSMv2 gets a throwaway token in a temporary directory (softhsm2-util + SOFTHSM2_CONF, as in
 * bench/pkcs11.ts); when libsofthsm2.so or softhsm2-util is missing the run goes on without it and
 * says so on stdout and in the document.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { addRatios, parseMechs, runBench, targetSpec, type BenchReport, type Row, type TargetSpec } from "../src/bench/index.js";
import { renderChart } from "../src/bench/chart.js";
import { renderTable } from "../src/bench/report.js";
import { validate } from "../src/bench/schema.js";

export const BEGIN = "<!-- bench:standard:begin -->";
export const END = "<!-- bench:standard:end -->";

/** The passes of the standard comparison: each is one runBench over every target. */
export const STANDARD_PASSES: ReadonlyArray<{ mech: string; sizes: number[] }> = [
  { mech: "aes-gcm", sizes: [64, 1024, 16384] },
  { mech: "aes-kwp,hmac-sha256,ecdsa@256,rsa@2048", sizes: [1024] },
  { mech: "random", sizes: [32] },
];
const TOKEN = "hsmkit-bench";
const PIN = "1234";
const SOFTHSM_PATHS = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"];

/**
 * Replaces the text between the markers with `body` (markers kept). Without markers, inserts a
 * marked section after the introduction: before the first level-2 heading, or at the end.
 * Everything outside the markers is returned byte for byte.
 */
export function replaceSection(doc: string, body: string): string {
  const section = `${BEGIN}\n${body.replace(/\n+$/u, "")}\n${END}`;
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin !== -1 && end !== -1 && end > begin) return doc.slice(0, begin) + section + doc.slice(end + END.length);
  if (begin !== -1 || end !== -1) throw new Error(`docs/BENCHMARKS.md: unbalanced markers (${BEGIN} … ${END})`);
  const heading = /^## /mu.exec(doc);
  if (heading === null) return `${doc.replace(/\n*$/u, "")}\n\n${section}\n`;
  return `${doc.slice(0, heading.index)}${section}\n\n${doc.slice(heading.index)}`;
}

const num = (n: number | null): string => {
  if (n === null || !Number.isFinite(n)) return "";
  if (n >= 1000) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(3)).toString();
};

function ratio(rows: Row[], row: Row, baseline: string): string {
  const base = rows.find((r) => r.target === baseline && r.op === row.op && r.bytes === row.bytes && r.key_bits === row.key_bits);
  if (base === undefined || base.status !== "ok" || row.status !== "ok" || base.ops_per_s === 0 || row.target === baseline) return "";
  return `${(row.ops_per_s / base.ops_per_s).toFixed(2)}×`;
}

export interface RunFacts {
  command: string;
  cli: string;
  loadStart: number[];
  loadEnd: number[];
  softhsm: string | null;
  softhsmSkipped: string | null;
  wallS: number;
}

/** The generated section's Markdown (without markers). */
export function renderSection(report: BenchReport, facts: RunFacts): string {
  const m = report.machine;
  const c = report.config;
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(" / ");
  const softhsmName = report.targets.find((t) => t.kind === "module")?.name;
  const order = c.targets;
  const trialKey = (r: Row): string => `${r.mech}\u0000${r.op}\u0000${String(r.key_bits).padStart(6, "0")}\u0000${String(r.bytes).padStart(10, "0")}`;
  const trialOrder = [...new Set(report.rows.map(trialKey))];
  const rows = [...report.rows].sort((a, b) => trialOrder.indexOf(trialKey(a)) - trialOrder.indexOf(trialKey(b)) || order.indexOf(a.target) - order.indexOf(b.target));
  const head = ["target", "op", "bytes", "ops/s", "MB/s", "p50 µs", "p99 µs", "× node:crypto", ...(softhsmName ? ["× SoftHSMv2"] : [])];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i >= 2 ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => {
      const op = r.key_bits > 0 && (r.mech === "rsa" || r.mech === "ecdsa") ? `${r.op} (${r.key_bits})` : r.op;
      const stats = r.status === "ok"
        ? [num(r.ops_per_s), num(r.mb_per_s), num(r.p50_us), num(r.p99_us)]
        : [r.status.toUpperCase(), "", "", r.reason ?? ""];
      return `| ${[r.target, op, String(r.bytes), ...stats, ratio(report.rows, r, "node-crypto"), ...(softhsmName ? [ratio(report.rows, r, softhsmName)] : [])].join(" | ")} |`;
    }),
  ];
  const module = report.targets.find((t) => t.kind === "module");
  const timing = c.iterations !== null ? `${c.iterations} operations per trial` : `${c.duration_s} s per trial after a ${c.warmup_s} s warm-up`;
  return [
    "## Standard comparison — `npm run bench`",
    "",
    "_Generated by `npm run bench` (bench/refresh.ts); everything between the `bench:standard` markers is",
    "rewritten on each run, the rest of this document is hand-written._",
    "",
    `Command: \`${facts.command}\` — ${report.created.replace("T", " ").replace(/\.\d+Z$/u, " UTC")}, ${facts.wallS.toFixed(0)} s wall.`,
    `Equivalent CLI run (one pass of three; the others use \`--mech aes-kwp,hmac-sha256,ecdsa@256,rsa@2048 --sizes 1024\` and \`--mech random --sizes 32\`):`,
    "",
    "```sh",
    facts.cli,
    "```",
    "",
    `Machine: ${m.cpu}, ${m.cores} cores (${m.arch}, ${m.platform} ${m.os_release}), Node ${m.node}, OpenSSL ${m.openssl}` +
      `${m.native_openssl ? ` (native core linked against ${m.native_openssl})` : ""}, hsmkit ${m.hsmkit}.`,
    `Load average (1/5/15 min) at start ${load(facts.loadStart)}, at end ${load(facts.loadEnd)} — a shared VM:` +
      " absolute figures move with other work on it, **compare the ratios within this run**.",
    "",
    `Timing: ${timing}, ${c.threads} thread, targets run one after another; ops/s and MB/s over the timed` +
      " window, latency percentiles per operation (hrtime, nearest rank). Ratios are ops/s over the same trial" +
      " on node:crypto" + (module ? " and on SoftHSMv2" : "") + ".",
    "",
    module
      ? `SoftHSMv2: ${facts.softhsm} ("${module.module?.description ?? ""}", library version ${module.module?.library_version ?? "?"}), a throwaway token "${module.token?.label ?? TOKEN}" made with softhsm2-util, initialized with CKF_OS_LOCKING_OK.`
      : `**SoftHSMv2 was not part of this run: ${facts.softhsmSkipped}.**`,
    "",
    ...lines,
    "",
    "Full report (every latency statistic, per-thread figures): [bench/standard.json](bench/standard.json).",
    "",
    "![Throughput against message size per target, and latency distributions](bench/standard.svg)",
  ].join("\n");
}

function findSoftHsm(): { path: string } | { skipped: string } {
  const path = SOFTHSM_PATHS.find((p) => existsSync(p));
  if (path === undefined) return { skipped: `libsofthsm2.so not found (looked in ${SOFTHSM_PATHS.join(", ")}); install softhsm2` };
  try {
    execFileSync("softhsm2-util", ["--version"], { stdio: "ignore" });
  } catch {
    return { skipped: "softhsm2-util not on PATH; install softhsm2" };
  }
  return { path };
}

function merge(reports: BenchReport[]): BenchReport {
  const first = reports[0]!;
  const rows = reports.flatMap((r) => r.rows);
  for (const row of rows) { row.ratio = null; row.ratio_vs = null; }
  addRatios(rows, "node-crypto");
  return {
    ...first,
    config: {
      ...first.config,
      mechs: reports.flatMap((r) => r.config.mechs),
      sizes: [...new Set(reports.flatMap((r) => r.config.sizes))].sort((a, b) => a - b),
    },
    rows,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { duration: { type: "string", default: "1" }, warmup: { type: "string", default: "0.2" }, "no-doc": { type: "boolean", default: false } },
  });
  const durationS = Number(values.duration);
  const warmupS = Number(values.warmup);
  if (!(durationS > 0) || !(warmupS >= 0)) throw new Error("--duration must be > 0 and --warmup ≥ 0 seconds");
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
  const outDir = join(root, "docs/bench");
  const docPath = join(root, "docs/BENCHMARKS.md");
  const loadStart = loadavg();
  const started = Date.now();

  const found = findSoftHsm();
  let tmp: string | undefined;
  const modules = ["native", "node-crypto", "emulator"];
  if ("path" in found) {
    tmp = mkdtempSync(join(tmpdir(), "hsmkit-bench-standard-"));
    mkdirSync(join(tmp, "tokens"));
    writeFileSync(join(tmp, "softhsm2.conf"), `directories.tokendir = ${join(tmp, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env["SOFTHSM2_CONF"] = join(tmp, "softhsm2.conf");
    execFileSync("softhsm2-util", ["--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "12345678"], { stdio: "ignore" });
    modules.push(found.path);
    process.stdout.write(`SoftHSMv2: ${found.path}, throwaway token "${TOKEN}" in ${tmp}\n`);
  } else {
    process.stdout.write(`SoftHSMv2 skipped: ${found.skipped}\n`);
  }
  process.stdout.write(`load average at start: ${loadStart.map((l) => l.toFixed(2)).join(" ")}\n`);

  const targets: TargetSpec[] = modules.map((m) => targetSpec(m, TOKEN, PIN));
  const reports: BenchReport[] = [];
  try {
    for (const pass of STANDARD_PASSES) {
      process.stdout.write(`pass: --mech ${pass.mech} --sizes ${pass.sizes.join(",")}\n`);
      reports.push(await runBench({
        targets, mechs: parseMechs(pass.mech), sizes: pass.sizes, threads: 1,
        timing: { durationS, warmupS }, compare: true,
      }));
    }
  } finally {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  }
  const report = merge(reports);
  const problems = validate(JSON.parse(JSON.stringify(report)) as unknown);
  if (problems.length > 0) process.stderr.write(`warning: report does not validate against docs/bench-schema.md:\n  ${problems.join("\n  ")}\n`);

  process.stdout.write("\n" + renderTable(report));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "standard.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(join(outDir, "standard.svg"), renderChart(report));
  process.stdout.write(`\nwrote docs/bench/standard.json (${report.rows.length} rows) and docs/bench/standard.svg\n`);

  const first = STANDARD_PASSES[0]!;
  const facts: RunFacts = {
    command: "npm run bench",
    cli: `hsmkit bench --module ${modules.join(",")} --token ${TOKEN} --pin ${PIN} --mech ${first.mech} --sizes ${first.sizes.join(",")}` +
      ` --threads 1 --duration ${durationS} --warmup ${warmupS} --compare --json standard.json --chart standard.svg`,
    loadStart, loadEnd: loadavg(),
    softhsm: "path" in found ? found.path : null,
    softhsmSkipped: "skipped" in found ? found.skipped : null,
    wallS: (Date.now() - started) / 1000,
  };
  if (!values["no-doc"]) {
    writeFileSync(docPath, replaceSection(readFileSync(docPath, "utf8"), renderSection(report, facts)));
    process.stdout.write(`refreshed the generated section of docs/BENCHMARKS.md (${facts.wallS.toFixed(0)} s)\n`);
  }
  const failed = report.rows.filter((r) => r.status !== "ok");
  for (const r of failed) process.stdout.write(`note: ${r.target} ${r.op} ${r.bytes} B ${r.status}: ${r.reason}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench/refresh: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
