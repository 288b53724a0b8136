/**
 * `hsmkit bench`: throughput and latency of the native core, node:crypto, the emulator or any
 * PKCS#11 module, as a table, JSON (docs/bench-schema.md) and an SVG chart.
 *
 * Exit codes: 0 done; 1 a target could not be used (module not found or not loadable, token not
 * found, wrong PIN, KMS HTTP target not available yet) or a thread failed; 2 bad flags; 3 a
 * requested mechanism is supported by none of the targets (the report is still written).
 */
import { writeFileSync } from "node:fs";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import {
  assertThreads, BenchError, OPERATIONS, parseMechs, parseSizes, runBench, targetSpec, unsupportedEverywhere, type Progress,
} from "../bench/index.js";
import { renderTable } from "../bench/report.js";
import { renderChart } from "../bench/chart.js";

interface Flags {
  module: string[];
  token?: string;
  pin?: string;
  mech: string;
  sizes: string;
  threads: string;
  duration: string;
  iterations?: string;
  warmup: string;
  compare?: boolean;
  json?: string;
  chart?: string;
}

const STANDARD = ["native", "node-crypto", "emulator"];

function positive(name: string, value: string, integer: boolean): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (integer && (!Number.isInteger(n) || n < 1))) {
    throw new BenchError(`--${name} must be ${integer ? "a positive integer" : "a number of seconds ≥ 0"}, got "${value}"`, 2);
  }
  return n;
}

function progressBar(): Progress | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    { format: "{bar} {value}/{total} {trial}", clearOnComplete: true, hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  return {
    start: (total) => bar.start(total, 0, { trial: "" }),
    tick: (label) => bar.update(done++, { trial: label }),
    stop: () => { bar.update(done); bar.stop(); },
  };
}

async function bench(flags: Flags): Promise<number> {
  const pin = flags.pin ?? process.env["HSMKIT_PIN"];
  const modules = flags.module.flatMap((m) => m.split(",")).map((m) => m.trim()).filter((m) => m.length > 0);
  if (modules.length === 0) modules.push("emulator");
  if (flags.compare) for (const s of STANDARD) if (!modules.includes(s)) modules.push(s);
  const targets = modules.map((m) => targetSpec(m, flags.token, pin));
  const threads = positive("threads", flags.threads, true);
  assertThreads(threads);
  const iterations = flags.iterations === undefined ? undefined : positive("iterations", flags.iterations, true);
  const options = {
    targets,
    mechs: parseMechs(flags.mech),
    sizes: parseSizes(flags.sizes),
    threads,
    timing: { iterations, durationS: positive("duration", flags.duration, false), warmupS: positive("warmup", flags.warmup, false) },
    compare: flags.compare === true || targets.length > 1,
  };
  if (options.timing.iterations === undefined && options.timing.durationS <= 0) throw new BenchError("--duration must be more than 0 seconds (or give --iterations)", 2);

  const report = await runBench(options, progressBar());
  process.stdout.write(renderTable(report));
  if (flags.json !== undefined) {
    writeFileSync(flags.json, JSON.stringify(report, null, 2) + "\n");
    process.stdout.write(`\nwrote ${report.rows.length} rows to ${flags.json}\n`);
  }
  if (flags.chart !== undefined) {
    writeFileSync(flags.chart, renderChart(report));
    process.stdout.write(`wrote the chart to ${flags.chart}\n`);
  }
  const failed = report.rows.filter((r) => r.status === "failed");
  for (const row of failed) process.stderr.write(`hsmkit bench: ${row.target} ${row.op} ${row.bytes} B failed: ${row.reason}\n`);
  const unsupported = unsupportedEverywhere(report);
  for (const u of unsupported) process.stderr.write(`hsmkit bench: unsupported mechanism ${u.mech}: ${u.reasons.join("; ")}\n`);
  return unsupported.length > 0 ? 3 : failed.length > 0 ? 1 : 0;
}

export function benchCommand(): Command {
  return new Command("bench")
    .description("measure crypto throughput and latency of the native core, node:crypto, the emulator or a PKCS#11 module")
    .addOption(new Option("--module <target>", "PATH of a PKCS#11 module, emulator, native, node-crypto or http://… (repeatable or comma-separated)")
      .argParser((value: string, previous: string[]) => [...previous, value]).default([], "emulator"))
    .option("--token <label>", "token label (PKCS#11 module; the emulator's token is given this label)")
    .option("--pin <pin>", "user PIN (default: $HSMKIT_PIN; the emulator uses 1234)")
    .option("--mech <list>", `mechanisms, NAME[@KEYBITS[/KEYBITS…]] comma-separated, or all: ${OPERATIONS.map((o) => o.mech).join(", ")}`, "aes-gcm")
    .option("--sizes <list>", "message sizes in bytes (k and m suffixes allowed)", "64,1024,16384")
    .option("--threads <n>", "worker threads, one session each", "1")
    .option("--duration <seconds>", "timed seconds per trial (ignored with --iterations)", "1")
    .option("--iterations <n>", "operations per thread per trial instead of --duration")
    .option("--warmup <seconds>", "untimed warm-up seconds per trial", "0.2")
    .option("--compare", "also run native, node-crypto and emulator, with ratio columns against the first target")
    .option("--json <file>", "write the report as JSON (schema: docs/bench-schema.md)")
    .option("--chart <file>", "write an SVG chart (throughput against size, latency distribution)")
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
