/**
 * A data directory's credentials.json that exists but cannot be used — damaged (not JSON, `null`,
 * fields missing) or open to other users (a copy restored without -p, a chmod) — is the operator's
 * to fix: `hsmkit init`, `serve` (whether the KMS runs in its own thread or not) and direct-mode
 * commands say so in one line naming the file and exit 1, never with a stack trace, and never
 * quoting the file (it holds the SK).
 */
import test from "ava";
import type { ExecutionContext } from "ava";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hsmkit, type Run } from "./run-cli.js";

/** A data directory `hsmkit init` made, shared by the tests: each damages a copy of its credentials file. */
const base = mkdtempSync(join(tmpdir(), "hsmkit-credentials-errors-"));
const data = join(base, "data");
const credentialsFile = join(data, "credentials.json");
let original = "";

test.before(async () => {
  const init = await hsmkit(["init", "--data", data]);
  if (init.code !== 0) throw new Error(`init: ${init.stderr}`);
  original = readFileSync(credentialsFile, "utf8");
});

test.after.always(() => rmSync(base, { recursive: true, force: true }));

/** A fresh data directory whose credentials.json is `content` with `mode`; the rest is `data`'s. */
function damaged(t: ExecutionContext, content: string, mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-credentials-copy-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, "data");
  cpSync(data, copy, { recursive: true });
  writeFileSync(join(copy, "credentials.json"), content);
  chmodSync(join(copy, "credentials.json"), mode);
  return copy;
}

function refused(t: ExecutionContext, run: Run, file: string, expected: RegExp, what: string): void {
  t.is(run.code, 1, `${what}: ${run.stderr}`);
  t.is(run.stdout, "", what);
  t.true(run.stderr.startsWith(`hsmkit: ${file} `), `${what}: ${run.stderr}`);
  t.regex(run.stderr, expected, what);
  t.notRegex(run.stderr, /^\s+at /mu, `${what}: no stack trace`);
  const sk = (JSON.parse(original) as { sk: string }).sk;
  t.false(run.stderr.includes(sk), `${what}: the SK never appears`);
}

const CASES: ReadonlyArray<[string, (sk: string) => string, number, RegExp]> = [
  ["not JSON", (sk) => `{"sk": "${sk}"`, 0o600, /is not valid JSON/u],
  ["null", () => "null\n", 0o600, /is not a credentials file hsmkit wrote/u],
  ["open to other users", () => original, 0o644, /readable by others \(mode 644\); run chmod 600/u],
];

for (const [name, content, mode, expected] of CASES) {
  test(`a credentials.json that is ${name}: init, serve and a direct-mode command say so in one line`, async (t) => {
    const sk = (JSON.parse(original) as { sk: string }).sk;
    const copy = damaged(t, content(sk), mode);
    const file = join(copy, "credentials.json");
    const commands: Array<[string[], Record<string, string>]> = [
      [["init", "--data", copy], {}],
      [["keys", "list", "--data", copy], {}],
      [["serve", "--port", "0", "--data", copy], { HSMKIT_SERVER_KMS_THREAD: "true", HSMKIT_LOG_LEVEL: "silent" }],
      [["serve", "--port", "0", "--data", copy], { HSMKIT_SERVER_KMS_THREAD: "false", HSMKIT_LOG_LEVEL: "silent" }],
    ];
    // One at a time: they share the data directory, and each takes its lock.
    for (const [args, env] of commands) {
      refused(t, await hsmkit(args, { env }), file, expected, `${args.join(" ")} ${JSON.stringify(env)}`);
    }
  });
}
