/**
 * The modes of the files in a data directory that hold secrets (credentials.json, token-pin,
 * token-so-pin, the token directory, the store's database and its -wal and -shm): created 0600 (0700 for directories) whatever the umask, and a
 * PIN file found looser than hsmkit wrote it tightened and reported before its PIN is used.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { KmsService, type ServiceLog } from "../../src/service/service.js";
import { tempDir, testConfig } from "../server/helpers/server.js";

const run = promisify(execFile);
const mode = (path: string): number => statSync(path).mode & 0o777;

function capturingLog(): ServiceLog & { warnings: Array<{ message: string; fields: Record<string, unknown> | undefined }> } {
  const warnings: Array<{ message: string; fields: Record<string, unknown> | undefined }> = [];
  return { warnings, info() {}, error() {}, warn: (message, fields) => void warnings.push({ message, fields }) };
}

async function openAndClose(dir: string, log: ServiceLog): Promise<void> {
  const service = await KmsService.open(testConfig(dir), { sweep: false, log });
  await service.close();
}

test("with umask 000 every secret file of a new data directory is created 0600 and every directory 0700", async (t) => {
  // The umask is per process (and cannot be set from ava's worker thread): a child opens the service.
  const data = join(tempDir(t), "data");
  const service = fileURLToPath(new URL("../../src/service/service.js", import.meta.url));
  const config = fileURLToPath(new URL("../../src/config/config.js", import.meta.url));
  const script = `
    process.umask(0);
    const { loadConfig } = await import(${JSON.stringify(config)});
    const { KmsService } = await import(${JSON.stringify(service)});
    const config = loadConfig({ env: {}, overrides: { data: ${JSON.stringify(data)}, log: { level: "silent" }, server: { port: 0, kmsThread: false } } });
    const opened = await KmsService.open(config, { sweep: false });
    // While open: the database beside its -wal and -shm.
    const { readdirSync, statSync } = await import("node:fs");
    const kms = ${JSON.stringify(join(data, "kms"))};
    process.stdout.write(JSON.stringify(Object.fromEntries(readdirSync(kms).map((name) => [name, statSync(kms + "/" + name).mode & 0o777]))));
    await opened.close();`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { timeout: 60_000 });
  const store = JSON.parse(stdout) as Record<string, number>;
  for (const file of ["kms.sqlite", "kms.sqlite-wal", "kms.sqlite-shm"]) t.is(store[file], 0o600, `kms/${file}, open`);
  t.is(mode(data), 0o700, "the data directory");
  t.is(mode(join(data, "kms")), 0o700, "kms/");
  for (const file of ["credentials.json", "token-pin", "token-so-pin"]) t.is(mode(join(data, file)), 0o600, file);
  const walk = (directory: string): void => {
    t.is(mode(directory), 0o700, directory);
    for (const name of readdirSync(directory)) {
      const path = join(directory, name);
      if (statSync(path).isDirectory()) walk(path);
      else t.is(mode(path), 0o600, path);
    }
  };
  walk(join(data, "token"));
});

test("a token PIN file open to other users is tightened to 0600 and reported before its PIN is used", async (t) => {
  const dir = tempDir(t);
  // A PIN file put in place before the first start (restored from a backup without its mode, say).
  const pin = "restored-pin-0123456789";
  writeFileSync(join(dir, "token-pin"), `${pin}\n`);
  chmodSync(join(dir, "token-pin"), 0o644);
  const log = capturingLog();
  await openAndClose(dir, log);
  t.is(mode(join(dir, "token-pin")), 0o600);
  const warning = log.warnings.find((w) => w.fields?.["file"] === join(dir, "token-pin"));
  t.truthy(warning, "the loose PIN file is reported");
  t.false(JSON.stringify(log.warnings).includes(pin), "the report does not quote the PIN");

  // The SO PIN file loosened after the first start: tightened on the next.
  chmodSync(join(dir, "token-so-pin"), 0o640);
  const again = capturingLog();
  await openAndClose(dir, again);
  t.is(mode(join(dir, "token-so-pin")), 0o600);
  t.true(again.warnings.some((w) => w.fields?.["file"] === join(dir, "token-so-pin")));
  t.false(again.warnings.some((w) => w.fields?.["file"] === join(dir, "token-pin")), "a file already 0600 is not reported");
});

test("a store database loosened since it was made is tightened to 0600 when it is opened", async (t) => {
  const dir = tempDir(t);
  await openAndClose(dir, capturingLog());
  chmodSync(join(dir, "kms", "kms.sqlite"), 0o644);
  await openAndClose(dir, capturingLog());
  t.is(mode(join(dir, "kms", "kms.sqlite")), 0o600);
});

test("a data directory other users may write is reported; one they may only read is not", async (t) => {
  const writable = join(tempDir(t), "data");
  mkdirSync(writable);
  chmodSync(writable, 0o777);
  const log = capturingLog();
  await openAndClose(writable, log);
  t.true(log.warnings.some((w) => w.fields?.["dir"] === writable && w.fields?.["mode"] === "0777"));

  const readable = join(tempDir(t), "data");
  mkdirSync(readable);
  chmodSync(readable, 0o755);
  const quiet = capturingLog();
  await openAndClose(readable, quiet);
  t.deepEqual(quiet.warnings, []);
});
