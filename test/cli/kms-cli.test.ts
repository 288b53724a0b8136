// The KMS commands (`hsmkit init | keys | encrypt | decrypt | datakey | random | audit | serve`) run
// as a user runs them: child processes on temporary data directories, first working on the data
// directory directly, then against `hsmkit serve` with --endpoint.
import test from "ava";
import type { ExecutionContext } from "ava";
import Database from "better-sqlite3";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withAuditRows } from "../kms/store-helpers.js";
import { CLI, cleanEnv, hsmkit, start, type Run } from "./run-cli.js";


/** `text` matched literally inside a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, "\\$&");
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-kms-cli-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ok(t: ExecutionContext, run: Run, what: string): Run {
  t.is(run.code, 0, `${what}: ${run.stderr}`);
  return run;
}

/** The commands and, for each, options its --help must mention. */
const HELP: ReadonlyArray<[string[], RegExp[]]> = [
  [["serve"], [/--host <host>/, /--port <n>/, /--data <dir>/, /--config <file>/, /SIGTERM/]],
  [["init"], [/--data <dir>/, /--show-secret/]],
  [["config"], [/--config <file>/, /--json/]],
  [["keys"], [/create/, /schedule-deletion/, /tag/]],
  [["users"], [/create/, /list/, /disable/, /add-roles/]],
  [["users", "create"], [/<name>/, /--roles <list>/, /--out <file>/, /--project <id>/]],
  [["keys", "create"], [/<alias>/, /--description/, /--endpoint <url>/, /--credentials <file>/, /--json/]],
  [["keys", "list"], [/--state/, /--limit/, /--endpoint <url>/]],
  [["keys", "describe"], [/<key>/, /--data <dir>/]],
  [["keys", "enable"], [/<key>/, /--endpoint/]],
  [["keys", "disable"], [/<key>/, /--endpoint/]],
  [["keys", "schedule-deletion"], [/--days <n>/, /7-1096/]],
  [["keys", "cancel-deletion"], [/<key>/]],
  [["keys", "rotate"], [/--enable/, /--disable/, /--interval <days>/, /--status/]],
  [["keys", "alias"], [/<new-alias>/]],
  [["keys", "tag"], [/add/, /remove/, /list/]],
  [["keys", "tag", "add"], [/<tag=value\.\.\.>/, /--endpoint/]],
  [["keys", "tag", "remove"], [/<tag\.\.\.>/]],
  [["keys", "tag", "list"], [/<key>/]],
  [["encrypt"], [/--key <key>/, /--text/, /--in <file>/, /--out <file>/, /--context <key=value>/, /--aad/, /--endpoint/]],
  [["decrypt"], [/--blob/, /--in <file>/, /--out <file>/, /--context/]],
  [["datakey"], [/--bits <n>/, /--spec/, /--no-plaintext/, /data key in clear is the point/]],
  [["random"], [/--bits <n>/, /--hex/, /--base64/]],
  [["grants"], [/create/, /revoke/, /retire/]],
  [["grants", "create"], [/--grantee <id>/, /--operations <list>/, /--type/]],
  [["grants", "list"], [/--retirable/, /--limit/]],
  [["grants", "revoke"], [/<grant-id>/]],
  [["grants", "retire"], [/<grant-id>/]],
  [["audit"], [/list/, /verify/, /export/]],
  [["audit", "list"], [/--key <key>/, /--action <action>/, /--since <time>/, /--limit <n>/]],
  [["audit", "verify"], [/--endpoint/, /exit 1 and name the first/]],
  [["audit", "export"], [/--out <file>/, /--since/]],
  [["bench"], [/--module <target>/, /--threads <n>/, /Exit status: .*2 bad flags/, /Examples:\n  hsmkit bench /, /--json report\.json/]],
];

test("--help on every KMS command exits 0 and names its options", async (t) => {
  const runs: Run[] = [];
  // A few at a time: each is a Node process.
  for (let i = 0; i < HELP.length; i += 4) {
    runs.push(...(await Promise.all(HELP.slice(i, i + 4).map(([path]) => hsmkit([...path, "--help"])))));
  }
  HELP.forEach(([path, patterns], i) => {
    const run = runs[i]!;
    t.is(run.code, 0, `${path.join(" ")}: ${run.stderr}`);
    t.true(run.stdout.startsWith(`Usage: hsmkit ${path.join(" ")} `), run.stdout);
    for (const pattern of patterns) t.regex(run.stdout, pattern, path.join(" "));
  });
  // A command line that cannot run exits 2 (a command that ran and failed exits 1), with the hint, on every level.
  const usage: string[][] = [["bogus"], ["keys", "list", "--bogus"], ["keys", "create"], ["keys", "list", "--limit", "abc"], ["token", "list", "--bogus"], ["keys"]];
  const usageRuns = await Promise.all(usage.map((args) => hsmkit(args)));
  usage.forEach((args, i) => {
    t.is(usageRuns[i]!.code, 2, `${args.join(" ")}: ${usageRuns[i]!.stderr}`);
    t.is(usageRuns[i]!.stdout, "", args.join(" "));
    t.regex(usageRuns[i]!.stderr, /--help/u, args.join(" "));
  });
  const top = await hsmkit(["--help"]);
  for (const name of ["status", "token", "bench", "serve", "init", "config", "keys", "encrypt", "decrypt", "datakey", "random", "grants", "audit"]) {
    t.regex(top.stdout, new RegExp(`^  ${name}\\b`, "m"), name);
  }
});

test("direct mode: init, key lifecycle, encrypt/decrypt, datakey, random, audit verify; errors exit 1 with the KMS code", async (t) => {
  const data = join(tempDir(t), "data");
  const d = ["--data", data];

  const init = ok(t, await hsmkit(["init", ...d]), "init");
  const credentialsFile = join(data, "credentials.json");
  t.is(statSync(credentialsFile).mode & 0o777, 0o600);
  const credentials = JSON.parse(readFileSync(credentialsFile, "utf8")) as { project_id: string; ak: string; sk: string };
  t.regex(init.stdout, new RegExp(`Credentials:\\s+${credentialsFile}`));
  t.true(init.stdout.includes(credentials.project_id));
  t.true(init.stdout.includes(credentials.ak));
  t.false(init.stdout.includes(credentials.sk), "the SK is not printed without --show-secret");
  const again = JSON.parse(ok(t, await hsmkit(["init", ...d, "--json", "--show-secret"]), "init again").stdout) as Record<string, unknown>;
  t.like(again, { created: false, project_id: credentials.project_id, ak: credentials.ak, sk: credentials.sk });

  const created = JSON.parse(ok(t, await hsmkit(["keys", "create", "app/data", "--description", "test key", "--json", ...d]), "create").stdout) as {
    key_info: { key_id: string };
  };
  const keyId = created.key_info.key_id;
  t.regex(keyId, /^[0-9a-f-]{36}$/);
  const list = ok(t, await hsmkit(["keys", "list", ...d]), "list");
  t.regex(list.stdout, new RegExp(`^${keyId}\\s+app/data\\s+enabled\\s+\\S+\\s+test key$`, "m"));
  t.regex(ok(t, await hsmkit(["keys", "describe", "app/data", ...d]), "describe").stdout, /State:\s+enabled \(2\)/);

  t.regex(ok(t, await hsmkit(["keys", "disable", "app/data", ...d]), "disable").stdout, /is disabled\./);
  const refused = await hsmkit(["encrypt", "--key", "app/data", "--text", "x", ...d]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^hsmkit: KMS\.0209 The key has been disabled\. \(request [0-9a-f-]{36}\)/);
  t.regex(ok(t, await hsmkit(["keys", "enable", keyId, ...d]), "enable").stdout, /is enabled\./);

  // Plaintext from stdin, bound to a context; the blob decrypts with the same context only.
  const blob = ok(t, await hsmkit(["encrypt", "--key", "app/data", "--context", "tenant=42", ...d], { input: "attack at dawn\n" }), "encrypt").stdout.trim();
  t.regex(blob, /^[A-Za-z0-9+/]+={0,2}$/);
  const plain = ok(t, await hsmkit(["decrypt", "--blob", blob, "--context", "tenant=42", ...d]), "decrypt");
  t.is(plain.stdout, "attack at dawn\n");
  const wrongContext = await hsmkit(["decrypt", "--blob", blob, "--context", "tenant=43", ...d]);
  t.is(wrongContext.code, 1);
  t.regex(wrongContext.stderr, /KMS\.2201/);

  // A rotation leaves older ciphertexts decryptable; tags and grants round out the key's life.
  t.regex(ok(t, await hsmkit(["keys", "rotate", "app/data", ...d]), "rotate").stdout, /version 2 now encrypts/);
  t.is(ok(t, await hsmkit(["decrypt", "--blob", blob, "--context", "tenant=42", ...d]), "decrypt after rotation").stdout, "attack at dawn\n");
  t.regex(ok(t, await hsmkit(["keys", "tag", "add", "app/data", "team=finance", "env=test", ...d]), "tag add").stdout, /^env\s+test$[\s\S]*^team\s+finance$/m);
  const grant = JSON.parse(ok(t, await hsmkit(["grants", "create", "app/data", "--grantee", "0123456789abcdef", "--operations", "encrypt-data,decrypt-data", "--json", ...d]), "grant").stdout) as {
    grant_id: string;
  };
  t.regex(ok(t, await hsmkit(["grants", "list", "app/data", ...d]), "grants list").stdout, new RegExp(`^${grant.grant_id}\\s+0123456789abcdef\\s+user\\s+`, "m"));

  const dataKey = JSON.parse(ok(t, await hsmkit(["datakey", "--key", keyId, "--json", ...d]), "datakey").stdout) as Record<string, string>;
  t.regex(dataKey["plain_text"]!, /^[0-9a-f]{64}$/);
  t.regex(dataKey["cipher_text"]!, /^[0-9a-f]+$/);
  const sealedOnly = JSON.parse(ok(t, await hsmkit(["datakey", "--key", keyId, "--bits", "128", "--no-plaintext", "--json", ...d]), "datakey --no-plaintext").stdout) as Record<string, string>;
  t.false("plain_text" in sealedOnly);
  t.regex(sealedOnly["cipher_text"]!, /^[0-9a-f]+$/);
  t.regex(ok(t, await hsmkit(["datakey", "--key", keyId, ...d]), "datakey text").stdout, /^Data key:\s+[0-9a-f]{64}\b/m);

  t.regex(ok(t, await hsmkit(["random", "--bits", "128", ...d]), "random").stdout, /^[0-9a-f]{32}\n$/);
  t.is(Buffer.from(ok(t, await hsmkit(["random", "--bits", "256", "--base64", ...d]), "random --base64").stdout.trim(), "base64").length, 32);

  const missing = await hsmkit(["keys", "describe", "no-such-key", ...d]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^hsmkit: KMS\.0207 The key does not exist\. \(request [0-9a-f-]{36}\)/);

  const audit = ok(t, await hsmkit(["audit", "list", "--key", "app/data", "--action", "disableKey", ...d]), "audit list");
  t.regex(audit.stdout, new RegExp(`disableKey\\s+success\\s+${keyId}`));
  t.regex(ok(t, await hsmkit(["audit", "verify", ...d]), "audit verify").stdout, /^The audit log is intact: \d+ records?, \d+ MACed checkpoints?\./);

  // Someone with the database file edits an early record: verify names it and exits 1.
  const db = new Database(join(data, "kms", "kms.sqlite"));
  const seq = withAuditRows(db, (rows) => {
    const first = (rows.prepare("SELECT seq FROM audit_log WHERE action = 'createKey'").get() as { seq: number }).seq;
    rows.prepare("UPDATE audit_log SET outcome = 'failure' WHERE seq = ?").run(first);
    return first;
  });
  db.close();
  const broken = await hsmkit(["audit", "verify", ...d]);
  t.is(broken.code, 1, broken.stderr);
  t.regex(broken.stderr, new RegExp(`does NOT verify: record ${seq} is the first that cannot be trusted`));
});

test("direct mode never creates a data directory: a missing or uninitialized one is refused, naming it and `hsmkit init`; init and serve say what to do about a missing parent", async (t) => {
  const dir = tempDir(t);
  const typo = join(dir, "typo");
  const empty = join(dir, "empty");
  mkdirSync(empty);
  const notADirectory = join(dir, "file");
  writeFileSync(notADirectory, "");
  // The KMS commands (one open for all) and the users commands (their own).
  const commands: string[][] = [["keys", "create", "k"], ["encrypt", "--key", "k", "--text", "x"], ["audit", "verify"], ["users", "list"]];
  for (const command of commands) {
    const missing = await hsmkit([...command, "--data", typo]);
    t.is(missing.code, 1, command.join(" "));
    t.is(missing.stdout, "", command.join(" "));
    t.regex(missing.stderr, new RegExp(`^hsmkit: no data directory at ${literal(typo)} .*hsmkit init --data ${literal(typo)}.*--endpoint`, "u"), command.join(" "));
  }
  t.false(existsSync(typo), "nothing was created at the mistyped path");

  const uninitialized = await hsmkit(["keys", "list", "--data", empty]);
  t.is(uninitialized.code, 1);
  t.regex(uninitialized.stderr, new RegExp(`^hsmkit: ${literal(empty)} is not an initialized hsmkit data directory .*hsmkit init --data ${literal(empty)}`, "u"));
  t.deepEqual(readdirSync(empty), [], "the empty directory is left empty");
  const file = await hsmkit(["keys", "list", "--data", notADirectory]);
  t.is(file.code, 1);
  t.regex(file.stderr, /^hsmkit: the data directory \S+ is not a directory/u);

  // Through the environment and the default as well: HSMKIT_DATA, and ./.hsmkit of the working directory.
  const viaEnv = await hsmkit(["keys", "list"], { env: { HSMKIT_DATA: typo } });
  t.is(viaEnv.code, 1);
  t.regex(viaEnv.stderr, /no data directory at .*typo/u);
  t.false(existsSync(typo));

  const orphan = join(dir, "no", "such", "data");
  for (const command of [["init"], ["serve", "--port", "0"]]) {
    const run = await hsmkit([...command, "--data", orphan]);
    t.is(run.code, 1, command.join(" "));
    t.regex(run.stderr, new RegExp(`^hsmkit: cannot create the data directory ${literal(orphan)}: ${literal(join(dir, "no", "such"))} does not exist\\. Create it first \\(mkdir -p `, "u"), command.join(" "));
    t.notRegex(run.stderr, /\n\s+at /u, "no stack");
  }

  // init makes it; then the same command works on it.
  ok(t, await hsmkit(["init", "--data", typo]), "init");
  t.regex(ok(t, await hsmkit(["keys", "list", "--data", typo]), "list after init").stdout, /^No keys in project/u);
});

/** Waits for serve's "listening on URL" line; rejects if the process ends first. */
function listening(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const m = /hsmkit KMS listening on (http:\/\/\S+)/u.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`serve exited (${code}) before listening: ${err}`)));
  });
}

test("serve: the same round trip with --endpoint; the data directory is locked meanwhile; SIGTERM exits 0", async (t) => {
  const data = join(tempDir(t), "data");
  const server = start(["serve", "--port", "0", "--data", data], { HSMKIT_LOG_LEVEL: "warn" });
  t.teardown(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });
  const url = await listening(server);
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is((await fetch(`${url}/healthz`)).status, 200);

  const e = ["--endpoint", url, "--data", data];
  const created = JSON.parse(ok(t, await hsmkit(["keys", "create", "remote", "--json", ...e]), "create").stdout) as { key_info: { key_id: string } };
  t.regex(ok(t, await hsmkit(["keys", "list", ...e]), "list").stdout, new RegExp(`^${created.key_info.key_id}\\s+remote\\s+enabled`, "m"));
  const blob = ok(t, await hsmkit(["encrypt", "--key", "remote", "--text", "over http", "--aad", "v1", ...e]), "encrypt").stdout.trim();
  t.is(ok(t, await hsmkit(["decrypt", "--blob", blob, "--aad", "v1", ...e]), "decrypt").stdout, "over http");
  t.regex(ok(t, await hsmkit(["random", "--bits", "64", ...e]), "random").stdout, /^[0-9a-f]{16}\n$/);

  const exportFile = join(data, "..", "audit.jsonl");
  ok(t, await hsmkit(["audit", "export", "--action", "encryptData", "--out", exportFile, ...e]), "audit export");
  const lines = readFileSync(exportFile, "utf8").trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(lines[0], { type: "header", format: "hsmkit-audit-export" });
  t.deepEqual(lines.slice(1).map((r) => [r["type"], r["action"], r["outcome"]]), [["record", "encryptData", "success"]]);

  const missing = await hsmkit(["encrypt", "--key", "no-such-key", "--text", "x", ...e]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^hsmkit: KMS\.0207 The key does not exist\. \(request [0-9a-f-]{36}\)/);

  const locked = await hsmkit(["keys", "list", "--data", data]);
  t.is(locked.code, 1);
  t.regex(locked.stderr, /in use by process[\s\S]*--endpoint http:\/\/127\.0\.0\.1:8731/);

  const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
  server.kill("SIGTERM");
  t.is(await exited, 0);
  // The lock is released: the directory opens directly again, and holds what the server wrote.
  t.regex(ok(t, await hsmkit(["keys", "describe", "remote", "--data", data]), "describe after").stdout, /Alias:\s+remote/);
});

test("serve: with stdout a pipe whose reader has gone (`hsmkit serve | head`), it serves, and SIGTERM exits 0", async (t) => {
  // Before: the banner's EPIPE was an unhandled 'error' that ended the process, whose exit-time log
  // flush (pino) then retried the broken pipe forever: no port, and every signal ignored.
  t.timeout(60_000);
  const dir = tempDir(t);
  const data = join(dir, "data");
  // A real pipe (spawn's own stdio are socket pairs, which behave otherwise), its reader closed at once.
  const fifo = join(dir, "stdout.fifo");
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  const server = spawn(process.execPath, ["--no-warnings", CLI, "serve", "--port", "0", "--data", data], {
    env: cleanEnv({ HSMKIT_LOG_LEVEL: "info" }), stdio: ["ignore", writer, "pipe"],
  });
  closeSync(writer);
  t.teardown(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });
  let stderr = "";
  server.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  // "close": after stderr has been read to its end.
  const exited = new Promise<number | null>((resolve) => server.on("close", (code) => resolve(code)));
  // Its banner (with the port) went nowhere: ask the OS which port it listens on.
  const url = await new Promise<string>((resolve, reject) => {
    const poll = setInterval(() => {
      if (server.exitCode !== null) {
        clearInterval(poll);
        reject(new Error(`serve exited (${server.exitCode}): ${stderr}`));
        return;
      }
      const port = listeningPort(server.pid!);
      if (port !== undefined) {
        clearInterval(poll);
        resolve(`http://127.0.0.1:${port}`);
      }
    }, 100);
  });
  t.is((await fetch(`${url}/healthz`)).status, 200);
  // Refusals are logged at info: more lines that meet the closed pipe.
  for (let i = 0; i < 3; i++) t.is((await fetch(`${url}/v1.0/p/kms/list-keys`, { method: "POST", body: "{}" })).status, 401);
  server.kill("SIGTERM");
  const deadline = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 30_000).unref());
  t.is(await Promise.race([exited, deadline]), 0, `serve exits after SIGTERM instead of hanging in its exit-time log flush: ${stderr}`);
  // Said once, whenever the banner met the pipe (it is written after the port opens).
  t.is(stderr.match(/stdout was closed \(EPIPE\): the server goes on/gu)?.length, 1, stderr);
});

/** The TCP port process `pid` listens on (from /proc/net/tcp and its fds), or undefined. */
function listeningPort(pid: number): number | undefined {
  let inodes: Set<string>;
  try {
    inodes = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return /^socket:\[(\d+)\]$/u.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "";
      } catch {
        return "";
      }
    }));
  } catch {
    return undefined;
  }
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/u);
    // state 0A = LISTEN; local address hex ip:port; field 9 the inode.
    if (f[3] === "0A" && inodes.has(f[9] ?? "-")) return parseInt(f[1]!.split(":")[1]!, 16);
  }
  return undefined;
}

test("users: a grant-only user made with `users create` encrypts and decrypts through the server with its own credentials, and nothing else", async (t) => {
  const dir = tempDir(t);
  const data = join(dir, "data");
  const app = join(dir, "app.json");
  const d = ["--data", data];
  ok(t, await hsmkit(["init", ...d]), "init");
  ok(t, await hsmkit(["keys", "create", "shared", ...d]), "create");
  const made = JSON.parse(ok(t, await hsmkit(["users", "create", "app", "--out", app, "--json", ...d]), "users create").stdout) as { user_id: string; sk?: string };
  t.is(made.sk, undefined, "the SK goes to the file, not the terminal");
  t.is(statSync(app).mode & 0o777, 0o600);
  t.is((JSON.parse(readFileSync(app, "utf8")) as { user_id: string }).user_id, made.user_id);
  ok(t, await hsmkit(["grants", "create", "shared", "--grantee", made.user_id, "--operations", "encrypt-data,decrypt-data", ...d]), "grant");
  t.regex(ok(t, await hsmkit(["users", "list", ...d]), "users list").stdout, new RegExp(`^${made.user_id}\\s+app\\s+enabled\\s+-`, "m"));
  const keyId = (JSON.parse(ok(t, await hsmkit(["keys", "describe", "shared", "--json", ...d]), "describe").stdout) as { key_info: { key_id: string } }).key_info.key_id;

  const server = start(["serve", "--port", "0", ...d], { HSMKIT_LOG_LEVEL: "warn" });
  t.teardown(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });
  const url = await listening(server);
  const asApp = ["--endpoint", url, "--credentials", app];
  const blob = ok(t, await hsmkit(["encrypt", "--key", keyId, "--text", "granted", ...asApp]), "encrypt as app").stdout.trim();
  t.is(ok(t, await hsmkit(["decrypt", "--blob", blob, ...asApp]), "decrypt as app").stdout, "granted");
  const refused = await hsmkit(["keys", "describe", keyId, ...asApp]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /KMS\.0306/u);
  const closed = new Promise((resolve) => server.on("exit", resolve));
  server.kill("SIGTERM");
  await closed;

  ok(t, await hsmkit(["users", "disable", made.user_id, ...d]), "disable");
  t.regex(ok(t, await hsmkit(["users", "list", ...d]), "list again").stdout, new RegExp(`^${made.user_id}\\s+app\\s+disabled`, "m"));
});
