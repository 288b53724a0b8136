// The JSON report validates against its schema (the one docs/bench-schema.md embeds), the SVG is
// well-formed with one series per target, and the table shows every row. Tiny in-process runs.
import test from "ava";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BenchError, parseMechs, runBench, targetSpec, type BenchReport, type Progress } from "../../src/bench/index.js";
import { renderChart } from "../../src/bench/chart.js";
import { renderTable } from "../../src/bench/report.js";
import { BENCH_SCHEMA, validate } from "../../src/bench/schema.js";
import { parseXml } from "./xml.js";

const TARGETS = ["native", "node-crypto", "emulator"];
let report: BenchReport | undefined;

async function tinyReport(): Promise<BenchReport> {
  report ??= await runBench({
    targets: TARGETS.map((t) => targetSpec(t, undefined, undefined)),
    mechs: parseMechs("aes-gcm,aes-gcm-token-iv,aes-kwp,hmac-sha256,random,find"),
    sizes: [64, 1024],
    threads: 1,
    timing: { iterations: 3, durationS: 0, warmupS: 0 },
    compare: true,
  });
  return report;
}

test("the report validates against the schema, and the schema is the one documented", async (t) => {
  const r = await tinyReport();
  const json = JSON.parse(JSON.stringify(r)) as unknown;
  t.deepEqual(validate(json), []);
  const doc = readFileSync(fileURLToPath(new URL("../../../docs/bench-schema.md", import.meta.url)), "utf8");
  const block = /```json\n([\s\S]*?)\n```/u.exec(doc);
  t.truthy(block, "docs/bench-schema.md embeds the schema in a json block");
  t.deepEqual(JSON.parse(block![1]!), JSON.parse(JSON.stringify(BENCH_SCHEMA)));
});

test("the validator rejects what the schema forbids", async (t) => {
  const r = JSON.parse(JSON.stringify(await tinyReport())) as { rows: Array<Record<string, unknown>>; machine: Record<string, unknown> };
  r.rows[0]!["ops_per_s"] = "fast";
  delete r.machine["openssl"];
  r.rows[1]!["extra"] = 1;
  const errors = validate(r);
  t.true(errors.some((e) => e.includes("$.rows[0].ops_per_s")));
  t.true(errors.some((e) => e.includes("missing openssl")));
  t.true(errors.some((e) => e.includes("unexpected property extra")));
});

test("rows carry the required fields, ratios against the first target, and unsupported reasons", async (t) => {
  const r = await tinyReport();
  const gcm = r.rows.find((row) => row.target === "emulator" && row.op === "aes-gcm/encrypt" && row.bytes === 1024)!;
  t.is(gcm.status, "ok");
  t.is(gcm.ops, 3);
  t.is(gcm.threads, 1);
  t.is(gcm.ratio_vs, "native");
  t.true(gcm.ops_per_s > 0 && gcm.mb_per_s > 0 && gcm.p50_us! > 0 && gcm.p99_us! >= gcm.p50_us!);
  t.is(r.rows.find((row) => row.target === "native" && row.mech === "find")!.status, "unsupported");
  t.is(r.rows.find((row) => row.target === "emulator" && row.mech === "aes-gcm-token-iv")!.status, "unsupported");
  t.is(r.rows.find((row) => row.target === "emulator" && row.mech === "find")!.status, "ok");
  t.truthy(r.targets.find((x) => x.name === "emulator")!.module);
  t.truthy(r.machine.node && r.machine.openssl && r.machine.cores >= 1);
});

test("the SVG is well-formed XML with one throughput series per target per panel", async (t) => {
  const r = await tinyReport();
  const elements = parseXml(renderChart(r));
  t.is(elements[0]!.name, "svg");
  const series = elements.filter((e) => e.name === "g" && e.attributes["class"] === "series");
  const targets = new Set(series.map((e) => e.attributes["data-target"]));
  t.deepEqual([...targets].sort(), [...TARGETS].sort());
  const panels = elements.filter((e) => e.name === "text" && e.attributes["class"] === "title").length;
  t.true(panels >= 2);
  // aes-gcm encrypt and decrypt, hmac sign and verify, random: 5 panels × 3 targets
  t.is(series.length, 15);
  t.true(elements.some((e) => e.name === "g" && e.attributes["id"] === "latency"));
  t.throws(() => parseXml("<svg><g></svg>"));
  t.throws(() => parseXml('<svg a="1" a="2"/>'));
});

test("the table has a line per row and ratio columns", async (t) => {
  const r = await tinyReport();
  const table = renderTable(r);
  t.regex(table, /× native/u);
  t.is(table.split("\n").filter((l) => /^(native|node-crypto|emulator) /u.test(l)).length, r.rows.length);
  t.regex(table, /UNSUPPORTED/u);
});

test("a target that cannot be opened stops the run before any other target is measured", async (t) => {
  const ticks: string[] = [];
  const progress: Progress = { start: () => ticks.push("start"), tick: (label) => ticks.push(label), stop: () => ticks.push("stop") };
  const error = await t.throwsAsync(runBench({
    // The bad module comes last: found only after the first target's trials, the mistake would cost their whole run.
    targets: [targetSpec("native", undefined, undefined), targetSpec("/nonexistent/libnothing.so", "bench", "1234")],
    mechs: parseMechs("random"),
    sizes: [64],
    threads: 1,
    timing: { iterations: 1, durationS: 0, warmupS: 0 },
    compare: true,
  }, progress), { instanceOf: BenchError });
  t.regex(error!.message, /no PKCS#11 module at \/nonexistent\/libnothing\.so/u);
  t.deepEqual(ticks, [], "no trial started");
});
