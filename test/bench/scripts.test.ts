// The npm run bench* scripts as child processes. Bad flags are refused before any work: exit 2 with
// the flag named, nothing measured (accepted, each would run for minutes; the timeout only bounds a
// wrong acceptance). bench/server.ts runs a tiny sweep: its table is checked against its own JSON,
// never against a speed.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface Run { code: number | null; stdout: string; stderr: string }

function script(name: string, args: string[], timeout = 20_000): Promise<Run> {
  const file = fileURLToPath(new URL(`../../bench/${name}.js`, import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, ["--no-warnings", file, ...args], { timeout, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr });
    });
  });
}

for (const [flag, value, message] of [
  ["--keys", "5", /--keys must be an integer 11\.\.10000000/u],
  ["--keys", "100k", /--keys must be an integer 11\.\.10000000/u],
  ["--writer", "threads", /--writer must be worker, inline or auto/u],
  ["--key-cache", "0", /--key-cache must be an integer 1\.\.10000000/u],
] as const) {
  test(`bench/kms.ts ${flag} ${value}: exit 2 before the Kms is set up`, async (t) => {
    const run = await script("kms", ["--quick", flag, value]);
    t.is(run.code, 2);
    t.regex(run.stderr, message);
    t.is(run.stdout, "", "nothing measured");
  });
}

for (const sizes of ["64,1k", "64.5", "0x40"]) {
  test(`bench/core.ts --sizes ${sizes}: not a list of byte counts, exit 2`, async (t) => {
    const run = await script("core", ["--quick", "--sizes", sizes]);
    t.is(run.code, 2);
    t.regex(run.stderr, /--sizes must be byte counts/u);
    t.is(run.stdout, "");
  });
}

test("bench/server.ts: the KMS line of a sweep shows its ratio to the bare route at the same connection count", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-bench-server-test-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, "server.json");
  // Fresh signing: no extra fresh-signing run after the sweep. A fraction of a second per run; no figure is asserted.
  const run = await script("server", ["--duration", "0.3", "--warmup", "0", "--connections", "2", "--signing", "fresh", "--json", json], 120_000);
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(readFileSync(json, "utf8")) as { runs: Array<{ server: string; connections: number; row: { ops_per_s: number } }> };
  const kms = report.runs.find((r) => r.server === "kms" && r.connections === 2)!;
  const bare = report.runs.find((r) => r.server === "bare" && r.connections === 2)!;
  const header = run.stdout.split("\n").find((l) => l.startsWith("server "))!.split(/\s{2,}/u);
  const line = run.stdout.split("\n").find((l) => /^kms\s+2\s/u.test(l))!.split(/\s{2,}/u);
  t.is(line.length, header.length, "every column filled");
  t.is(line[header.indexOf("× bare")], (kms.row.ops_per_s / bare.row.ops_per_s).toFixed(2));
});
