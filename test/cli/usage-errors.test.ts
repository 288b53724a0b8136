// What a command line the CLI cannot run looks like (exit 2, one line and the --help hint, never a
// stack), next to failures of a command that ran (exit 1, what to do next): options that exclude
// each other, malformed values, a missing input file, input over encrypt-data's limit, and a PIN
// file other users may read.
import test from "ava";
import type { ExecutionContext } from "ava";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KmsCallError } from "../../src/cli/kms-client.js";
import { callErrorMessage } from "../../src/cli/output.js";
import { hsmkit, type Run } from "./run-cli.js";

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-usage-errors-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function noStack(t: ExecutionContext, run: Run, what: string): void {
  t.notRegex(run.stderr, /^\s+at /mu, `${what}: no stack trace`);
}

test("mistakes that only the command itself can see exit 2 with one line and the --help hint, before opening anything", async (t) => {
  const dir = tempDir(t);
  const missing = join(dir, "missing.txt");
  // No data directory exists: each must be refused for its command line, not for that.
  const d = ["--data", join(dir, "data")];
  const cases: Array<[string[], RegExp]> = [
    [["encrypt", "--key", "k", "--text", "a", "--in", missing, ...d], /give --text or --in, not both/u],
    [["decrypt", "--blob", "a", "--in", missing, ...d], /give --blob or --in, not both/u],
    [["datakey", "--key", "k", "--bits", "128", "--spec", "AES_256", ...d], /give --bits or --spec, not both/u],
    [["encrypt", "--key", "k", "--text", "a", "--context", "tenant", ...d], /--context takes key=value, not "tenant"/u],
    [["keys", "rotate", "k", "--enable", "--disable", ...d], /give one of --enable/u],
    [["keys", "tag", "add", "k", "team", ...d], /tags are key=value, not "team"/u],
    [["encrypt", "--key", "k", "--in", missing, ...d], /cannot read .*missing\.txt: ENOENT/u],
    [["users", "create", "bob", "--roles", "bogus", ...d], /unknown role bogus: choose from key_admin/u],
    [["users", "create", "bad name!", ...d], /the name must be 1-64/u],
    [["grants", "list", "k", "--retirable", ...d], /give a key, or --retirable \(not both\)/u],
    [["token", "info", "--slot", "0", "--label", "x", "--dir", join(dir, "tokens")], /give one of --slot, --label, --serial/u],
  ];
  const runs: Run[] = [];
  for (let i = 0; i < cases.length; i += 4) runs.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => hsmkit(args)))));
  cases.forEach(([args, expected], i) => {
    const run = runs[i]!;
    const what = args.join(" ");
    t.is(run.code, 2, `${what}: ${run.stderr}`);
    t.is(run.stdout, "", what);
    t.regex(run.stderr, expected, what);
    t.regex(run.stderr, /\(run with --help for usage\)\n$/u, what);
    noStack(t, run, what);
  });
});

test("encrypt refuses more than 4096 bytes itself, saying the limit and the way around it; decrypt a blob no encrypt could have made", async (t) => {
  const dir = tempDir(t);
  // Larger than a server's 64 KiB body limit, whose bare KMS.0203 said neither.
  const plaintext = "a".repeat(70_000);
  const encrypt = await hsmkit(["encrypt", "--key", "k", "--data", join(dir, "data")], { input: plaintext });
  t.is(encrypt.code, 1, encrypt.stderr);
  t.is(encrypt.stderr, "hsmkit: the plaintext is 70000 bytes, and encrypt takes at most 4096: for more, encrypt it locally under a data key " +
    "and keep the sealed key beside it (hsmkit datakey --help)\n");
  const blob = join(dir, "big.kms");
  writeFileSync(blob, "A".repeat(70_000) + "\n");
  const decrypt = await hsmkit(["decrypt", "--in", blob, "--data", join(dir, "data")]);
  t.is(decrypt.code, 1, decrypt.stderr);
  t.regex(decrypt.stderr, /^hsmkit: the ciphertext blob is 70000 characters, and those of hsmkit encrypt are at most 5532 \(base64\)/u);
});

test("a request over the server's body limit (KMS.0203) says which limit and what to do", (t) => {
  const message = callErrorMessage(new KmsCallError("KMS.0203", "Request message too long.", 400, "r-1"));
  t.regex(message, /^KMS\.0203 Request message too long\. \(request r-1\)\n {2}.*server\.bodyLimitBytes.*hsmkit datakey --help/su);
});

if (process.platform !== "win32") {
  test("init with a PIN file other users may read warns on stderr with the file, its mode and chmod 600, never the PIN; with 0600 it does not", async (t) => {
    const dir = tempDir(t);
    const pinFile = join(dir, "pin");
    writeFileSync(pinFile, "4711-secret\r\n");
    chmodSync(pinFile, 0o644);
    const env = { HSMKIT_TOKEN_PIN_FILE: pinFile };
    const loose = await hsmkit(["init", "--data", join(dir, "data")], { env });
    t.is(loose.code, 0, loose.stderr);
    t.true(loose.stderr.includes(`hsmkit: warning: token.pinFile ${pinFile} is open to every user of this machine (mode 0644)`), loose.stderr);
    t.true(loose.stderr.includes(`chmod 600 ${pinFile}`), loose.stderr);
    const config = await hsmkit(["config", "--json"], { env });
    t.is(config.code, 0, config.stderr);
    t.regex(config.stderr, /mode 0644/u, "`hsmkit config` shows it too");
    for (const run of [loose, config]) t.false((run.stdout + run.stderr).includes("4711-secret"), "the PIN never appears");

    chmodSync(pinFile, 0o600);
    // The token was created with the file's PIN (its CRLF not part of it): a direct command opens it.
    const strict = await hsmkit(["keys", "list", "--data", join(dir, "data")], { env });
    t.is(strict.code, 0, strict.stderr);
    t.is(strict.stderr, "");
  });
}
