// `hsmkit encrypt | decrypt | datakey | random` as a user runs them (child processes, direct mode on
// a temporary data directory): byte-exact round trips through files, what a plaintext file looks
// like on disk, and which command lines are usage errors.
import test from "ava";
import type { ExecutionContext } from "ava";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hsmkit } from "./run-cli.js";

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-crypto-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("encrypt and decrypt through files give back every byte, a leading byte order mark included; a plaintext --out is 0600 even over an existing 0644 file", async (t) => {
  const dir = tempDir(t);
  const data = join(dir, "data");
  t.is((await hsmkit(["init", "--data", data])).code, 0);
  const created = await hsmkit(["keys", "create", "notes", "--data", data]);
  t.is(created.code, 0, created.stderr);

  const plaintext = Buffer.from("\uFEFFname,amount\r\nalice,1\n", "utf8");
  const input = join(dir, "notes.csv");
  writeFileSync(input, plaintext);
  const blob = join(dir, "notes.kms");
  const encrypted = await hsmkit(["encrypt", "--key", "notes", "--in", input, "--out", blob, "--data", data]);
  t.is(encrypted.code, 0, encrypted.stderr);
  t.regex(encrypted.stdout, new RegExp(`Encrypted ${plaintext.length} bytes`));

  const output = join(dir, "notes.out");
  writeFileSync(output, "a previous, public file\n");
  chmodSync(output, 0o644);
  const decrypted = await hsmkit(["decrypt", "--in", blob, "--out", output, "--data", data]);
  t.is(decrypted.code, 0, decrypted.stderr);
  if (process.platform !== "win32") t.is(statSync(output).mode & 0o777, 0o600);
  t.deepEqual(readFileSync(output), plaintext);
  t.deepEqual(readdirSync(dir).sort(), ["data", "notes.csv", "notes.kms", "notes.out"], "no temporary file is left behind");
});

test("--bits that is not a whole number of bytes is a usage error (exit 2), as one out of range is", async (t) => {
  for (const args of [["datakey", "--key", "k", "--bits", "12"], ["random", "--bits", "12"]]) {
    const run = await hsmkit(args);
    t.is(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    t.regex(run.stderr, /--bits <n>.*multiple of 8/u, args.join(" "));
  }
});
