/**
 * KmsService (src/service/service.ts) in the server's own thread, on a fresh data directory per
 * test: what its callers rely on when they shut it down.
 */
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/config.js";
import { KmsError } from "../../src/kms/errors.js";
import { KmsService } from "../../src/service/service.js";

test("a second close() resolves only once the service is closed, as the first does", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-service-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const service = await KmsService.open(loadConfig({ overrides: { data: dir }, env: {} }), { sweep: false });
  // A signal handler and the normal shutdown path both closing: whichever returns first must not
  // let the process exit before the store and the token are closed.
  let closed = false;
  const first = service.close().then(() => (closed = true));
  await service.close();
  t.true(closed, "the second close() waited for the first");
  await first;
  const late = await t.throwsAsync(service.callAs({ projectId: "p", principalId: "u", requestId: "r", source: "test" }, "genRandom", {}), { instanceOf: KmsError });
  t.is(late?.code, "KMS.0104");
});

test("health is not ok while the emulator token's generator has no entropy source in service, and says so", (t) => {
  // In a child process: the generator is process-wide, and a broken one would fail other tests.
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-service-entropy-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);
  const script = join(dir, "child.mjs");
  writeFileSync(script, `
    const { loadConfig } = await import(${url("../../src/config/config.js")});
    const { KmsService } = await import(${url("../../src/service/service.js")});
    const random = await import(${url("../../src/crypto/random.js")});
    const testing = await import(${url("../../src/crypto/testing.js")});
    const service = await KmsService.open(loadConfig({ overrides: { data: ${JSON.stringify(join(dir, "data"))} }, env: {} }), { sweep: false });
    const before = await service.health();
    // A stuck source: it fails the repetition count test and leaves no source in service.
    testing.insecureUseReplayEntropySourceForTesting(new Uint8Array([0]));
    let refused = false;
    try { random.randomBytes(16); } catch { refused = true; }
    const after = await service.health();
    process.stdout.write(JSON.stringify({ before, after, refused }));
    process.exit(0);
  `);
  const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 120_000 });
  t.is(result.status, 0, result.stderr);
  const { before, after, refused } = JSON.parse(result.stdout) as { before: { ok: boolean }; after: { ok: boolean; problem?: string }; refused: boolean };
  t.true(before.ok);
  t.true(refused, "the generator refuses output");
  t.false(after.ok);
  t.regex(after.problem ?? "", /no entropy source is in service/u);
});

test("health is not ok once the store's write-ahead log could not be synced, and says so", (t) => {
  // In a child process: fdatasync is replaced process-wide there, so that the store's inline
  // writer (the configured default) meets an EIO as from a failing disk.
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-service-store-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);
  const script = join(dir, "child.mjs");
  writeFileSync(script, `
    const fs = (await import("node:fs")).default;
    const { syncBuiltinESMExports } = await import("node:module");
    let failing = false;
    const fdatasync = fs.fdatasync;
    fs.fdatasync = (fd, done) => failing
      ? setImmediate(() => done(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", errno: -5, syscall: "fdatasync" })))
      : fdatasync(fd, done);
    syncBuiltinESMExports();
    const { loadConfig } = await import(${url("../../src/config/config.js")});
    const { KmsService } = await import(${url("../../src/service/service.js")});
    const service = await KmsService.open(loadConfig({ overrides: { data: ${JSON.stringify(join(dir, "data"))} }, env: {} }), { sweep: false });
    const before = await service.health();
    failing = true;
    let refused = null;
    try { await service.kms.store.flush(); } catch (error) { refused = error.code; }
    const after = await service.health();
    process.stdout.write(JSON.stringify({ writer: service.kms.store.writerMode, before, after, refused }));
    process.exit(0);
  `);
  const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 120_000 });
  t.is(result.status, 0, result.stderr);
  const { writer, before, after, refused } = JSON.parse(result.stdout) as { writer: string; before: { ok: boolean }; after: { ok: boolean; problem?: string }; refused: string | null };
  t.is(writer, "inline");
  t.true(before.ok);
  t.is(refused, "ERR_KMS_STORE_WRITE_FAILED");
  t.false(after.ok);
  t.regex(after.problem ?? "", /could not be synced.*restart/u);
});

test("a deletion sweep that fails does not keep the rotation sweep from running; the failure is still reported", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-service-sweep-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const errors: string[] = [];
  const log = { info: () => undefined, warn: () => undefined, error: (message: string) => errors.push(message) };
  const service = await KmsService.open(loadConfig({ overrides: { data: dir }, env: {} }), { sweep: false, log });
  t.teardown(() => service.close());
  let rotations = 0;
  const kms = service.kms as unknown as { deleteDueKeys: () => Promise<unknown>; rotateDueKeys: () => Promise<{ done: string[]; skipped: [] }> };
  kms.deleteDueKeys = () => Promise.reject(new Error("the store could not list due keys"));
  kms.rotateDueKeys = async () => {
    rotations++;
    return { done: [], skipped: [] };
  };
  const failed = await t.throwsAsync(service.sweep());
  t.regex(failed!.message, /could not list due keys/);
  t.is(rotations, 1, "rotation ran all the same");
});
