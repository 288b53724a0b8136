/**
 * `npm run bench:core`: the native core against node:crypto in one run.
 *
 *   node dist/bench/core.js [--json FILE] [--quick] [--sizes 64,1024,16384,1048576]
 *
 * Rows: GCM seal and open (native single call, native batch, native async, node:crypto) at each
 * size, with the in-process C loop as the ceiling; KW and KWP wrap of a 32-byte key; 32-byte
 * random. Ratios are native / node:crypto within this run (figures on a shared VM vary ±10–20 %
 * between runs, so only same-run ratios are meaningful). --json writes an array of rows
 * { target, op, bytes, batch, ops_per_s, mb_per_s } (target: native, native-batch,
 * native-async or node-crypto); native GCM seal rows also carry c_loop_ops_per_s, the ceiling.
 */
import { writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { addon } from "../src/crypto/addon.js";
import { randomStatus } from "../src/crypto/random.js";
import { measure, type Measurement, type Trial } from "./harness.js";
import { gcmTrials } from "./core/gcm.js";
import { keyWrapTrials } from "./core/keywrap.js";
import { randomTrials } from "./core/random.js";

const { values } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    sizes: { type: "string", default: "64,1024,16384,1048576" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  process.stdout.write(
    "Usage: npm run bench:core -- [--json FILE] [--quick] [--sizes LIST]\n\n" +
      "Measures the native crypto core against node:crypto in one run and prints ratios.\n" +
      "  --json FILE   also write the rows as JSON\n" +
      "  --quick       shorter runs (noisier), for a smoke test\n" +
      "  --sizes LIST  GCM message sizes in bytes (default 64,1024,16384,1048576)\n",
  );
  process.exit(0);
}

// Digits only: parseInt would read "1k" as 1 and "64.5" as 64, and measure sizes nobody asked for.
const sizes = values.sizes.split(",").map((s) => (/^\d+$/u.test(s.trim()) ? Number(s.trim()) : Number.NaN));
if (sizes.some((s) => !Number.isInteger(s) || s < 0 || s > 64 << 20)) {
  process.stderr.write(`bench:core: --sizes must be byte counts from 0 to 67108864, got "${values.sizes}"\n`);
  process.exit(2);
}
const timing = values.quick ? { runSeconds: 0.05, runs: 3 } : { runSeconds: 0.25, runs: 5 };

const trials: Trial[] = [...sizes.flatMap((size) => gcmTrials(size)), ...keyWrapTrials(), ...randomTrials()];

const bar = new cliProgress.SingleBar(
  { format: "{bar} {value}/{total} {trial}", clearOnComplete: true, stream: process.stderr },
  cliProgress.Presets.shades_classic,
);
if (process.stderr.isTTY) bar.start(trials.length, 0, { trial: "" });
const results: Measurement[] = [];
for (const trial of trials) {
  bar.update(results.length, { trial: `${trial.target} ${trial.op} ${trial.bytes} B` });
  results.push(await measure(trial, timing));
}
bar.update(trials.length);
bar.stop();

const peer = (row: Measurement): Measurement | undefined =>
  results.find((r) => r.target === "node-crypto" && r.op === row.op && r.bytes === row.bytes);
const ceiling = (row: Measurement): Measurement | undefined =>
  results.find((r) => r.target === "native-c-loop" && r.op === row.op && r.bytes === row.bytes);

const format = (n: number): string => n.toLocaleString("en-US");
const header = ["op", "bytes", "target", "batch", "ops/s", "MB/s", "× node:crypto", "× C loop"];
const lines = results.map((row) => {
  const p = peer(row);
  const c = ceiling(row);
  return [
    row.op, String(row.bytes), row.target, String(row.batch), format(row.ops_per_s), format(row.mb_per_s),
    p && row.target !== "node-crypto" ? (row.ops_per_s / p.ops_per_s).toFixed(2) : "",
    c && row.target !== "native-c-loop" ? (row.ops_per_s / c.ops_per_s).toFixed(2) : "",
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const render = (cells: string[]): string => "| " + cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ") + " |";
const openssl = addon.opensslVersion();
const random = randomStatus();
process.stdout.write(
  `hsmkit bench:core — ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, Node ${process.versions.node}, ` +
    `${openssl.runtime}; entropy source ${random.activeSource ?? "none"}; ` +
    `median of ${timing.runs} runs of ~${timing.runSeconds}s each\n\n`,
);
process.stdout.write([render(header), render(widths.map((w) => "-".repeat(w))), ...lines.map(render)].join("\n") + "\n");

if (values.json !== undefined) {
  const rows = results
    .filter((r) => r.target !== "native-c-loop")
    .map((r) => {
      const c = r.target === "native" ? ceiling(r) : undefined;
      const { runs: _runs, ...row } = r;
      return c ? { ...row, c_loop_ops_per_s: c.ops_per_s } : row;
    });
  writeFileSync(values.json, JSON.stringify(rows, null, 2) + "\n");
  process.stdout.write(`\nwrote ${rows.length} rows to ${values.json}\n`);
}
