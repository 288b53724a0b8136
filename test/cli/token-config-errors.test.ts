/**
 * A first-time integrator's token mistakes (README, "Using SoftHSMv2 or a vendor HSM"): a wrong
 * module path, a missing PIN. Each is a configuration error the user can act on, so `hsmkit serve`,
 * `init` and direct-mode commands must say what is wrong in one line and exit 1, never dump a
 * stack — whether the KMS runs in its own thread (the default) or not. None of this needs a real
 * module: the mistakes are caught before any is loaded.
 */
import test from "ava";
import type { ExecutionContext } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hsmkit as runCli, type Run } from "./run-cli.js";

/** The CLI with `env`; port 0, so that no test waits on another's listener. */
const hsmkit = (args: string[], env: Record<string, string>): Promise<Run> => runCli(args, { env: { HSMKIT_PORT: "0", ...env } });

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-token-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One `hsmkit: …` message naming `expected`, exit 1, no stack frames, no PIN. */
function refused(t: ExecutionContext, run: Run, expected: RegExp): void {
  t.is(run.code, 1, run.stderr);
  t.regex(run.stderr, /^hsmkit: /u);
  t.regex(run.stderr, expected);
  t.notRegex(run.stderr, /^\s+at /mu, "no stack trace");
  t.false(run.stderr.includes("31337"), "the PIN never appears");
}

const MISSING_MODULE = "/nonexistent/libpkcs11-missing.so";

for (const thread of ["true", "false"]) {
  test(`serve (kmsThread ${thread}): a wrong module path is one line naming the path`, async (t) => {
    const run = await hsmkit(["serve", "--data", tempDir(t)], {
      HSMKIT_TOKEN_MODULE: MISSING_MODULE, HSMKIT_TOKEN_PIN: "31337", HSMKIT_SERVER_KMS_THREAD: thread,
    });
    refused(t, run, new RegExp(MISSING_MODULE.replaceAll(".", "\\."), "u"));
  });

  test(`serve (kmsThread ${thread}): a module without a PIN is one line saying how to set it`, async (t) => {
    const run = await hsmkit(["serve", "--data", tempDir(t)], { HSMKIT_TOKEN_MODULE: MISSING_MODULE, HSMKIT_SERVER_KMS_THREAD: thread });
    refused(t, run, /HSMKIT_TOKEN_PIN/u);
    // serve, init and the KMS commands have no --pin option: naming one sent users to a usage error.
    t.notRegex(run.stderr, /--pin\b/u);
  });
}

test("init: a wrong module path is one line naming the path", async (t) => {
  const run = await hsmkit(["init", "--data", join(tempDir(t), "data")], { HSMKIT_TOKEN_MODULE: MISSING_MODULE, HSMKIT_TOKEN_PIN: "31337" });
  refused(t, run, /libpkcs11-missing\.so/u);
});
