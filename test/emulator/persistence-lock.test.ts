// One process owns a token directory: a second gets an error naming the owner; a dead owner's
// lock is taken over with a warning; an owner that cannot be checked is never overruled.
import test from "ava";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Emulator } from "../../emulator/emulator.js";
import { TokenDirectoryLockedError } from "../../emulator/store/errors.js";
import { inspectTokenDirectory } from "../../emulator/store/inspect.js";
import { TokenDirectory } from "../../emulator/store/token-directory.js";
import { CHILD_SCRIPT, FAST_KDF, openToken, P, tempDir } from "./persistence-helpers.js";

const child = fileURLToPath(CHILD_SCRIPT);

interface OpenResult {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
  owner?: { pid: number; hostname: string };
}

/** Another process tries to open `dir` and reports what happened. */
function openInChild(dir: string): OpenResult {
  const result = spawnSync(process.execPath, [child, "open", dir], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`child failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as OpenResult;
}

/** A child process that opens `dir` and holds it until killed. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const holder = spawn(process.execPath, [child, "hold", dir], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    holder.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("ready")) resolve();
    });
    holder.on("exit", (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return holder;
}

function killed(process: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    process.once("exit", () => resolve());
    process.kill("SIGKILL");
  });
}

function captureWarnings(t: { teardown(fn: () => void): void }): Array<{ code?: string; message: string }> {
  const warnings: Array<{ code?: string; message: string }> = [];
  const listeners = process.listeners("warning");
  process.removeAllListeners("warning");
  process.on("warning", (warning) => warnings.push(warning as { code?: string; message: string }));
  t.teardown(() => {
    process.removeAllListeners("warning");
    for (const listener of listeners) process.on("warning", listener);
  });
  return warnings;
}

test.serial("a second process is refused with an error naming the owner (this process)", (t) => {
  const dir = tempDir(t);
  const { emulator } = openToken(dir);
  const result = openInChild(dir);
  t.false(result.ok);
  t.is(result.name, "TokenDirectoryLockedError");
  t.is(result.code, "ERR_HSMKIT_TOKEN_DIR_LOCKED");
  t.is(result.owner?.pid, process.pid);
  t.is(result.owner?.hostname, hostname());
  t.regex(result.message!, new RegExp(`in use by process ${process.pid}\\b.* on host ${hostname()}`));
  emulator.close();
  t.deepEqual(openInChild(dir), { ok: true }, "free again after close()");
});

test.serial("a live owner in another process excludes this one; once it is killed, its lock is taken over with a warning", async (t) => {
  const dir = tempDir(t);
  const warnings = captureWarnings(t);
  const holder = await holdInChild(dir);
  const error = t.throws(() => new Emulator({ tokenDir: dir, kdf: FAST_KDF }), { instanceOf: TokenDirectoryLockedError });
  t.is(error!.code, "ERR_HSMKIT_TOKEN_DIR_LOCKED");
  t.is(error!.owner?.pid, holder.pid);
  t.true(error!.message.includes(`process ${holder.pid} on host ${hostname()}`), error!.message);
  const summary = inspectTokenDirectory(dir);
  t.is(summary.owner !== null && summary.owner !== "unreadable" ? summary.owner.pid : -1, holder.pid!, "listing shows the owner without taking the lock");
  await killed(holder);
  t.true(existsSync(join(dir, "lock")), "SIGKILL leaves the lock file behind");
  const emulator = new Emulator({ tokenDir: dir, kdf: FAST_KDF });
  await new Promise((resolve) => setImmediate(resolve));
  const stale = warnings.filter((w) => w.code === "HSMKIT_STALE_LOCK");
  t.is(stale.length, 1);
  t.true(stale[0]!.message.includes(`process ${holder.pid}`) && stale[0]!.message.includes("no longer running"), stale[0]!.message);
  t.is((JSON.parse(readFileSync(join(dir, "lock"), "utf8")) as { pid: number }).pid, process.pid);
  emulator.close();
});

test("a second Emulator in the same process is refused until the first is closed", (t) => {
  const dir = tempDir(t);
  const first = openToken(dir);
  const error = t.throws(() => new Emulator({ tokenDir: dir }), { instanceOf: TokenDirectoryLockedError });
  t.regex(error!.message, /already open in this process.*close\(\)/);
  first.emulator.close();
  const second = openToken(dir);
  second.emulator.close();
});

test("a lock of a process that has exited is taken over (pid gone)", (t) => {
  const dir = tempDir(t);
  const warnings: string[] = [];
  const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const pid = Number(gone.stdout);
  writeFileSync(join(dir, "lock"), JSON.stringify({ pid, hostname: hostname(), thread: 0, since: "2000-01-01T00:00:00.000Z", processStart: null, command: "gone", nonce: "aa" }));
  const directory = TokenDirectory.open(dir, { kdf: FAST_KDF, warn: (message, code) => warnings.push(`${code} ${message}`) });
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, new RegExp(`^HSMKIT_STALE_LOCK .*process ${pid} on host .*no longer running`));
  directory.close();
  t.false(existsSync(join(dir, "lock")));
});

test("a lock whose pid now belongs to a younger process is stale (Linux start times)", (t) => {
  if (!existsSync("/proc/self/stat")) {
    t.pass("no /proc here");
    return;
  }
  const dir = tempDir(t);
  // Our parent process is alive, but it did not start at time 1 tick after boot.
  writeFileSync(join(dir, "lock"), JSON.stringify({ pid: process.ppid, hostname: hostname(), thread: 0, since: "x", processStart: "1", command: "old", nonce: "bb" }));
  const warnings: string[] = [];
  TokenDirectory.open(dir, { warn: (message) => warnings.push(message) }).close();
  t.is(warnings.length, 1);
});

test("an owner on another host is never overruled; the error says what to do", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "lock"), JSON.stringify({ pid: 1, hostname: "elsewhere.example", thread: 0, since: "2024-01-01T00:00:00.000Z", processStart: null, command: "hsmkit serve", nonce: "cc" }));
  const error = t.throws(() => TokenDirectory.open(dir), { instanceOf: TokenDirectoryLockedError });
  t.is(error!.owner?.hostname, "elsewhere.example");
  t.regex(error!.message, /in use by process 1 on host elsewhere\.example since 2024-01-01T00:00:00\.000Z \(hsmkit serve\); if that process is gone, remove the lock file/);
  t.true(existsSync(join(dir, "lock")));
});

test("a lock file that is not ours is reported, not removed", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "lock"), "");
  const error = t.throws(() => TokenDirectory.open(dir), { instanceOf: TokenDirectoryLockedError });
  t.is(error!.owner, null);
  t.regex(error!.message, /cannot be read as an hsmkit lock/);
  t.is(inspectTokenDirectory(dir).owner, "unreadable");
});

test("C_Initialize after close() fails with CKR_DEVICE_ERROR while another owner holds the directory, naming it in a warning", async (t) => {
  const dir = tempDir(t);
  const warnings = captureWarnings(t);
  const { emulator } = openToken(dir);
  emulator.close();
  const other = TokenDirectory.open(dir);
  t.throws(() => emulator.C_Initialize(), { instanceOf: P.Pkcs11Error, code: P.CKR_DEVICE_ERROR });
  other.close();
  emulator.C_Initialize();
  t.true(emulator.C_GetSlotList().length === 1);
  emulator.close();
  await new Promise((resolve) => setImmediate(resolve));
  const locked = warnings.filter((w) => w.code === "HSMKIT_TOKEN_DIR_LOCKED");
  t.is(locked.length, 1);
  t.regex(locked[0]!.message, new RegExp(`in use by process ${process.pid}|already open in this process`));
});

test("the lock is released at process exit (a child that never calls close())", (t) => {
  const dir = tempDir(t);
  const result = spawnSync(process.execPath, ["--input-type=module", "-e",
    `import { Emulator } from ${JSON.stringify(new URL("../../emulator/emulator.js", import.meta.url).href)};
     new Emulator({ tokenDir: ${JSON.stringify(dir)}, kdf: { N: 16, r: 1, p: 1 } }).C_Initialize();`], { encoding: "utf8" });
  t.is(result.status, 0, result.stderr);
  t.false(existsSync(join(dir, "lock")));
});
