/**
 * `hsmkit bench`: throughput and latency of the native core, node:crypto, the emulator, any
 * PKCS#11 module, or a running KMS server's HTTP API (--module http://…, src/bench/http), as a
 * table, JSON (docs/bench-schema.md) and an SVG chart.
 *
 * Exit codes: 0 done; 1 a target could not be used (module not found or not loadable, token not
 * found, wrong PIN, KMS endpoint unreachable or refusing the credentials) or a thread or every
 * request of a trial failed; 2 bad flags; 3 a requested mechanism is supported by none of the
 * targets (the report is still written).
 */
import { accessSync, constants, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import {
  assertThreads, BenchError, OPERATIONS, parseMechs, parseSizes, runBench, targetSpec, unsupportedEverywhere, type BenchReport, type Progress,
} from "../bench/index.js";
import { expandHttpTrials, HTTP_OPERATIONS, loadCredentials, parseHttpMechs, runHttpBench, type Signing } from "../bench/http/index.js";
import { renderTable } from "../bench/report.js";
import { renderChart } from "../bench/chart.js";

interface Flags {
  module: string[];
  token?: string;
  pin?: string;
  mech?: string;
  sizes?: string;
  credentials?: string;
  signing: string;
  threads: string;
  duration: string;
  iterations?: string;
  warmup: string;
  compare?: boolean;
  json?: string;
  chart?: string;
}

const STANDARD = ["native", "node-crypto", "emulator"];
const DEFAULTS = { mech: "aes-gcm", sizes: "64,1024,16384" };
const HTTP_DEFAULTS = { mech: "encrypt-data", sizes: "64,1024,4096" };

function positive(name: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (integer && (!Number.isInteger(n) || n < 1))) {
    throw new BenchError(`--${name} must be ${integer ? "a positive integer" : "a number of seconds ≥ 0"}, got "${value}"`, 2);
  }
  return n;
}

function progressBar(): Progress | undefined {
  if (!process.stderr.isTTY) return undefined;
  // No terminal modes (hidden cursor, autowrap off): a trial runs synchronously, so on Ctrl-C no
  // handler could restore them and the user's shell would be left without a cursor. Long lines
  // are cut to the terminal's width instead (linewrap true).
  const bar = new cliProgress.SingleBar(
    { format: "{bar} {value}/{total} {trial}", clearOnComplete: true, hideCursor: false, linewrap: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  return {
    start: (total) => bar.start(total, 0, { trial: "" }),
    // Drawn now: the trial about to start runs synchronously and holds off cli-progress's redraw timer.
    tick: (label) => { bar.update(done++, { trial: label }); bar.render(); },
    stop: () => { bar.update(done); bar.stop(); },
  };
}

/**
 * Refuses (exit 2) a --json or --chart file that could not be written, before the run: the report
 * is written at the end, and a run may take minutes.
 */
function assertWritable(option: string, file: string | undefined): void {
  if (file === undefined) return;
  const problem = (() => {
    try {
      if (statSync(file).isDirectory()) return "it is a directory";
      accessSync(file, constants.W_OK);
      return undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") return (error as Error).message;
    }
    try {
      if (!statSync(dirname(file)).isDirectory()) return `${dirname(file)} is not a directory`;
      accessSync(dirname(file), constants.W_OK);
      return undefined;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ENOENT" ? `the directory ${dirname(file)} does not exist` : (error as Error).message;
    }
  })();
  if (problem !== undefined) throw new BenchError(`--${option} ${file} cannot be written: ${problem}`, 2);
}

/** Writes one output file; a failure (disk full, say) is exit 1 with a message, the table already printed. */
function writeOutput(option: string, file: string, content: string): void {
  try {
    writeFileSync(file, content);
  } catch (error) {
    throw new BenchError(`could not write --${option} ${file}: ${(error as Error).message}`, 1);
  }
}

/** The KMS HTTP target: every --module is a URL; --threads is the number of connections. */
function httpBench(flags: Flags, urls: string[], threads: number, timing: { iterations: number | undefined; durationS: number; warmupS: number }): Promise<BenchReport> {
  if (flags.signing !== "fresh" && flags.signing !== "pooled") throw new BenchError(`--signing must be fresh or pooled, got "${flags.signing}"`, 2);
  const operations = parseHttpMechs(flags.mech ?? HTTP_DEFAULTS.mech);
  const sizes = parseSizes(flags.sizes ?? HTTP_DEFAULTS.sizes);
  expandHttpTrials(operations, sizes); // refuses sizes an API does not take (exit 2) before any credentials are read
  return runHttpBench({
    urls, credentials: loadCredentials(flags.credentials), operations, sizes, connections: threads,
    durationS: timing.durationS, iterations: timing.iterations, warmupS: timing.warmupS, signing: flags.signing as Signing,
    compare: urls.length > 1,
  }, progressBar());
}

async function bench(flags: Flags): Promise<number> {
  const pin = flags.pin ?? process.env["HSMKIT_PIN"];
  const modules = flags.module.flatMap((m) => m.split(",")).map((m) => m.trim()).filter((m) => m.length > 0);
  if (modules.length === 0) modules.push("emulator");
  const http = modules.filter((m) => /^https?:\/\//u.test(m));
  if (http.length > 0 && http.length < modules.length) {
    throw new BenchError("a KMS HTTP target (http://…) measures KMS operations, not mechanisms: it cannot share a run with native, node-crypto, emulator or module targets", 2);
  }
  if (http.length > 0 && flags.compare) throw new BenchError("--compare adds the local targets, which a KMS HTTP run cannot include; give several http:// targets to compare servers", 2);
  if (flags.compare) for (const s of STANDARD) if (!modules.includes(s)) modules.push(s);
  const threads = positive("threads", flags.threads, true);
  assertThreads(threads);
  const iterations = flags.iterations === undefined ? undefined : positive("iterations", flags.iterations, true);
  const timing = { iterations, durationS: positive("duration", flags.duration, false), warmupS: positive("warmup", flags.warmup, false) };
  if (timing.iterations === undefined && timing.durationS <= 0) throw new BenchError("--duration must be more than 0 seconds (or give --iterations)", 2);
  assertWritable("json", flags.json);
  assertWritable("chart", flags.chart);

  let report: BenchReport;
  if (http.length > 0) {
    report = await httpBench(flags, http, threads, timing);
  } else {
    const targets = modules.map((m) => targetSpec(m, flags.token, pin));
    report = await runBench({
      targets,
      mechs: parseMechs(flags.mech ?? DEFAULTS.mech),
      sizes: parseSizes(flags.sizes ?? DEFAULTS.sizes),
      threads,
      timing,
      compare: flags.compare === true || targets.length > 1,
    }, progressBar());
  }
  process.stdout.write(renderTable(report));
  if (flags.json !== undefined) {
    writeOutput("json", flags.json, JSON.stringify(report, null, 2) + "\n");
    process.stdout.write(`\nwrote ${report.rows.length} rows to ${flags.json}\n`);
  }
  if (flags.chart !== undefined) {
    writeOutput("chart", flags.chart, renderChart(report));
    process.stdout.write(`wrote the chart to ${flags.chart}\n`);
  }
  const failed = report.rows.filter((r) => r.status === "failed");
  for (const row of failed) process.stderr.write(`hsmkit bench: ${row.target} ${row.op} ${row.bytes} B failed: ${row.reason}\n`);
  for (const row of report.rows.filter((r) => r.status === "ok" && r.errors > 0)) {
    const codes = Object.entries(row.errors_by_code).map(([code, n]) => `${code} ×${n}`).join(", ");
    process.stderr.write(`hsmkit bench: ${row.target} ${row.op} ${row.bytes} B: ${row.errors} of ${row.ops + row.errors} requests failed (${codes}); they are not in ops/s or latency\n`);
  }
  const unsupported = unsupportedEverywhere(report);
  for (const u of unsupported) process.stderr.write(`hsmkit bench: unsupported mechanism ${u.mech}: ${u.reasons.join("; ")}\n`);
  // "all" names no mechanism in particular: one that none of these targets offers is reported,
  // not a failure of the run (aes-gcm-token-iv is offered by no local target, so "all" would
  // otherwise never succeed).
  const named = (flags.mech ?? DEFAULTS.mech).trim() !== "all";
  return named && unsupported.length > 0 ? 3 : failed.length > 0 ? 1 : 0;
}

export function benchCommand(): Command {
  return new Command("bench")
    .description("measure crypto throughput and latency of the native core, node:crypto, the emulator or a PKCS#11 module")
    .addOption(new Option("--module <target>", "PATH of a PKCS#11 module, emulator, native, node-crypto or http://… (repeatable or comma-separated)")
      .argParser((value: string, previous: string[]) => [...previous, value]).default([], "emulator"))
    .option("--token <label>", "token label (PKCS#11 module; the emulator's token is given this label)")
    .option("--pin <pin>", "user PIN (default: $HSMKIT_PIN; the emulator uses 1234)")
    .option("--mech <list>", `mechanisms, NAME[@KEYBITS[/KEYBITS…]] comma-separated, or all: ${OPERATIONS.map((o) => o.mech).join(", ")}; ` +
      `for http://…: ${HTTP_OPERATIONS.map((o) => o.mech).join(", ")} (default: ${DEFAULTS.mech}; http: ${HTTP_DEFAULTS.mech})`)
    .option("--sizes <list>", `message sizes in bytes (k and m suffixes allowed) (default: ${DEFAULTS.sizes}; http: ${HTTP_DEFAULTS.sizes})`)
    .option("--threads <n>", "worker threads, one session each; for http://…, concurrent connections", "1")
    .option("--duration <seconds>", "timed seconds per trial (ignored with --iterations)", "1")
    .option("--iterations <n>", "operations per thread per trial instead of --duration")
    .option("--warmup <seconds>", "untimed warm-up seconds per trial", "0.2")
    .option("--compare", "also run native, node-crypto and emulator, with ratio columns against the first target")
    .option("--json <file>", "write the report as JSON (schema: docs/bench-schema.md)")
    .option("--chart <file>", "write an SVG chart (throughput against size, latency distribution)")
    .option("--credentials <file>", "http://…: the AK/SK file (default: $HSMKIT_AK/$HSMKIT_SK/$HSMKIT_PROJECT_ID, else ./.hsmkit/credentials.json)")
    .option("--signing <how>", "http://…: fresh (sign every request) or pooled (one signature per second, reused)", "fresh")
    .addHelpText("after", `
Exit status: 0 done; 1 a target could not be used, or a trial failed; 2 bad flags; 3 a mechanism named in --mech that no target supports ("all" reports such mechanisms without failing).

Examples:
  hsmkit bench --compare --mech aes-gcm,hmac-sha256 --sizes 64,1k,16k
  hsmkit bench --module /usr/lib/softhsm/libsofthsm2.so --token bench --pin 1234 --threads 2 --mech rsa@2048
  hsmkit bench --module emulator --iterations 1000 --warmup 0 --json report.json --chart report.svg
  hsmkit bench --module http://127.0.0.1:8731 --mech encrypt-data,decrypt-data --threads 8 --duration 5`)
    .action(async (flags: Flags) => {
      try {
        process.exitCode = await bench(flags);
      } catch (error) {
        if (!(error instanceof BenchError)) throw error;
        process.stderr.write(`hsmkit bench: ${error.message}\n`);
        process.exitCode = error.exitCode;
      }
    });
}
