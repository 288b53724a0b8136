// `hsmkit bench` run as a user runs it (child processes), with tiny iteration counts; never
// asserts speed. SoftHSMv2 cases get a fresh token in a temporary directory and are skipped when
// SoftHSMv2 is not installed.
import test from "ava";
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { validate } from "../../src/bench/schema.js";
import type { BenchReport } from "../../src/bench/index.js";
import { SOFTHSM } from "../helpers/softhsm.js";
import { parseXml } from "./xml.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const TINY = ["--iterations", "3", "--warmup", "0", "--sizes", "64"];

interface Run { code: number; stdout: string; stderr: string }

function bench(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    delete clean["HSMKIT_PIN"];
    execFile(process.execPath, ["--no-warnings", CLI, "bench", ...args], { env: { ...clean, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-bench-test-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("a module path that does not exist: clear message, exit 1", async (t) => {
  const run = await bench(["--module", "/nonexistent/libnothing.so", "--pin", "1", ...TINY]);
  t.is(run.code, 1);
  t.regex(run.stderr, /no PKCS#11 module at \/nonexistent\/libnothing\.so/u);
});

test("a file that is not a PKCS#11 module: clear message, exit 1", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "fake.so"), "not a library");
  const run = await bench(["--module", join(dir, "fake.so"), "--pin", "1", ...TINY]);
  t.is(run.code, 1);
  t.regex(run.stderr, /could not load .*fake\.so as a PKCS#11 module/u);
});

test("an unknown mechanism or bad flags: exit 2", async (t) => {
  const unknown = await bench(["--mech", "aes-xts", ...TINY]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown mechanism "aes-xts"; choose from aes-gcm/u);
  const sizes = await bench(["--sizes", "big", "--iterations", "1"]);
  t.is(sizes.code, 2);
  const threads = await bench(["--threads", "0", "--iterations", "1"]);
  t.is(threads.code, 2);
});

test("a --json or --chart file that cannot be written is refused before the run (exit 2, no stack), not after it", async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [["--json", join(dir, "missing", "report.json")], /--json \S+report\.json cannot be written: the directory \S+missing does not exist/u],
    [["--chart", dir], /--chart \S+ cannot be written: it is a directory/u],
  ];
  for (const [args, pattern] of cases) {
    const run = await bench(["--mech", "sha256", ...args, ...TINY]);
    t.is(run.code, 2, run.stderr);
    t.regex(run.stderr, pattern);
    t.notRegex(run.stderr, /\n\s+at /u, "no stack");
    t.is(run.stdout, "", "nothing was measured");
  }
});

test("a mechanism no target supports: the table says why, exit 3", async (t) => {
  const run = await bench(["--module", "emulator", "--mech", "aes-gcm-token-iv", ...TINY]);
  t.is(run.code, 3);
  t.regex(run.stdout, /UNSUPPORTED/u);
  t.regex(run.stderr, /unsupported mechanism aes-gcm-token-iv: emulator: .*does not generate GCM IVs/u);
});

test("--mech all is no request for a mechanism the targets lack: those are reported, and the run succeeds", async (t) => {
  const run = await bench(["--module", "native", "--mech", "all", "--sizes", "64", ...TINY]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /UNSUPPORTED/u);
  t.regex(run.stderr, /unsupported mechanism aes-gcm-token-iv: native: /u);
});

test("emulator with two threads: a row per trial, a per-thread entry per thread, JSON valid", async (t) => {
  const dir = tempDir(t);
  const json = join(dir, "out.json");
  const run = await bench(["--module", "emulator", "--mech", "aes-gcm,random", "--threads", "2", "--json", json, ...TINY]);
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
  t.deepEqual(validate(report), []);
  t.is(report.rows.length, 3);
  for (const row of report.rows) {
    t.is(row.threads, 2);
    t.is(row.per_thread.length, 2);
    t.is(row.ops, 6);
  }
  t.regex(report.targets[0]!.note!, /own Emulator instance/u);
});

const softhsm = SOFTHSM.installation === undefined ? test.skip : test.serial;

function softHsmToken(t: { teardown(fn: () => void): void }): { env: Record<string, string>; library: string } {
  const dir = tempDir(t);
  mkdirSync(join(dir, "tokens"));
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  const env = { SOFTHSM2_CONF: conf };
  execFileSync(SOFTHSM.installation!.util, ["--init-token", "--free", "--label", "benchtest", "--pin", "1234", "--so-pin", "12345678"], { env: { ...process.env, ...env }, stdio: "ignore" });
  return { env, library: SOFTHSM.installation!.library };
}

softhsm(`SoftHSMv2: a wrong PIN gives a clear message and exit 1${SOFTHSM.missing ? ` (skipped: ${SOFTHSM.missing})` : ""}`, async (t) => {
  const { env, library } = softHsmToken(t);
  const run = await bench(["--module", library, "--token", "benchtest", "--pin", "0000", ...TINY], env);
  t.is(run.code, 1);
  t.regex(run.stderr, /wrong PIN for token "benchtest" \(CKR_PIN_INCORRECT\)/u);
  const missing = await bench(["--module", library, "--token", "benchtest", ...TINY], env);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /needs a user PIN: pass --pin PIN or set HSMKIT_PIN/u);
  const label = await bench(["--module", library, "--token", "nope", ...TINY], { ...env, HSMKIT_PIN: "1234" });
  t.is(label.code, 1);
  t.regex(label.stderr, /no token labelled "nope" \(tokens present: "benchtest"/u);
});

softhsm(`SoftHSMv2 without --token: its one initialized token is used, not refused as ambiguous with the spare uninitialized slot${SOFTHSM.missing ? ` (skipped: ${SOFTHSM.missing})` : ""}`, async (t) => {
  const { env, library } = softHsmToken(t);
  const dir = tempDir(t);
  const json = join(dir, "out.json");
  const run = await bench(["--module", library, "--mech", "random", "--json", json, ...TINY], { ...env, HSMKIT_PIN: "1234" });
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
  t.is(report.targets[0]!.token!.label, "benchtest");
  t.is(report.rows[0]!.status, "ok");
});

softhsm(`SoftHSMv2, two threads: separate sessions, module facts, valid JSON and SVG${SOFTHSM.missing ? ` (skipped: ${SOFTHSM.missing})` : ""}`, async (t) => {
  const { env, library } = softHsmToken(t);
  const dir = tempDir(t);
  const json = join(dir, "out.json");
  const svg = join(dir, "out.svg");
  const run = await bench(["--module", library, "--token", "benchtest", "--mech", "aes-gcm", "--threads", "2",
    "--json", json, "--chart", svg, "--compare", "--iterations", "2", "--warmup", "0", "--sizes", "64,1024"], { ...env, HSMKIT_PIN: "1234" });
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(json, "utf8")) as BenchReport;
  t.deepEqual(validate(report), []);
  t.deepEqual(report.config.targets, ["softhsm2", "native", "node-crypto", "emulator"]);
  t.is(report.targets[0]!.module!.manufacturer, "SoftHSM");
  t.is(report.targets[0]!.token!.label, "benchtest");
  for (const row of report.rows.filter((r) => r.target === "softhsm2")) {
    t.is(row.status, "ok");
    const sessions = row.per_thread.map((p) => p.session);
    t.is(sessions.length, 2);
    t.true(sessions.every((s) => typeof s === "string"));
    t.is(new Set(sessions).size, 2, "each thread has its own session");
  }
  t.true(report.rows.filter((r) => r.target === "emulator").every((r) => r.ratio_vs === "softhsm2"));
  const series = parseXml(readFileSync(svg, "utf8")).filter((e) => e.name === "g" && e.attributes["class"] === "series");
  t.deepEqual([...new Set(series.map((e) => e.attributes["data-target"]))].sort(), ["emulator", "native", "node-crypto", "softhsm2"]);
});

/** util-linux script(1): runs the CLI on a pseudo-terminal, so that the progress bar is drawn, and records what it wrote. */
const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => existsSync(p));
const onTerminal = SCRIPT === undefined ? test.skip : test;

/** Runs the CLI on a pseudo-terminal until it has drawn `shown`, then types Ctrl-C; what it wrote to the terminal. */
async function interruptOnTerminal(t: { teardown(fn: () => void): void }, args: string[], shown: string): Promise<{ drawn: boolean; out: string }> {
  const log = join(tempDir(t), "tty.log");
  const command = [process.execPath, "--no-warnings", CLI, "bench", ...args].join(" ");
  const child = spawn(SCRIPT!, ["-qfc", command, log], { stdio: ["pipe", "ignore", "ignore"] });
  t.teardown(() => { if (child.exitCode === null) child.kill("SIGKILL"); });
  const recorded = (): string => (existsSync(log) ? readFileSync(log, "latin1") : "");
  for (let waited = 0; !recorded().includes(shown) && waited < 20_000; waited += 50) await sleep(50);
  const drawn = recorded().includes(shown);
  child.stdin.write("\x03");
  await once(child, "exit");
  return { drawn, out: recorded() };
}

const skippedWithoutScript = SCRIPT === undefined ? " (skipped: script(1) not installed)" : "";
// The last trial lasts 600 s: only Ctrl-C ends these runs.
const LONG = ["--module", "native", "--sizes", "64", "--warmup", "0", "--duration", "600"];

onTerminal(`Ctrl-C during a run on a terminal leaves the cursor and line wrapping as they were${skippedWithoutScript}`, async (t) => {
  const { drawn, out } = await interruptOnTerminal(t, [...LONG, "--mech", "random"], "0/1");
  t.true(drawn, "the progress bar was drawn");
  const count = (sequence: string): number => out.split(sequence).length - 1;
  t.is(count("\x1b[?25l"), count("\x1b[?25h"), "every hidden cursor shown again");
  t.is(count("\x1b[?7l"), count("\x1b[?7h"), "line wrapping restored");
});

onTerminal(`the progress bar names the trial running now, even after trials that ended at once${skippedWithoutScript}`, async (t) => {
  // aes-gcm-token-iv is unsupported on native: its two trials end in microseconds, then random runs.
  const { drawn, out } = await interruptOnTerminal(t, [...LONG, "--mech", "aes-gcm-token-iv,random"], "2/3 native random/generate");
  t.true(drawn, out.slice(-300));
});
