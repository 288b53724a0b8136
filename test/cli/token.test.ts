// `hsmkit token …` run as a user runs it: a child process on a temporary token directory.
import test from "ava";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExecutionContext } from "ava";
import { Emulator } from "../../emulator/emulator.js";
import { pkcs11 as P } from "../../emulator/pkcs11.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const KDF = ["--kdf", "16,1,1"];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hsmkit(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    delete clean["HSMKIT_PIN"];
    delete clean["HSMKIT_SO_PIN"];
    delete clean["HSMKIT_TOKEN_DIR"];
    execFile(process.execPath, ["--no-warnings", CLI, ...args], { env: { ...clean, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function init(t: ExecutionContext, dir: string, label: string, extra: string[] = []): Promise<{ slot: number; serial: string }> {
  const run = await hsmkit(["token", "init", "--dir", dir, "--label", label, "--so-pin", "so-pin-1", "--pin", "user-pin-1", "--json", ...KDF, ...extra]);
  t.is(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as { slot: number; serial: string };
}

test("--help on every command", async (t) => {
  for (const command of [[], ["init"], ["list"], ["info"], ["objects"], ["delete"]]) {
    const run = await hsmkit(["token", ...command, "--help"]);
    t.is(run.code, 0, run.stderr);
    t.true(run.stdout.startsWith(`Usage: hsmkit token${command.length > 0 ? " " + command[0] : ""} `), run.stdout);
    if (command.length > 0) t.regex(run.stdout, /--dir <path>[\s\S]*--json/);
  }
  t.regex((await hsmkit(["--help"])).stdout, /token\s+manage emulator token directories/);
});

test("init picks the first free slot; list and info show the tokens, for people and as JSON", async (t) => {
  const dir = tempDir(t);
  const first = await init(t, dir, "alpha");
  const second = await init(t, dir, "beta");
  t.is(first.slot, 0);
  t.is(second.slot, 1);
  t.regex(first.serial, /^[0-9a-f]{16}$/);
  const list = await hsmkit(["token", "list", "--dir", dir]);
  t.is(list.code, 0);
  t.regex(list.stdout, /not in use/);
  t.regex(list.stdout, new RegExp(`^0\\s+${first.serial}\\s+alpha\\s+0\\s+set\\s+set$`, "m"));
  t.regex(list.stdout, new RegExp(`^1\\s+${second.serial}\\s+beta\\s+0\\s+set\\s+set$`, "m"));
  const json = JSON.parse((await hsmkit(["token", "list", "--dir", dir, "--json"])).stdout) as { tokens: Array<{ label: string; slot: number }> };
  t.deepEqual(json.tokens.map((token) => [token.slot, token.label]), [[0, "alpha"], [1, "beta"]]);
  const info = await hsmkit(["token", "info", "--dir", dir, "--serial", second.serial]);
  t.is(info.code, 0, info.stderr);
  t.regex(info.stdout, /Label:\s+beta/);
  t.regex(info.stdout, /User PIN:\s+set \(scrypt N=16, r=1, p=1\)/);
  const infoJson = JSON.parse((await hsmkit(["token", "info", "--dir", dir, "--label", "alpha", "--json"])).stdout) as { slot: number; objectFiles: number };
  t.is(infoJson.slot, 0);
  t.is(infoJson.objectFiles, 0);
  const ambiguous = await hsmkit(["token", "info", "--dir", dir]);
  t.is(ambiguous.code, 1);
  t.regex(ambiguous.stderr, /several tokens/);
});

test("PINs come from the environment; init refuses an initialized slot unless --force with its SO PIN", async (t) => {
  const dir = tempDir(t);
  const env = { HSMKIT_SO_PIN: "so-from-env", HSMKIT_PIN: "user-from-env" };
  const run = await hsmkit(["token", "init", "--dir", dir, "--label", "env", "--slot", "3", ...KDF], env);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /initialized in slot 3/);
  const refused = await hsmkit(["token", "init", "--dir", dir, "--label", "again", "--slot", "3", ...KDF], env);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /slot 3 already holds token "env".*--force/);
  const wrongSo = await hsmkit(["token", "init", "--dir", dir, "--label", "again", "--slot", "3", "--force", "--so-pin", "not-the-so", ...KDF], env);
  t.is(wrongSo.code, 1);
  t.regex(wrongSo.stderr, /C_InitToken failed: CKR_PIN_INCORRECT/);
  const forced = await hsmkit(["token", "init", "--dir", dir, "--label", "again", "--slot", "3", "--force", ...KDF], env);
  t.is(forced.code, 0, forced.stderr);
  const objects = await hsmkit(["token", "objects", "--dir", dir, "--slot", "3"], { HSMKIT_PIN: "user-from-env" });
  t.is(objects.code, 0, objects.stderr);
  t.regex(objects.stdout, /Token "again" \(slot 3, serial [0-9a-f]{16}\): 0 objects/);
  const noPin = await hsmkit(["token", "objects", "--dir", dir, "--slot", "3"]);
  t.is(noPin.code, 1);
  t.regex(noPin.stderr, /PIN is needed/);
});

test("objects lists handle, class, key type, label, id and flags after a login — never a value; a wrong PIN is counted", async (t) => {
  const dir = tempDir(t);
  await init(t, dir, "keys");
  const value = randomBytes(32);
  {
    const emulator = new Emulator({ tokenDir: dir });
    emulator.C_Initialize();
    const session = emulator.C_OpenSession(emulator.C_GetSlotList()[0]!, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    emulator.C_Login(session, P.CKU_USER, "user-pin-1");
    emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: true },
      { type: P.CKA_VALUE, value }, { type: P.CKA_LABEL, value: "root" }, { type: P.CKA_ID, value: Buffer.from("0102", "hex") },
      { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true },
      { type: P.CKA_ENCRYPT, value: false }, { type: P.CKA_DECRYPT, value: false }, { type: P.CKA_SIGN, value: false }, { type: P.CKA_VERIFY, value: false },
    ]);
    emulator.C_CreateObject(session, [
      { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_LABEL, value: "note" },
      { type: P.CKA_VALUE, value: Buffer.from("secret note") },
    ]);
    emulator.close();
  }
  const run = await hsmkit(["token", "objects", "--dir", dir, "--label", "keys", "--pin", "user-pin-1"]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /2 objects/);
  t.regex(run.stdout, /^\d+\s+CKO_SECRET_KEY\s+CKK_AES\s+256\s+root\s+0102\s+token,private,extractable,modifiable,wrap,unwrap$/m);
  t.regex(run.stdout, /^\d+\s+CKO_DATA\s+note\s+token,private,modifiable$/m);
  const json = JSON.parse((await hsmkit(["token", "objects", "--dir", dir, "--json"], { HSMKIT_PIN: "user-pin-1" })).stdout) as {
    objects: Array<{ class: string; keyType: string | null; label: string; id: string; bits: number | null; flags: string[] }>;
  };
  t.deepEqual(json.objects.map((o) => [o.class, o.keyType, o.label, o.id, o.bits]), [["CKO_SECRET_KEY", "CKK_AES", "root", "0102", 256], ["CKO_DATA", null, "note", "", null]]);
  for (const output of [run.stdout, JSON.stringify(json)]) {
    t.false(output.includes(value.toString("hex")) || output.includes(value.toString("base64")), "a key value was printed");
    t.false(output.includes("secret note"));
  }
  const wrong = await hsmkit(["token", "objects", "--dir", dir, "--pin", "not-the-pin"]);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /wrong PIN/);
  t.regex((await hsmkit(["token", "info", "--dir", dir])).stdout, /User PIN:\s+set, 1 failed attempt /);
});

test("a directory in use is refused with the owner named; list and info still read it", async (t) => {
  const dir = tempDir(t);
  await init(t, dir, "busy");
  const emulator = new Emulator({ tokenDir: dir });
  t.teardown(() => emulator.close());
  const objects = await hsmkit(["token", "objects", "--dir", dir, "--pin", "user-pin-1"]);
  t.is(objects.code, 1);
  t.regex(objects.stderr, new RegExp(`hsmkit: token directory .* is in use by process ${process.pid} on host `));
  const removal = await hsmkit(["token", "delete", "--dir", dir, "--label", "busy"]);
  t.is(removal.code, 1);
  t.regex(removal.stderr, /in use by process/);
  const list = await hsmkit(["token", "list", "--dir", dir]);
  t.is(list.code, 0);
  t.regex(list.stdout, new RegExp(`in use by process ${process.pid}`));
  t.regex(list.stdout, /busy/);
});

test("delete by label or by serial removes the token and its files", async (t) => {
  const dir = tempDir(t);
  await init(t, dir, "one");
  const two = await init(t, dir, "two");
  const byLabel = await hsmkit(["token", "delete", "--dir", dir, "--label", "one"]);
  t.is(byLabel.code, 0, byLabel.stderr);
  t.regex(byLabel.stdout, /Deleted token "one" \(serial [0-9a-f]{16}\) from slot 0/);
  const bySerial = JSON.parse((await hsmkit(["token", "delete", "--dir", dir, "--serial", two.serial, "--json"])).stdout) as { deleted: { slot: number } };
  t.is(bySerial.deleted.slot, 1);
  const list = await hsmkit(["token", "list", "--dir", dir]);
  t.regex(list.stdout, /No tokens in/);
  const missing = await hsmkit(["token", "delete", "--dir", dir, "--label", "one"]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no initialized token labelled "one"/);
  t.regex((await hsmkit(["token", "list", "--dir", join(dir, "absent")])).stdout, /No token directory at/);
});
